//! The embedded SQLite store (WAL mode), migrated at open.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use idforce_core::model::{
    AuthCode, ConnectedApp, DeviceCode, DeviceDecision, Family, LockoutPolicy, LoginSession,
    Millis, Org, PermittedUsers, RefreshToken, RefreshTokenPolicy, Session, User,
};
use idforce_core::ports::{
    Approvals, AssertionLedger, Codes, DeviceCodes, DevicePoll, Directory, LoginAttempts,
    LoginSessions, Redemption, RefreshTokens, Sessions, StoreError, StoreResult,
};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::direct::{self, Direct, change};
use crate::ledger::Ledger;
use crate::sql::{
    corrupt, digest_of, family_of, json_list, parse_id, retrying, session_filter_sql, sql_store,
    to_json, unavailable,
};
use crate::{Admin, SessionFilter};
use rusqlite::OptionalExtension;

/// Schema versions, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_core.sql")),
    (2, include_str!("migrations/sqlite/0002_browser_flows.sql")),
    (3, include_str!("migrations/sqlite/0003_oidc.sql")),
    (4, include_str!("migrations/sqlite/0004_username_index.sql")),
    (5, include_str!("migrations/sqlite/0005_assertion_keys.sql")),
    (
        6,
        include_str!("migrations/sqlite/0006_session_family_index.sql"),
    ),
    (7, include_str!("migrations/sqlite/0007_device_codes.sql")),
    (8, include_str!("migrations/sqlite/0008_assertion_log.sql")),
];

pub struct SqliteStore {
    /// Everything but the token hot path.
    pool: SqlitePool,
    /// Sessions, assertions and refresh tokens (see `direct.rs`).
    direct: Arc<Direct>,
    /// Spent assertions (see `ledger.rs`).
    ledger: Arc<Ledger>,
    cache: crate::cache::DirectoryCache,
}

impl SqliteStore {
    /// SQLite takes the portable SQL as written.
    fn sql(s: &'static str) -> &'static str {
        s
    }

    /// Sessions that ended before `before`, slice by slice, each slice found and deleted by
    /// the writer between two group commits. Only the writer's page cache sees the scan, and
    /// only one slice of it at a time: run through the readers or the pool, or left in the
    /// cache, a purge of millions of sessions would fill the cache of every connection it
    /// passed through, and the process would grow with the store.
    async fn purge_sessions(&self, before: Millis) -> StoreResult<u64> {
        let mut after: Vec<u8> = Vec::new();
        let mut deleted = 0u64;
        loop {
            // One writing statement: it needs no savepoint.
            let (last, n) = self
                .direct
                .write_statement(move |c| {
                    let last: Option<Vec<u8>> = c
                        .prepare_cached(crate::sql::PURGE_SLICE_END)
                        .and_then(|mut st| {
                            st.query_row(
                                rusqlite::params![&after, crate::sql::PURGE_SLICE - 1],
                                |r| r.get(0),
                            )
                            .optional()
                        })
                        .map_err(direct::error)?;
                    let n = change(
                        c,
                        crate::sql::PURGE_SLICE_SESSIONS,
                        rusqlite::params![&after, before, crate::sql::slice_bound(&last)],
                    )?;
                    // Best effort: a cache left full costs memory, not correctness.
                    let _ = c.execute_batch("PRAGMA shrink_memory");
                    Ok((last, n))
                })
                .await?;
            deleted += n as u64;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        Ok(deleted)
    }

    /// One purge statement (`?1` the time, `?2` a key bound if the statement takes one), run
    /// by the writer for the same reason as the sessions' slices: through the pool, a scan of
    /// the refresh tokens or the ledger would leave a connection's page cache full for good
    /// (measured: 2 MB more resident after a start on a store that had served JWT grants).
    async fn purge_rows(
        &self,
        sql: &'static str,
        before: Millis,
        key: Option<Vec<u8>>,
    ) -> StoreResult<u64> {
        self.direct
            .write_statement(move |c| {
                let n = match &key {
                    Some(key) => change(c, sql, rusqlite::params![before, key]),
                    None => change(c, sql, rusqlite::params![before]),
                }?;
                direct::release_memory(c)?;
                Ok(n as u64)
            })
            .await
    }

    pub async fn open(url: &str, settings: &crate::StoreSettings) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(e.to_string()))?
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives a crash of the process (not of the machine).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.pool_size.unwrap_or(8))
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        migrate(&pool).await?;
        let direct = Arc::new(Direct::open(options.get_filename())?);
        let ledger = Ledger::open(direct.clone()).await?;
        Ok(SqliteStore {
            pool,
            direct,
            ledger,
            cache: crate::cache::DirectoryCache::new(
                settings
                    .directory_cache_ttl
                    .unwrap_or(crate::cache::DEFAULT_TTL),
            ),
        })
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    for (version, sql) in MIGRATIONS {
        // BEGIN IMMEDIATE takes the write lock first, so two processes opening one new
        // file cannot both apply a migration.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(unavailable)?;
        let result = async {
            if done.is_none() {
                sqlx::raw_sql(*sql).execute(&mut *conn).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                    .bind(version)
                    .bind(crate::now_secs())
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await
        }
        .await;
        if let Err(e) = result {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(unavailable(e));
        }
    }
    Ok(())
}

sql_store!(SqliteStore, sqlx::Sqlite, SqliteRow);

// The token hot path: the same SQL as `sql_token_store!`, through `Direct`.

const SESSION_BY_DIGEST: &str = "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family FROM sessions WHERE digest = ?";
const REFRESH_BY_DIGEST: &str = "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at, last_used_at, rotated_at, revoked_at FROM refresh_tokens WHERE digest = ?";

/// A row as read, before its values are checked (a rusqlite row closure cannot fail with
/// our error type).
type RawSession = (
    Vec<u8>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<Vec<u8>>,
);

fn raw_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSession> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn session_of(raw: RawSession) -> StoreResult<Session> {
    let (digest, org, user, app, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family) =
        raw;
    Ok(Session {
        digest: digest_of(Some(digest))?.ok_or_else(|| corrupt("digest"))?,
        org_id: parse_id(&org)?,
        user_id: parse_id(&user)?,
        app_id: parse_id(&app)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        issued_at,
        last_used_at,
        timeout_secs,
        revoked: revoked_at.is_some(),
        family: family_of(family)?,
    })
}

type RawRefresh = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

fn raw_refresh(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRefresh> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn refresh_of(raw: RawRefresh) -> StoreResult<RefreshToken> {
    let (
        digest,
        family,
        org,
        user,
        app,
        scopes,
        family_started_at,
        issued_at,
        last_used_at,
        rotated_at,
        revoked_at,
    ) = raw;
    Ok(RefreshToken {
        digest: digest_of(Some(digest))?.ok_or_else(|| corrupt("digest"))?,
        family: family_of(Some(family))?.ok_or_else(|| corrupt("family"))?,
        org_id: parse_id(&org)?,
        user_id: parse_id(&user)?,
        app_id: parse_id(&app)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        family_started_at,
        issued_at,
        last_used_at,
        rotated: rotated_at.is_some(),
        revoked: revoked_at.is_some(),
    })
}

fn insert_refresh_direct(c: &rusqlite::Connection, t: &RefreshToken) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO refresh_tokens (digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .and_then(|mut st| {
            st.execute(rusqlite::params![
                &t.digest[..],
                &t.family[..],
                t.org_id.as15(),
                t.user_id.as15(),
                t.app_id.as15(),
                t.scopes.to_string(),
                t.family_started_at,
                t.issued_at,
                t.last_used_at,
            ])
        })
        .map_err(direct::error)?;
    Ok(())
}

fn insert_session_direct(c: &rusqlite::Connection, s: &Session) -> StoreResult<()> {
    change(
        c,
        "INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        rusqlite::params![
            &s.digest[..],
            s.org_id.as15(),
            s.user_id.as15(),
            s.app_id.as15(),
            s.scopes.to_string(),
            s.issued_at,
            s.last_used_at,
            s.timeout_secs,
            s.family.as_ref().map(|f| &f[..]),
        ],
    )
    .map(drop)
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let s = s.clone();
        self.direct
            .write_statement(move |c| insert_session_direct(c, &s))
            .await
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        self.direct
            .read(|c| {
                c.prepare_cached(SESSION_BY_DIGEST)?
                    .query_row([&digest[..]], raw_session)
                    .optional()
            })?
            .map(session_of)
            .transpose()
    }

    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        let digest = *digest;
        self.direct
            .write_statement(move |c| {
                change(c, "UPDATE sessions SET last_used_at = CASE WHEN last_used_at < ?1 THEN ?1 ELSE last_used_at END WHERE digest = ?2",
                    rusqlite::params![now, &digest[..]],
                )
                .map(drop)
            })
            .await
    }

    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        let digest = *digest;
        self.direct
            .write_statement(move |c| {
                change(
                    c,
                    "UPDATE sessions SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL",
                    rusqlite::params![now, &digest[..]],
                )
                .map(|n| n > 0)
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
        session: &Session,
    ) -> StoreResult<bool> {
        self.spend(digest, expires_at, now, Some(session.clone()))
            .await
    }
}

