//! An in-memory store (the `testing` feature): every port and administrative operation over
//! maps behind one lock, each call atomic. For protocol tests without a database, and as the
//! conformance suite's reference: what it does is what the SQL backends must do.

mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use idforce_core::model::{
    AuthCode, ConnectedApp, DeviceCode, Family, LockoutPolicy, LoginSession, Millis, Org, Profile,
    RefreshToken, Session, User,
};
use idforce_core::ports::{
    Approvals, Directory, LoginAttempts, LoginSessions, StoreError, StoreResult,
};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use crate::{Accounts, Meta, SigningKeys, StoredKey};

#[derive(Default)]
struct State {
    meta: BTreeMap<String, Vec<u8>>,
    serials: BTreeMap<String, i64>,
    orgs: BTreeMap<SfId, Org>,
    profiles: BTreeMap<SfId, Profile>,
    users: BTreeMap<SfId, User>,
    apps: BTreeMap<SfId, ConnectedApp>,
    approvals: BTreeMap<(SfId, SfId), (Scopes, Millis)>,
    /// With when each was revoked.
    sessions: HashMap<Digest, (Session, Option<Millis>)>,
    /// With when each was rotated and revoked.
    refresh: HashMap<Digest, Stored<RefreshToken>>,
    codes: HashMap<Digest, StoredCode>,
    devices: HashMap<Digest, DeviceCode>,
    /// Spent assertions and when their records expire.
    assertions: HashMap<Digest, Millis>,
    logins: HashMap<Digest, LoginSession>,
    keys: Vec<StoredKey>,
    audit: Vec<crate::AuditRecord>,
    /// Login History, oldest first.
    login_history: Vec<crate::LoginRecord>,
    /// Each user's logins for `LoginRate`.
    login_counts: HashMap<SfId, idforce_core::model::LoginCount>,
}

impl State {
    fn record_login(&mut self, event: &idforce_core::login_history::LoginEvent) {
        let id = self.login_history.last().map_or(1, |r| r.id + 1);
        self.login_history.push(crate::LoginRecord {
            id,
            event: event.clone(),
        });
    }
}

/// A code, when it was redeemed, and the family its redemption started.
type StoredCode = (AuthCode, Option<Millis>, Option<Family>);

/// A refresh token with the instants behind its `rotated` and `revoked` flags.
#[derive(Clone)]
struct Stored<T> {
    record: T,
    rotated_at: Option<Millis>,
    revoked_at: Option<Millis>,
}

#[derive(Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    directory_reads: Arc<AtomicU64>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many orgs, users, apps and approvals were read through `Directory`: what a cache
    /// in front of this store did not answer.
    pub fn directory_reads(&self) -> u64 {
        self.directory_reads.load(Ordering::Relaxed)
    }

    fn directory(&self) -> MutexGuard<'_, State> {
        self.directory_reads.fetch_add(1, Ordering::Relaxed);
        self.read()
    }

    fn read(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that were each updated whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state for a write, once the write has passed any injected failure.
    fn write(&self) -> StoreResult<MutexGuard<'_, State>> {
        if let Some(point) = crate::testing::fail_point() {
            crate::testing::count_write(&point)?;
        }
        Ok(self.read())
    }
}

fn conflict(what: &str) -> StoreError {
    StoreError::Conflict(what.to_owned())
}

#[async_trait]
impl Directory for MemoryStore {
    async fn org(&self, id: &SfId) -> StoreResult<Option<Arc<Org>>> {
        Ok(self.directory().orgs.get(id).cloned().map(Arc::new))
    }

    async fn user(&self, id: &SfId) -> StoreResult<Option<Arc<User>>> {
        Ok(self.directory().users.get(id).cloned().map(Arc::new))
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        self.login_user(username).await
    }

    async fn login_user(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        let state = self.directory();
        let user = state
            .users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username));
        Ok(user.cloned().map(Arc::new))
    }

    async fn app(&self, id: &SfId) -> StoreResult<Option<Arc<ConnectedApp>>> {
        Ok(self.directory().apps.get(id).cloned().map(Arc::new))
    }

    async fn profile(&self, org: &SfId, name: &str) -> StoreResult<Option<Arc<Profile>>> {
        let state = self.directory();
        let found = state
            .profiles
            .values()
            .find(|p| p.org_id == *org && p.name.eq_ignore_ascii_case(name));
        Ok(found.cloned().map(Arc::new))
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<Arc<ConnectedApp>>> {
        let state = self.directory();
        let app = state.apps.values().find(|a| a.client_id == client_id);
        Ok(app.cloned().map(Arc::new))
    }

    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool> {
        Ok(self.directory().approvals.contains_key(&(*user, *app)))
    }

    async fn users_matching(
        &self,
        org: &SfId,
        on: idforce_core::token_exchange::MatchOn,
        value: &str,
    ) -> StoreResult<Vec<Arc<User>>> {
        let state = self.directory();
        Ok(state
            .users
            .values()
            .filter(|u| u.org_id == *org && on.matches(u, value))
            .take(2)
            .cloned()
            .map(Arc::new)
            .collect())
    }
}

