//! Sessions (access tokens), refresh tokens and their families, and spent JWT assertions: the
//! token hot path. Every write is one job of the writer; a grant's writes are one job.

use async_trait::async_trait;
use idforce_core::model::{Family, Millis, RefreshToken, Session};
use idforce_core::ports::{AssertionLedger, RefreshTokens, Sessions, StoreResult, Tokens};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use rusqlite::{Connection, params};

use super::ledger::Ledger;
use super::{SqliteStore, all, change, one};
use crate::rows::{self, Columns};
use crate::{SessionAdmin, SessionFilter};

/// A user's approvals of an app: the families whose current refresh token is live.
const LIVE_FAMILIES: &str = "SELECT family, MIN(family_started_at) FROM refresh_tokens
     WHERE user_id = ?1 AND app_id = ?2 AND revoked_at IS NULL AND rotated_at IS NULL
     GROUP BY family ORDER BY 2, family";
const SESSION_BY_DIGEST: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
     revoked_at, family, source_ip FROM sessions WHERE digest = ?1";
const INSERT_SESSION: &str =
    "INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
     timeout_secs, revoked_at, family, source_ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE digest = ?1";
const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_used_at = ?1 WHERE digest = ?2 AND last_used_at < ?1";
const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = ?1 WHERE digest = ?2 AND revoked_at IS NULL";
/// `?1` a user, `?2` an app (one of them NULL), `?3` now, `?4` NULL or the one app of `?1`'s.
const LIVE_SESSIONS: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
     revoked_at, family, source_ip FROM sessions
     WHERE (user_id = ?1 OR app_id = ?2) AND (?4 IS NULL OR app_id = ?4)
       AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ?3
     ORDER BY issued_at";
const REVOKE_LIVE_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?3
     WHERE (user_id = ?1 OR app_id = ?2) AND (?4 IS NULL OR app_id = ?4)
       AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ?3";
/// An org's live sessions, most recently used first: `?1` the org, `?2` now, `?3` how many.
/// No index serves it (one on the org would cost every grant's insert): Setup's Session
/// Management reads it rarely.
const ORG_SESSIONS: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
     revoked_at, family, source_ip FROM sessions
     WHERE org_id = ?1 AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ?2
     ORDER BY last_used_at DESC LIMIT ?3";

/// `?1` an org.
const APP_USERS: &str = "SELECT app_id, COUNT(DISTINCT user_id) FROM refresh_tokens
     WHERE app_id IN (SELECT id FROM apps WHERE org_id = ?1)
       AND revoked_at IS NULL AND rotated_at IS NULL GROUP BY app_id";

const REFRESH_BY_DIGEST: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
     last_used_at, rotated_at, revoked_at FROM refresh_tokens WHERE digest = ?1";