impl SqliteStore {
    /// Spends an assertion and stores the session it pays for, if any, in one write.
    async fn spend(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        session: Option<Session>,
    ) -> StoreResult<bool> {
        let digest = *digest;
        let fresh = self
            .direct
            .write(move |c| {
                let fresh = Ledger::spend(c, &digest, expires_at, now)?;
                if let (true, Some(session)) = (fresh, &session) {
                    insert_session_direct(c, session)?;
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
        self.direct
            .write_statement(move |c| insert_refresh_direct(c, &t))
            .await
    }

    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        self.direct
            .read(|c| {
                c.prepare_cached(REFRESH_BY_DIGEST)?
                    .query_row([&digest[..]], raw_refresh)
                    .optional()
            })?
            .map(refresh_of)
            .transpose()
    }

    async fn touch_refresh_token(&self, old: &Digest, now: Millis) -> StoreResult<()> {
        let old = *old;
        self.direct
            .write_statement(move |c| {
                change(c, "UPDATE refresh_tokens SET last_used_at = CASE WHEN last_used_at < ?1 THEN ?1 ELSE last_used_at END WHERE digest = ?2",
                    rusqlite::params![now, &old[..]],
                )
                .map(drop)
            })
            .await
    }

    async fn rotate_refresh_token(
        &self,
        old: &Digest,
        new: &RefreshToken,
        now: Millis,
    ) -> StoreResult<bool> {
        let (old, new) = (*old, new.clone());
        self.direct
            .write(move |c| {
                let n = change(c, "UPDATE refresh_tokens SET rotated_at = ? WHERE digest = ? AND rotated_at IS NULL AND revoked_at IS NULL",
                    rusqlite::params![now, &old[..]],
                )?;
                if n != 1 {
                    return Ok(false);
                }
                insert_refresh_direct(c, &new)?;
                Ok(true)
            })
            .await
    }

    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        let family = *family;
        self.direct
            .write(move |c| {
                change(c, "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                    rusqlite::params![now, &family[..]],
                )?;
                let n = change(c, "UPDATE sessions SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                    rusqlite::params![now, &family[..]],
                )?;
                Ok(n as u64)
            })
            .await
    }
}
