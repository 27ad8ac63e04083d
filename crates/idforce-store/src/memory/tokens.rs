//! Sessions, refresh tokens, codes, device authorizations and assertions in memory: each
//! grant's writes made under one lock, as the SQL backends make them in one transaction.

use async_trait::async_trait;
use idforce_core::model::{
    AuthCode, DEVICE_POLL_TOLERANCE_MS, DeviceCode, DeviceDecision, Family, Millis, RefreshToken,
    Session,
};
use idforce_core::ports::{
    AssertionLedger, Codes, DeviceCodes, DevicePoll, Redemption, RefreshTokens, Sessions,
    StoreResult, Tokens,
};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use super::{MemoryStore, State, Stored, conflict};
use crate::{ApprovalRecord, Purge, SessionAdmin, SessionFilter, Transfer};

const HOUR: Millis = 3_600_000;

impl State {
    fn insert_session(&mut self, s: &Session) -> StoreResult<()> {
        if self.sessions.contains_key(&s.digest) {
            return Err(conflict("session"));
        }
        let session = Session {
            revoked: false,
            ..s.clone()
        };
        self.sessions.insert(s.digest, (session, None));
        Ok(())
    }

    fn insert_refresh(&mut self, t: &RefreshToken) -> StoreResult<()> {
        if self.refresh.contains_key(&t.digest) {
            return Err(conflict("refresh token"));
        }
        let record = RefreshToken {
            rotated: false,
            revoked: false,
            ..t.clone()
        };
        self.refresh.insert(
            t.digest,
            Stored {
                record,
                rotated_at: None,
                revoked_at: None,
            },
        );
        Ok(())
    }

    /// Both writes or neither: checked before either is made.
    fn insert_tokens(&mut self, tokens: &Tokens) -> StoreResult<()> {
        let refresh_taken = tokens
            .refresh
            .as_ref()
            .is_some_and(|r| self.refresh.contains_key(&r.digest));
        if refresh_taken || self.sessions.contains_key(&tokens.session.digest) {
            return Err(conflict("token"));
        }
        if let Some(refresh) = &tokens.refresh {
            self.insert_refresh(refresh)?;
        }
        if let Some(login) = &tokens.login {
            self.record_login(login);
        }
        self.insert_session(&tokens.session)
    }

    fn revoke_family(&mut self, family: &Family, now: Millis) -> u64 {
        for t in self.refresh.values_mut() {
            if t.record.family == *family && t.revoked_at.is_none() {
                t.revoked_at = Some(now);
                t.record.revoked = true;
            }
        }
        let mut ended = 0;
        for (s, revoked_at) in self.sessions.values_mut() {
            if s.family.as_ref() == Some(family) && revoked_at.is_none() {
                *revoked_at = Some(now);
                s.revoked = true;
                ended += 1;
            }
        }
        ended
    }
}

fn matches(filter: SessionFilter, user: &SfId, app: &SfId) -> bool {
    match filter {
        SessionFilter::User(id) => id == *user,
        SessionFilter::App(id) => id == *app,
        SessionFilter::UserApp(u, a) => u == *user && a == *app,
    }
}

#[async_trait]
impl Sessions for MemoryStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.write()?.insert_session(session)
    }

    async fn insert_tokens(&self, tokens: &Tokens) -> StoreResult<()> {
        self.write()?.insert_tokens(tokens)
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        Ok(self.read().sessions.get(digest).map(|(s, _)| s.clone()))
    }

    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        if let Some((s, _)) = self.write()?.sessions.get_mut(digest) {
            s.last_used_at = s.last_used_at.max(now);
        }
        Ok(())
    }

    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        let mut state = self.write()?;
        match state.sessions.get_mut(digest) {
            Some((s, revoked_at @ None)) => {
                *revoked_at = Some(now);
                s.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl MemoryStore {
    /// Refresh tokens neither revoked nor rotated away that `pick` takes, oldest first.
    fn live_refresh(&self, pick: impl Fn(&RefreshToken) -> bool) -> Vec<RefreshToken> {
        let state = self.read();
        let mut live: Vec<RefreshToken> = state
            .refresh
            .values()
            .map(|t| &t.record)
            .filter(|t| !t.revoked && !t.rotated && pick(t))
            .cloned()
            .collect();
        live.sort_by_key(|t| t.issued_at);
        live
    }

    fn spend(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        if state.assertions.get(digest).is_some_and(|e| *e >= now) {
            return Ok(false);
        }
        if let Some(tokens) = tokens {
            state.insert_tokens(tokens)?;
        }
        state.assertions.insert(*digest, expires_at);
        Ok(true)
    }
}

#[async_trait]
impl AssertionLedger for MemoryStore {
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        self.spend(digest, expires_at, now, None)
    }

    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        self.spend(digest, expires_at, now, Some(tokens))
    }
}

