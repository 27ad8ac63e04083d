//! The PostgreSQL store: several idforce nodes on one database form one service. Migrations
//! are applied by whichever node gets the migration row lock first; the others wait for it and
//! find nothing left to do. No advisory locks or LISTEN/NOTIFY: what needs to be atomic is a
//! single conditional write or a transaction, so CockroachDB serves as well.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};
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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use crate::sql::{
    corrupt, digest_of, dollar_placeholders, family_of, json_list, parse_id, retrying,
    session_filter_sql, sql_store, sql_token_store, to_json, unavailable,
};
use crate::{Admin, SessionFilter, StoreSettings};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_core.sql")),
    (
        2,
        include_str!("migrations/postgres/0002_browser_flows.sql"),
    ),
    (3, include_str!("migrations/postgres/0003_oidc.sql")),
    (
        4,
        include_str!("migrations/postgres/0004_username_index.sql"),
    ),
    (
        5,
        include_str!("migrations/postgres/0005_assertion_keys.sql"),
    ),
    (
        6,
        include_str!("migrations/postgres/0006_session_family_index.sql"),
    ),
    (7, include_str!("migrations/postgres/0007_device_codes.sql")),
];

pub struct PgStore {
    pool: PgPool,
    cache: crate::cache::DirectoryCache,
}

/// Translated statements, made once per statement and kept for the life of the process.
static TRANSLATED: LazyLock<Mutex<HashMap<&'static str, &'static str>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl PgStore {
    /// Sessions that ended before `before`, slice by slice through the pool.
    async fn purge_sessions(&self, before: Millis) -> StoreResult<u64> {
        let mut after: Vec<u8> = Vec::new();
        let mut deleted = 0u64;
        loop {
            let last: Option<Vec<u8>> =
                sqlx::query_scalar(PgStore::sql(crate::sql::PURGE_SLICE_END))
                    .bind(&after)
                    .bind(crate::sql::PURGE_SLICE - 1)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?;
            deleted += sqlx::query(PgStore::sql(crate::sql::PURGE_SLICE_SESSIONS))
                .bind(&after)
                .bind(before)
                .bind(crate::sql::slice_bound(&last))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
            match last {
                Some(last) => after = last,
                None => return Ok(deleted),
            }
        }
    }

    /// One purge statement (`?1` the time, `?2` a key bound if the statement takes one).
    async fn purge_rows(
        &self,
        sql: &'static str,
        before: Millis,
        key: Option<Vec<u8>>,
    ) -> StoreResult<u64> {
        let mut query = sqlx::query(PgStore::sql(sql)).bind(before);
        if let Some(key) = key {
            query = query.bind(key);
        }
        Ok(query
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected())
    }

    fn sql(s: &'static str) -> &'static str {
        let mut cache = TRANSLATED.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(s)
            .or_insert_with(|| Box::leak(dollar_placeholders(s).into_boxed_str()))
    }

    pub async fn open(url: &str, settings: &StoreSettings) -> StoreResult<PgStore> {
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(t) = settings.statement_timeout {
            options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_size.unwrap_or(16))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = PgStore {
            pool,
            cache: crate::cache::DirectoryCache::new(
                settings
                    .directory_cache_ttl
                    .unwrap_or(crate::cache::DEFAULT_TTL),
            ),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        // Nodes starting together may race on CREATE TABLE IF NOT EXISTS itself; retry.
        for attempt in 0.. {
            let r = sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
                 INSERT INTO schema_migrations (version, applied_at) VALUES (0, 0) ON CONFLICT (version) DO NOTHING;",
            )
            .execute(&self.pool)
            .await;
            match r {
                Ok(_) => break,
                Err(_) if attempt < 5 => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(unavailable(e)),
            }
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Row 0 is the migration lock: one node migrates, the others wait here.
        sqlx::query("SELECT version FROM schema_migrations WHERE version = 0 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (version, sql) in MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            if done.is_none() {
                sqlx::raw_sql(*sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(crate::now_secs())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }
}

sql_store!(PgStore, sqlx::Postgres, PgRow);
sql_token_store!(PgStore, sqlx::Postgres, PgRow);