const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (digest, family, org_id, user_id, app_id, scopes,
     family_started_at, issued_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const ROTATE_REFRESH: &str = "UPDATE refresh_tokens SET rotated_at = ?1
     WHERE digest = ?2 AND rotated_at IS NULL AND revoked_at IS NULL";
const TOUCH_REFRESH: &str = "UPDATE refresh_tokens SET last_used_at = CASE WHEN last_used_at < ?1 THEN ?1 ELSE last_used_at END
     WHERE digest = ?2 AND revoked_at IS NULL";
const FAMILY_OF: &str = "SELECT family FROM refresh_tokens WHERE digest = ?1";
const REVOKE_FAMILY_TOKENS: &str =
    "UPDATE refresh_tokens SET revoked_at = ?1 WHERE family = ?2 AND revoked_at IS NULL";
const REVOKE_FAMILY_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = ?1 WHERE family = ?2 AND revoked_at IS NULL";
/// `?1` a user, `?2` an app (one of them NULL), `?3` NULL or the one app of `?1`'s.
const LIVE_REFRESH: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
     last_used_at, rotated_at, revoked_at FROM refresh_tokens
     WHERE (user_id = ?1 OR app_id = ?2) AND (?3 IS NULL OR app_id = ?3)
       AND revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at";
/// `?4`: NULL or the one app of `?1`'s.
const REVOKE_LIVE_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = ?3
     WHERE (user_id = ?1 OR app_id = ?2) AND (?4 IS NULL OR app_id = ?4)
       AND revoked_at IS NULL AND rotated_at IS NULL";

pub(super) fn insert_session(c: &Connection, s: &Session) -> StoreResult<()> {
    change(
        c,
        INSERT_SESSION,
        params![
            &s.digest[..],
            s.org_id.as15(),
            s.user_id.as15(),
            s.app_id.as15(),
            s.scopes.to_string(),
            s.issued_at,
            s.last_used_at,
            s.timeout_secs,
            s.family.as_ref().map(|f| &f[..]),
            s.source_ip,
        ],
    )
    .map(drop)
}

pub(super) fn insert_refresh(c: &Connection, t: &RefreshToken) -> StoreResult<()> {
    change(
        c,
        INSERT_REFRESH,
        params![
            &t.digest[..],
            &t.family[..],
            t.org_id.as15(),
            t.user_id.as15(),
            t.app_id.as15(),
            t.scopes.to_string(),
            t.family_started_at,
            t.issued_at,
            t.last_used_at,
        ],
    )
    .map(drop)
}

/// Stores a grant's session, refresh token and Login History row, inside the caller's job.
pub(super) fn insert_tokens(c: &Connection, tokens: &Tokens) -> StoreResult<()> {
    if let Some(refresh) = &tokens.refresh {
        insert_refresh(c, refresh)?;
    }
    if let Some(login) = &tokens.login {
        super::login_history::insert_login(c, login)?;
    }
    insert_session(c, &tokens.session)
}

/// A session and its Login History row, in a job without a savepoint: the session's insert,
/// if it fails, undoes itself; if the row's insert fails after it, the session is deleted
/// again, so that the job leaves both or neither.
fn insert_session_and_login(c: &Connection, tokens: &Tokens) -> StoreResult<()> {
    insert_session(c, &tokens.session)?;
    let Some(login) = &tokens.login else {
        return Ok(());
    };
    if let Err(e) = super::login_history::insert_login(c, login) {
        change(c, DELETE_SESSION, [&tokens.session.digest[..]])?;
        return Err(e);
    }
    Ok(())
}

/// Revokes every refresh token and session of a family; how many sessions ended.
pub(super) fn revoke_family(c: &Connection, family: &Family, now: Millis) -> StoreResult<u64> {
    change(c, REVOKE_FAMILY_TOKENS, params![now, &family[..]])?;
    Ok(change(c, REVOKE_FAMILY_SESSIONS, params![now, &family[..]])? as u64)
}

/// A filter's (user, app, user's app) values: the user or the app, and for a user's tokens of
/// one app, that app as well.
fn filter_params(filter: SessionFilter) -> (Option<String>, Option<String>, Option<String>) {
    let id = |id: SfId| Some(id.as15().to_owned());
    match filter {
        SessionFilter::User(u) => (id(u), None, None),
        SessionFilter::App(a) => (None, id(a), None),
        SessionFilter::UserApp(u, a) => (id(u), None, id(a)),
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let s = s.clone();
        self.db
            .write_statement(move |c| insert_session(c, &s))
            .await
    }

    async fn insert_tokens(&self, tokens: &Tokens) -> StoreResult<()> {
        let tokens = tokens.clone();
        if tokens.refresh.is_none() {
            // The commonest grant (password, client credentials, SOAP): without a savepoint,
            // which would cost more than the two inserts (see `insert_session_and_login`).
            return self
                .db
                .write_statement(move |c| insert_session_and_login(c, &tokens))
                .await;
        }
        self.db.write(move |c| insert_tokens(c, &tokens)).await
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        self.db
            .read(|c| one(c, SESSION_BY_DIGEST, [&digest[..]], |r| rows::session(r)))
    }

    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        let digest = *digest;
        self.db
            .write_statement(move |c| change(c, TOUCH_SESSION, params![now, &digest[..]]).map(drop))
            .await
    }

    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        let digest = *digest;
        self.db
            .write_statement(move |c| {
                change(c, REVOKE_SESSION, params![now, &digest[..]]).map(|n| n > 0)
            })
            .await
    }
}