#[async_trait]
impl Accounts for MemoryStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.read().orgs.is_empty())
    }

    async fn save_org(&self, org: &Org) -> StoreResult<()> {
        let mut state = self.write()?;
        if state
            .orgs
            .values()
            .any(|o| o.name == org.name && o.id != org.id)
        {
            return Err(conflict("org name"));
        }
        if org.my_domain.is_some()
            && state
                .orgs
                .values()
                .any(|o| o.my_domain == org.my_domain && o.id != org.id)
        {
            return Err(conflict("my_domain"));
        }
        let created_at = state
            .orgs
            .get(&org.id)
            .map_or(org.created_at, |o| o.created_at);
        state.orgs.insert(
            org.id,
            Org {
                created_at,
                ..org.clone()
            },
        );
        Ok(())
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        Ok(self.read().orgs.values().find(|o| o.name == name).cloned())
    }

    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        Ok(self.read().orgs.values().cloned().collect())
    }

    async fn save_profile(&self, profile: &Profile) -> StoreResult<()> {
        let mut state = self.write()?;
        if !state.orgs.contains_key(&profile.org_id) {
            return Err(StoreError::Invalid("profile's org does not exist".into()));
        }
        if state
            .profiles
            .values()
            .any(|p| p.org_id == profile.org_id && p.name == profile.name && p.id != profile.id)
        {
            return Err(conflict("profile name"));
        }
        let saved = match state.profiles.get(&profile.id) {
            // An existing profile keeps its org and creation time; the rest may change.
            Some(old) => Profile {
                name: profile.name.clone(),
                login_ip_ranges: profile.login_ip_ranges.clone(),
                login_hours: profile.login_hours,
                ..old.clone()
            },
            None => profile.clone(),
        };
        state.profiles.insert(profile.id, saved);
        Ok(())
    }

    async fn profiles(&self, org: Option<&SfId>) -> StoreResult<Vec<Profile>> {
        let mut all: Vec<Profile> = self
            .read()
            .profiles
            .values()
            .filter(|p| org.is_none_or(|o| p.org_id == *o))
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.org_id, &a.name).cmp(&(b.org_id, &b.name)));
        Ok(all)
    }

    async fn save_user(&self, user: &User) -> StoreResult<()> {
        let mut state = self.write()?;
        if !state.orgs.contains_key(&user.org_id) {
            return Err(StoreError::Invalid("user's org does not exist".into()));
        }
        if state
            .users
            .values()
            .any(|u| u.username.eq_ignore_ascii_case(&user.username) && u.id != user.id)
        {
            return Err(conflict("username"));
        }
        if user.federation_id.is_some()
            && state.users.values().any(|u| {
                u.org_id == user.org_id && u.federation_id == user.federation_id && u.id != user.id
            })
        {
            return Err(conflict("federation id"));
        }
        let created_at = state
            .users
            .get(&user.id)
            .map_or(user.created_at, |u| u.created_at);
        state.users.insert(
            user.id,
            User {
                created_at,
                ..user.clone()
            },
        );
        Ok(())
    }

    async fn users(&self, org: Option<&SfId>) -> StoreResult<Vec<User>> {
        let state = self.read();
        let users = state
            .users
            .values()
            .filter(|u| org.is_none_or(|o| u.org_id == *o));
        Ok(users.cloned().collect())
    }

    async fn save_app(&self, app: &ConnectedApp) -> StoreResult<()> {
        let mut state = self.write()?;
        if !state.orgs.contains_key(&app.org_id) {
            return Err(StoreError::Invalid("app's org does not exist".into()));
        }
        let taken = state.apps.values().any(|a| {
            a.id != app.id
                && (a.client_id == app.client_id
                    || (a.org_id == app.org_id && a.name == app.name)
                    || a.initial_access_token.as_ref().is_some_and(|t| {
                        app.initial_access_token
                            .as_ref()
                            .is_some_and(|mine| mine.digest == t.digest)
                    }))
        });
        if taken {
            return Err(conflict("app"));
        }
        let org_id = state.apps.get(&app.id).map_or(app.org_id, |a| a.org_id);
        state.apps.insert(
            app.id,
            ConnectedApp {
                org_id,
                ..app.clone()
            },
        );
        Ok(())
    }

    async fn app_by_initial_access_token(
        &self,
        digest: &idforce_core::token::Digest,
    ) -> StoreResult<Option<ConnectedApp>> {
        let state = self.read();
        let app = state.apps.values().find(|a| {
            a.initial_access_token
                .as_ref()
                .is_some_and(|t| t.digest == *digest)
        });
        Ok(app.map(|a| (*a).clone()))
    }

    async fn app_by_name(&self, org: &SfId, name: &str) -> StoreResult<Option<ConnectedApp>> {
        let state = self.read();
        let app = state
            .apps
            .values()
            .find(|a| a.org_id == *org && a.name == name);
        Ok(app.cloned())
    }

    async fn apps(&self, org: Option<&SfId>) -> StoreResult<Vec<ConnectedApp>> {
        let state = self.read();
        let apps = state
            .apps
            .values()
            .filter(|a| org.is_none_or(|o| a.org_id == *o));
        Ok(apps.cloned().collect())
    }
}