#[async_trait]
impl Codes for MemoryStore {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        let mut state = self.write()?;
        if state.codes.contains_key(&code.digest) {
            return Err(conflict("code"));
        }
        state.codes.insert(code.digest, (code.clone(), None, None));
        Ok(())
    }

    async fn code(&self, digest: &Digest) -> StoreResult<Option<(AuthCode, bool)>> {
        let state = self.read();
        Ok(state
            .codes
            .get(digest)
            .map(|(c, redeemed_at, _)| (c.clone(), redeemed_at.is_some())))
    }

    async fn redeem_code(
        &self,
        digest: &Digest,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<Redemption> {
        let mut state = self.write()?;
        let Some((_, redeemed_at, first)) = state.codes.get(digest).cloned() else {
            return Ok(Redemption::Unknown);
        };
        if redeemed_at.is_some() {
            if let Some(first) = first {
                state.revoke_family(&first, now);
            }
            return Ok(Redemption::Reused);
        }
        if let Some(tokens) = tokens {
            state.insert_tokens(tokens)?;
        }
        if let Some((_, redeemed_at, family)) = state.codes.get_mut(digest) {
            *redeemed_at = Some(now);
            *family = tokens.and_then(|t| t.session.family);
        }
        Ok(Redemption::Redeemed)
    }
}

#[async_trait]
impl DeviceCodes for MemoryStore {
    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()> {
        let mut state = self.write()?;
        let taken = state.devices.contains_key(&code.digest)
            || state
                .devices
                .values()
                .any(|d| d.user_code_digest == code.user_code_digest);
        if taken {
            return Err(conflict("device code"));
        }
        state.devices.insert(code.digest, code.clone());
        Ok(())
    }

    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>> {
        let state = self.read();
        let found = state
            .devices
            .values()
            .find(|d| d.user_code_digest == *user_code_digest);
        Ok(found.cloned())
    }

    async fn decide_device_code(
        &self,
        user_code_digest: &Digest,
        decision: DeviceDecision,
        now: Millis,
    ) -> StoreResult<bool> {
        if decision == DeviceDecision::Pending {
            return Ok(false);
        }
        let mut state = self.write()?;
        let pending = state.devices.values_mut().find(|d| {
            d.user_code_digest == *user_code_digest
                && d.decision == DeviceDecision::Pending
                && d.expires_at > now
        });
        match pending {
            Some(d) => {
                d.decision = decision;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn device_code(&self, digest: &Digest, app: &SfId) -> StoreResult<Option<DeviceCode>> {
        let state = self.read();
        Ok(state
            .devices
            .get(digest)
            .filter(|d| d.app_id == *app)
            .cloned())
    }

    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<DevicePoll> {
        let mut state = self.write()?;
        let Some(device) = state
            .devices
            .get(digest)
            .filter(|d| d.app_id == *app)
            .cloned()
        else {
            return Ok(DevicePoll::Unknown);
        };
        let on_time = device.last_polled_at.is_none_or(|last| {
            last + device.interval_secs * 1000 - DEVICE_POLL_TOLERANCE_MS <= now
        });
        let mut next = device.clone();
        next.last_polled_at = Some(now);
        if !on_time {
            next.interval_secs += 5;
            state.devices.insert(*digest, next.clone());
            return Ok(DevicePoll::TooSoon(next));
        }
        let redeemable = match (device.decision, tokens) {
            (DeviceDecision::Approved { user_id, .. }, Some(tokens)) => {
                user_id == tokens.session.user_id && !device.redeemed && device.expires_at > now
            }
            _ => false,
        };
        if let (true, Some(tokens)) = (redeemable, tokens) {
            state.insert_tokens(tokens)?;
            next.redeemed = true;
        }
        state.devices.insert(*digest, next.clone());
        Ok(DevicePoll::OnTime {
            code: next,
            redeemed: redeemable,
        })
    }
}

#[async_trait]
impl RefreshTokens for MemoryStore {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.write()?.insert_refresh(token)
    }

    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        Ok(self.read().refresh.get(digest).map(|t| t.record.clone()))
    }

    async fn use_refresh_token(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        let Some(stored) = state.refresh.get(old).cloned() else {
            return Ok(false);
        };
        let usable = stored.revoked_at.is_none()
            && (tokens.refresh.is_none() || stored.rotated_at.is_none());
        if !usable {
            if tokens.refresh.is_some() {
                state.revoke_family(&stored.record.family, now);
            }
            return Ok(false);
        }
        state.insert_tokens(tokens)?;
        if let Some(t) = state.refresh.get_mut(old) {
            if tokens.refresh.is_some() {
                t.rotated_at = Some(now);
                t.record.rotated = true;
            } else {
                t.record.last_used_at = t.record.last_used_at.max(now);
            }
        }
        Ok(true)
    }

    async fn live_families(&self, user: &SfId, app: &SfId) -> StoreResult<Vec<Family>> {
        let state = self.read();
        let mut live: Vec<(Millis, Family)> = state
            .refresh
            .values()
            .map(|t| &t.record)
            .filter(|r| r.user_id == *user && r.app_id == *app && !r.revoked && !r.rotated)
            .map(|r| (r.family_started_at, r.family))
            .collect();
        live.sort_unstable();
        live.dedup_by_key(|(_, f)| *f);
        Ok(live.into_iter().map(|(_, f)| f).collect())
    }

    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        Ok(self.write()?.revoke_family(family, now))
    }
}

