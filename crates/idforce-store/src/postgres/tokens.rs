//! Sessions (access tokens), refresh tokens and their families, and spent JWT assertions.
//! A grant's writes are one transaction.

use async_trait::async_trait;
use idforce_core::model::{Family, Millis, RefreshToken, Session};
use idforce_core::ports::{AssertionLedger, RefreshTokens, Sessions, StoreResult, Tokens};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use sqlx::PgConnection;

use super::{PgStore, all, change, retrying, unavailable};
use crate::rows::{self, Columns};
use crate::{SessionAdmin, SessionFilter};

const INSERT_SESSION: &str =
    "INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
     timeout_secs, revoked_at, family, source_ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)";
const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_used_at = $1 WHERE digest = $2 AND last_used_at < $1";
const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE digest = $2 AND revoked_at IS NULL";
/// `$1` a user, `$2` an app (one of them NULL), `$3` now.
const LIVE_SESSIONS: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
     revoked_at, family, source_ip FROM sessions
     WHERE (user_id = $1 OR app_id = $2) AND ($4::text IS NULL OR app_id = $4)
       AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > $3
     ORDER BY issued_at";
const REVOKE_LIVE_SESSIONS: &str = "UPDATE sessions SET revoked_at = $3
     WHERE (user_id = $1 OR app_id = $2) AND ($4::text IS NULL OR app_id = $4)
       AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > $3";
/// An org's live sessions, most recently used first: `$1` the org, `$2` now, `$3` how many.
/// No index serves it (one on the org would cost every grant's insert): Setup's Session
/// Management reads it rarely.
const ORG_SESSIONS: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
     revoked_at, family, source_ip FROM sessions
     WHERE org_id = $1 AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > $2
     ORDER BY last_used_at DESC LIMIT $3";

/// Records an assertion, or takes over the record of an expired one with the same digest;
/// changes exactly one row when this is the assertion's first use.
const ASSERTION_FIRST_USE: &str = "INSERT INTO assertions (digest, expires_at) VALUES ($1, $2)
     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE assertions.expires_at < $3";

/// `$1` an org.
/// A user's approvals of an app: the families whose current refresh token is live.
const LIVE_FAMILIES: &str = "SELECT family, MIN(family_started_at) FROM refresh_tokens
     WHERE user_id = $1 AND app_id = $2 AND revoked_at IS NULL AND rotated_at IS NULL
     GROUP BY family ORDER BY 2, family";
const APP_USERS: &str = "SELECT app_id, COUNT(DISTINCT user_id) FROM refresh_tokens
     WHERE app_id IN (SELECT id FROM apps WHERE org_id = $1)
       AND revoked_at IS NULL AND rotated_at IS NULL GROUP BY app_id";