#[async_trait]
impl AssertionLedger for SqliteStore {
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        self.spend(digest, expires_at, now, None).await
    }

    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        self.spend(digest, expires_at, now, Some(tokens.clone()))
            .await
    }
}

impl SqliteStore {
    /// Spends an assertion and stores the tokens it pays for, if any, in one job.
    async fn spend(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: Option<Tokens>,
    ) -> StoreResult<bool> {
        let digest = *digest;
        let fresh = self
            .db
            .write(move |c| {
                let fresh = Ledger::spend(c, &digest, expires_at, now)?;
                if let (true, Some(tokens)) = (fresh, &tokens) {
                    insert_tokens(c, tokens)?;
                }
                Ok(fresh)
            })
            .await?;
        if fresh {
            self.ledger.spent();
        }
        Ok(fresh)
    }
}

#[async_trait]
impl RefreshTokens for SqliteStore {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        let t = t.clone();
        self.db
            .write_statement(move |c| insert_refresh(c, &t))
            .await
    }

    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        self.db.read(|c| {
            one(c, REFRESH_BY_DIGEST, [&digest[..]], |r| {
                rows::refresh_token(r)
            })
        })
    }

    async fn use_refresh_token(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        let (old, tokens) = (*old, tokens.clone());
        self.db
            .write(move |c| {
                let used = match &tokens.refresh {
                    Some(_) => change(c, ROTATE_REFRESH, params![now, &old[..]])?,
                    None => change(c, TOUCH_REFRESH, params![now, &old[..]])?,
                };
                if used == 1 {
                    insert_tokens(c, &tokens)?;
                    return Ok(true);
                }
                if tokens.refresh.is_some() {
                    // Rotated or revoked since it was read: a copy raced the original.
                    let family: Option<Vec<u8>> = super::scalar(c, FAMILY_OF, [&old[..]])?;
                    if let Some(family) = family.and_then(|f| Family::try_from(f.as_slice()).ok()) {
                        revoke_family(c, &family, now)?;
                    }
                }
                Ok(false)
            })
            .await
    }

    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        let family = *family;
        self.db.write(move |c| revoke_family(c, &family, now)).await
    }

    async fn live_families(&self, user: &SfId, app: &SfId) -> StoreResult<Vec<Family>> {
        self.db.read(|c| {
            all(c, LIVE_FAMILIES, [user.as15(), app.as15()], |r| {
                Family::try_from(r.blob(0)?.as_slice())
                    .map_err(|_| idforce_core::ports::StoreError::Invalid("family".into()))
            })
        })
    }
}

#[async_trait]
impl SessionAdmin for SqliteStore {
    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>> {
        let (user, app, only) = filter_params(filter);
        self.db.read(|c| {
            all(c, LIVE_SESSIONS, params![user, app, now, only], |r| {
                rows::session(r)
            })
        })
    }

    async fn org_sessions(&self, org: &SfId, now: Millis, limit: u32) -> StoreResult<Vec<Session>> {
        self.db.read(|c| {
            all(
                c,
                ORG_SESSIONS,
                params![org.as15(), now, i64::from(limit)],
                |r| rows::session(r),
            )
        })
    }

    async fn app_users(&self, org: &SfId) -> StoreResult<Vec<(SfId, u64)>> {
        self.db.read(|c| {
            all(c, APP_USERS, [org.as15()], |r| {
                Ok((r.id(0)?, u64::try_from(r.int(1)?).unwrap_or(0)))
            })
        })
    }

    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>> {
        let (user, app, only) = filter_params(filter);
        self.db.read(|c| {
            all(c, LIVE_REFRESH, params![user, app, only], |r| {
                rows::refresh_token(r)
            })
        })
    }

    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)> {
        let (user, app, only) = filter_params(filter);
        self.db
            .write(move |c| {
                let sessions = change(c, REVOKE_LIVE_SESSIONS, params![user, app, now, only])?;
                let refresh = if refresh_too {
                    change(c, REVOKE_LIVE_REFRESH, params![user, app, now, only])?
                } else {
                    0
                };
                Ok((sessions as u64, refresh as u64))
            })
            .await
    }
}