#[async_trait]
impl SessionAdmin for MemoryStore {
    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>> {
        let state = self.read();
        let mut live: Vec<Session> = state
            .sessions
            .values()
            .filter(|(s, _)| matches(filter, &s.user_id, &s.app_id) && s.is_live(now))
            .map(|(s, _)| s.clone())
            .collect();
        live.sort_by_key(|s| s.issued_at);
        Ok(live)
    }

    async fn org_sessions(&self, org: &SfId, now: Millis, limit: u32) -> StoreResult<Vec<Session>> {
        let state = self.read();
        let mut live: Vec<Session> = state
            .sessions
            .values()
            .filter(|(s, _)| s.org_id == *org && s.is_live(now))
            .map(|(s, _)| s.clone())
            .collect();
        live.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
        live.truncate(limit as usize);
        Ok(live)
    }

    async fn app_users(&self, org: &SfId) -> StoreResult<Vec<(SfId, u64)>> {
        let mut users: std::collections::BTreeMap<SfId, std::collections::BTreeSet<SfId>> =
            Default::default();
        let apps: Vec<SfId> = self
            .read()
            .apps
            .values()
            .filter(|a| a.org_id == *org)
            .map(|a| a.id)
            .collect();
        for t in self.live_refresh(|t| apps.contains(&t.app_id)) {
            users.entry(t.app_id).or_default().insert(t.user_id);
        }
        Ok(users
            .into_iter()
            .map(|(app, users)| (app, users.len() as u64))
            .collect())
    }

    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>> {
        Ok(self.live_refresh(|t| matches(filter, &t.user_id, &t.app_id)))
    }

    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)> {
        let mut state = self.write()?;
        let mut sessions = 0;
        for (s, revoked_at) in state.sessions.values_mut() {
            if matches(filter, &s.user_id, &s.app_id) && s.is_live(now) {
                *revoked_at = Some(now);
                s.revoked = true;
                sessions += 1;
            }
        }
        let mut refresh = 0;
        if refresh_too {
            for t in state.refresh.values_mut() {
                let r = &mut t.record;
                if matches(filter, &r.user_id, &r.app_id) && !r.revoked && !r.rotated {
                    t.revoked_at = Some(now);
                    r.revoked = true;
                    refresh += 1;
                }
            }
        }
        Ok((sessions, refresh))
    }
}