const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (digest, family, org_id, user_id, app_id, scopes,
     family_started_at, issued_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const ROTATE_REFRESH: &str = "UPDATE refresh_tokens SET rotated_at = $1
     WHERE digest = $2 AND rotated_at IS NULL AND revoked_at IS NULL";
/// A use's record, once its grant has committed: at most once a second per token.
const TOUCH_REFRESH: &str = "UPDATE refresh_tokens SET last_used_at = $1
     WHERE digest = $2 AND last_used_at < $1 - 1000";
const FAMILY_OF: &str = "SELECT family FROM refresh_tokens WHERE digest = $1";
/// Revocations of one family lock its rows in key order first. Every replay of a raced token
/// revokes the family at once; updated in scan order instead, two revocations could each hold
/// a row the other waits for (a row's newest version may sit on either side of its sibling).
const LOCK_FAMILY_TOKENS: &str =
    "SELECT digest FROM refresh_tokens WHERE family = $1 ORDER BY digest FOR UPDATE";
const LOCK_FAMILY_SESSIONS: &str =
    "SELECT digest FROM sessions WHERE family = $1 ORDER BY digest FOR UPDATE";
const REVOKE_FAMILY_TOKENS: &str =
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL";
const REVOKE_FAMILY_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL";
/// `$1` a user, `$2` an app (one of them NULL), `$3` NULL or the one app of `$1`'s.
const LIVE_REFRESH: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
     last_used_at, rotated_at, revoked_at FROM refresh_tokens
     WHERE (user_id = $1 OR app_id = $2) AND ($3::text IS NULL OR app_id = $3)
       AND revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at";
/// `$4`: NULL or the one app of `$1`'s.
const REVOKE_LIVE_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $3
     WHERE (user_id = $1 OR app_id = $2) AND ($4::text IS NULL OR app_id = $4)
       AND revoked_at IS NULL AND rotated_at IS NULL";

pub(super) async fn insert_session(c: &mut PgConnection, s: &Session) -> StoreResult<()> {
    let query = sqlx::query(INSERT_SESSION)
        .bind(&s.digest[..])
        .bind(s.org_id.as15())
        .bind(s.user_id.as15())
        .bind(s.app_id.as15())
        .bind(s.scopes.to_string())
        .bind(s.issued_at)
        .bind(s.last_used_at)
        .bind(s.timeout_secs)
        .bind(s.family.as_ref().map(|f| &f[..]))
        .bind(&s.source_ip);
    change(query, c).await.map(drop)
}

pub(super) async fn insert_refresh(c: &mut PgConnection, t: &RefreshToken) -> StoreResult<()> {
    let query = sqlx::query(INSERT_REFRESH)
        .bind(&t.digest[..])
        .bind(&t.family[..])
        .bind(t.org_id.as15())
        .bind(t.user_id.as15())
        .bind(t.app_id.as15())
        .bind(t.scopes.to_string())
        .bind(t.family_started_at)
        .bind(t.issued_at)
        .bind(t.last_used_at);
    change(query, c).await.map(drop)
}

/// Stores a grant's session, refresh token and Login History row, inside the caller's
/// transaction.
pub(super) async fn insert_tokens(c: &mut PgConnection, tokens: &Tokens) -> StoreResult<()> {
    if let Some(refresh) = &tokens.refresh {
        insert_refresh(&mut *c, refresh).await?;
    }
    if let Some(login) = &tokens.login {
        super::login_history::insert_login(&mut *c, login).await?;
    }
    insert_session(c, &tokens.session).await
}

/// Revokes every refresh token and session of a family; how many sessions ended.
pub(super) async fn revoke_family(
    c: &mut PgConnection,
    family: &Family,
    now: Millis,
) -> StoreResult<u64> {
    for lock in [LOCK_FAMILY_TOKENS, LOCK_FAMILY_SESSIONS] {
        sqlx::query(lock)
            .bind(&family[..])
            .execute(&mut *c)
            .await
            .map_err(unavailable)?;
    }
    let tokens = sqlx::query(REVOKE_FAMILY_TOKENS)
        .bind(now)
        .bind(&family[..]);
    change(tokens, &mut *c).await?;
    let sessions = sqlx::query(REVOKE_FAMILY_SESSIONS)
        .bind(now)
        .bind(&family[..]);
    change(sessions, c).await
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
impl Sessions for PgStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        self.sessions.insert(&Tokens::session(s.clone())).await
    }

    async fn insert_tokens(&self, tokens: &Tokens) -> StoreResult<()> {
        if tokens.refresh.is_none() {
            return self.sessions.insert(tokens).await;
        }
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            insert_tokens(&mut tx, tokens).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        self.session_reads.get(digest).await
    }

    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        let query = sqlx::query(TOUCH_SESSION).bind(now).bind(&digest[..]);
        change(query, &self.pool).await.map(drop)
    }

    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        let query = sqlx::query(REVOKE_SESSION).bind(now).bind(&digest[..]);
        Ok(change(query, &self.pool).await? > 0)
    }
}

#[async_trait]
impl AssertionLedger for PgStore {
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let query = sqlx::query(ASSERTION_FIRST_USE)
                .bind(&digest[..])
                .bind(expires_at)
                .bind(now);
            Ok(change(query, &self.pool).await? == 1)
        })
        .await
    }

    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        self.assertion_spends
            .spend(digest, expires_at, now, tokens)
            .await
    }
}