#[async_trait]
impl Approvals for MemoryStore {
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<Scopes>> {
        Ok(self
            .read()
            .approvals
            .get(&(*user, *app))
            .map(|(s, _)| s.clone()))
    }

    async fn approve(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &Scopes,
        now: Millis,
    ) -> StoreResult<()> {
        let mut state = self.write()?;
        if !state.users.contains_key(user) || !state.apps.contains_key(app) {
            return Err(StoreError::Invalid(
                "approval's user or app does not exist".into(),
            ));
        }
        let entry = state
            .approvals
            .entry((*user, *app))
            .or_insert_with(|| (scopes.clone(), now));
        entry.0 = scopes.clone();
        Ok(())
    }
}

#[async_trait]
impl LoginAttempts for MemoryStore {
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        let Some(u) = state.users.get_mut(user) else {
            return Ok(false);
        };
        if u.is_locked(now) {
            return Ok(false);
        }
        if u.failed_logins >= policy.attempts {
            u.failed_logins = 0;
            u.locked_until = Some(now + policy.duration_secs * 1000);
            return Ok(false);
        }
        u.failed_logins += 1;
        Ok(true)
    }

    async fn login_attempt_failed(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        let Some(u) = state.users.get_mut(user) else {
            return Ok(false);
        };
        if u.failed_logins >= policy.attempts {
            u.failed_logins = 0;
            u.locked_until = Some(now + policy.duration_secs * 1000);
        }
        Ok(u.locked_until.is_some_and(|t| t > now))
    }

    async fn take_login(
        &self,
        user: &SfId,
        now: Millis,
        rate: idforce_core::model::LoginRate,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        let kept = state.login_counts.get(user).copied();
        match rate.admit(kept, now) {
            Some(next) => {
                state.login_counts.insert(*user, next);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        if let Some(u) = self.write()?.users.get_mut(user) {
            u.failed_logins = 0;
            u.locked_until = None;
        }
        Ok(())
    }
}

#[async_trait]
impl LoginSessions for MemoryStore {
    async fn insert_login_session(
        &self,
        s: &LoginSession,
        login: Option<&idforce_core::login_history::LoginEvent>,
    ) -> StoreResult<()> {
        let mut state = self.write()?;
        state.logins.retain(|_, l| l.expires_at >= s.auth_time);
        if state.logins.contains_key(&s.digest) {
            return Err(conflict("login session"));
        }
        state.logins.insert(s.digest, s.clone());
        if let Some(login) = login {
            state.record_login(login);
        }
        Ok(())
    }

    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>> {
        Ok(self.read().logins.get(digest).cloned())
    }

    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()> {
        self.write()?.logins.remove(digest);
        Ok(())
    }
}

#[async_trait]
impl Meta for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let mut state = self.write()?;
        Ok(state
            .meta
            .entry(key.to_owned())
            .or_insert_with(|| value.to_vec())
            .clone())
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.write()?.meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.read().meta.get(key).cloned())
    }

    async fn delete_meta(&self, key: &str) -> StoreResult<()> {
        self.write()?.meta.remove(key);
        Ok(())
    }

    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId> {
        let mut state = self.write()?;
        let next = state.serials.entry(key_prefix.to_owned()).or_insert(1);
        let n = *next;
        *next += 1;
        Ok(SfId::mint(key_prefix, n as u64))
    }

    async fn serials(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(self
            .read()
            .serials
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }

    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()> {
        let mut state = self.write()?;
        let serial = state.serials.entry(key_prefix.to_owned()).or_insert(next);
        *serial = (*serial).max(next);
        Ok(())
    }
}

#[async_trait]
impl SigningKeys for MemoryStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let mut keys = self.read().keys.clone();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(keys)
    }

    async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        let mut state = self.write()?;
        if let Some(k) = state.keys.iter_mut().find(|k| k.kid == kid) {
            k.private_key = sealed.to_vec();
            k.encrypted = true;
        }
        Ok(())
    }

    async fn put_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        let mut state = self.write()?;
        if !state.keys.iter().any(|k| k.kid == key.kid) {
            state.keys.push(key.clone());
        }
        Ok(())
    }

    async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool> {
        let mut state = self.write()?;
        if state.keys.iter().any(|k| k.kid == key.kid) {
            return Ok(false);
        }
        if let Some(until) = retire_others_until {
            for other in state.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
                other.retired_at = Some(key.created_at);
                other.publish_until = Some(until);
            }
        }
        state.keys.push(StoredKey {
            retired_at: None,
            publish_until: None,
            ..key.clone()
        });
        Ok(true)
    }
}