#[async_trait]
impl Transfer for MemoryStore {
    async fn approvals(&self) -> StoreResult<Vec<ApprovalRecord>> {
        let state = self.read();
        Ok(state
            .approvals
            .iter()
            .map(|((user, app), (scopes, at))| (*user, *app, scopes.clone(), *at))
            .collect())
    }

    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>> {
        Ok(self.live_refresh(|_| true))
    }
}

#[async_trait]
impl Purge for MemoryStore {
    async fn purge_expired(&self, now: Millis) -> StoreResult<u64> {
        let mut state = self.write()?;
        let before = state.sessions.len()
            + state.codes.len()
            + state.logins.len()
            + state.devices.len()
            + state.refresh.len()
            + state.assertions.len();
        let ended = now - HOUR;
        state.sessions.retain(|_, (s, revoked_at)| {
            s.expires_at() >= ended && revoked_at.is_none_or(|r| r >= ended)
        });
        state
            .codes
            .retain(|_, (c, _, _)| c.expires_at >= now - 24 * HOUR);
        state.logins.retain(|_, l| l.expires_at >= now);
        state.devices.retain(|_, d| d.expires_at >= now - HOUR);
        state
            .refresh
            .retain(|_, t| t.revoked_at.is_none_or(|r| r >= now - 30 * 24 * HOUR));
        state.assertions.retain(|_, expires_at| *expires_at >= now);
        let after = state.sessions.len()
            + state.codes.len()
            + state.logins.len()
            + state.devices.len()
            + state.refresh.len()
            + state.assertions.len();
        Ok((before - after) as u64)
    }
}

#[async_trait]
impl crate::AuditTrail for MemoryStore {
    async fn record_change(&self, record: &crate::AuditRecord) -> StoreResult<()> {
        self.write()?.audit.push(record.clone());
        Ok(())
    }

    async fn audit_trail(
        &self,
        org: Option<&SfId>,
        limit: u32,
    ) -> StoreResult<Vec<crate::AuditRecord>> {
        let state = self.read();
        // Newest first; among equal times, the later recorded first (as the SQL stores order).
        let mut all: Vec<(usize, crate::AuditRecord)> = state
            .audit
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, r)| org.is_none_or(|o| r.org.as_ref() == Some(o)))
            .collect();
        all.sort_by(|(i, a), (j, b)| (b.at, j).cmp(&(a.at, i)));
        Ok(all
            .into_iter()
            .take(limit as usize)
            .map(|(_, r)| r)
            .collect())
    }
}

#[async_trait]
impl idforce_core::ports::LoginHistory for MemoryStore {
    async fn record_login(
        &self,
        event: &idforce_core::login_history::LoginEvent,
    ) -> StoreResult<()> {
        self.write()?.record_login(event);
        Ok(())
    }
}

#[async_trait]
impl crate::LoginHistoryAdmin for MemoryStore {
    async fn login_history(
        &self,
        q: &crate::LoginHistoryQuery,
    ) -> StoreResult<Vec<crate::LoginRecord>> {
        let state = self.read();
        let mut rows: Vec<crate::LoginRecord> = state
            .login_history
            .iter()
            .filter(|r| q.org.is_none_or(|o| r.event.org_id == o))
            .filter(|r| q.user.is_none_or(|u| r.event.user_id == u))
            .filter(|r| q.app.is_none_or(|a| r.event.app_id == Some(a)))
            .filter(|r| q.since.is_none_or(|s| r.event.at >= s))
            .filter(|r| q.before.is_none_or(|b| r.id < b))
            .cloned()
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.id));
        rows.truncate(q.limit as usize);
        Ok(rows)
    }

    async fn purge_login_history(&self, before: Millis, keep: u64) -> StoreResult<u64> {
        let mut state = self.write()?;
        let mut ids: Vec<i64> = state.login_history.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let first_kept = state
            .login_history
            .iter()
            .filter(|r| r.event.at >= before)
            .map(|r| r.id)
            .min();
        let dropped = ids
            .len()
            .checked_sub(usize::try_from(keep).unwrap_or(usize::MAX))
            .and_then(|n| n.checked_sub(1))
            .map(|i| ids[i]);
        let last = ids.last().copied();
        let bound = crate::login_history::purge_bound(first_kept, last, dropped);
        let count = state.login_history.len();
        state.login_history.retain(|r| r.id > bound);
        Ok((count - state.login_history.len()) as u64)
    }
}