impl PgStore {
    /// A use that does not rotate. An integration presents one token with every request:
    /// recording each use in the token's row would queue them all behind that row's lock, a
    /// commit each. So the token is held with a shared lock while the session is stored, and
    /// its last use is recorded after the commit, at most once a second (idle policies count
    /// in minutes).
    async fn use_without_rotation(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        let last_used = self.refresh_uses.use_token(old, tokens).await?;
        let Some(last_used) = last_used else {
            return Ok(false);
        };
        if last_used < now - 1000 {
            // The grant stands either way; a use not recorded only leaves the idle clock
            // where the previous use set it.
            let touch = sqlx::query(TOUCH_REFRESH).bind(now).bind(&old[..]);
            let _ = change(touch, &self.pool).await;
        }
        Ok(true)
    }
}

#[async_trait]
impl RefreshTokens for PgStore {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        let mut c = self.pool.acquire().await.map_err(unavailable)?;
        insert_refresh(&mut c, t).await
    }

    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        self.refresh_reads.get(digest).await
    }

    async fn use_refresh_token(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        if tokens.refresh.is_none() {
            return self.use_without_rotation(old, now, tokens).await;
        }
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let rotate = sqlx::query(ROTATE_REFRESH).bind(now).bind(&old[..]);
            if change(rotate, &mut *tx).await? == 1 {
                insert_tokens(&mut tx, tokens).await?;
                tx.commit().await.map_err(unavailable)?;
                return Ok(true);
            }
            // Nothing was written; ending the transaction lets go of the row lock the failed
            // update took (READ COMMITTED keeps it), so that the family's revocation below
            // takes its locks in key order like every other one.
            tx.rollback().await.map_err(unavailable)?;
            // Rotated or revoked since it was read: a copy raced the original.
            let family: Option<Vec<u8>> = sqlx::query_scalar(FAMILY_OF)
                .bind(&old[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            if let Some(family) = family.and_then(|f| Family::try_from(f.as_slice()).ok()) {
                RefreshTokens::revoke_family(self, &family, now).await?;
            }
            Ok(false)
        })
        .await
    }

    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let n = revoke_family(&mut tx, family, now).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(n)
        })
        .await
    }

    async fn live_families(&self, user: &SfId, app: &SfId) -> StoreResult<Vec<Family>> {
        let query = sqlx::query(LIVE_FAMILIES)
            .bind(user.as15())
            .bind(app.as15());
        all(query, &self.pool, |r| {
            Family::try_from(r.blob(0)?.as_slice())
                .map_err(|_| idforce_core::ports::StoreError::Invalid("family".into()))
        })
        .await
    }
}

#[async_trait]
impl SessionAdmin for PgStore {
    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>> {
        let (user, app, only) = filter_params(filter);
        let query = sqlx::query(LIVE_SESSIONS)
            .bind(user)
            .bind(app)
            .bind(now)
            .bind(only);
        all(query, &self.pool, rows::session).await
    }

    async fn org_sessions(&self, org: &SfId, now: Millis, limit: u32) -> StoreResult<Vec<Session>> {
        let query = sqlx::query(ORG_SESSIONS)
            .bind(org.as15())
            .bind(now)
            .bind(i64::from(limit));
        all(query, &self.pool, rows::session).await
    }

    async fn app_users(&self, org: &SfId) -> StoreResult<Vec<(SfId, u64)>> {
        let query = sqlx::query(APP_USERS).bind(org.as15());
        all(query, &self.pool, |r| {
            Ok((r.id(0)?, u64::try_from(r.int(1)?).unwrap_or(0)))
        })
        .await
    }

    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>> {
        let (user, app, only) = filter_params(filter);
        let query = sqlx::query(LIVE_REFRESH).bind(user).bind(app).bind(only);
        all(query, &self.pool, rows::refresh_token).await
    }

    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)> {
        let (user, app, only) = filter_params(filter);
        retrying(|| {
            let (user, app, only) = (user.clone(), app.clone(), only.clone());
            async move {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                let sessions = sqlx::query(REVOKE_LIVE_SESSIONS)
                    .bind(&user)
                    .bind(&app)
                    .bind(now)
                    .bind(&only);
                let sessions = change(sessions, &mut *tx).await?;
                let refresh = if refresh_too {
                    let refresh = sqlx::query(REVOKE_LIVE_REFRESH)
                        .bind(&user)
                        .bind(&app)
                        .bind(now)
                        .bind(&only);
                    change(refresh, &mut *tx).await?
                } else {
                    0
                };
                tx.commit().await.map_err(unavailable)?;
                Ok((sessions, refresh))
            }
        })
        .await
    }
}
