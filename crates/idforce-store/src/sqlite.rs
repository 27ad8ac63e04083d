//! The embedded SQLite store (WAL mode), migrated at open.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use idforce_core::model::{
    AuthCode, ConnectedApp, Family, LockoutPolicy, LoginSession, Millis, Org, PermittedUsers,
    RefreshToken, RefreshTokenPolicy, Session, User,
};
use idforce_core::ports::{
    Approvals, AssertionLedger, Codes, Directory, LoginAttempts, LoginSessions, Redemption,
    RefreshTokens, Sessions, StoreError, StoreResult,
};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::sql::{
    corrupt, digest_of, family_of, json_list, parse_id, retrying, session_filter_sql, sql_store,
    to_json, unavailable,
};
use crate::{Admin, SessionFilter};

/// Schema versions, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_core.sql")),
    (2, include_str!("migrations/sqlite/0002_browser_flows.sql")),
    (3, include_str!("migrations/sqlite/0003_oidc.sql")),
    (4, include_str!("migrations/sqlite/0004_username_index.sql")),
];

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// SQLite takes the portable SQL as written.
    fn sql(s: &'static str) -> &'static str {
        s
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
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
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
                    sqlx::query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    )
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
}

sql_store!(SqliteStore, sqlx::Sqlite, SqliteRow);
