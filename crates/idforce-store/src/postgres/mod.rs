//! The PostgreSQL store: several idforce nodes on one database form one service. Migrations
//! are applied by whichever node gets the migration row lock first; the others wait for it and
//! find nothing left to do. No advisory locks or LISTEN/NOTIFY: what needs to be atomic is a
//! single conditional write or a transaction, so CockroachDB serves as well.

mod accounts;
mod approvals;
mod audit;
mod batch;
mod codes;
mod device_codes;
mod keys;
mod login_history;
mod logins;
mod migrations;
mod purge;
mod spends;
mod tokens;
mod transfer;

use std::str::FromStr;
use std::time::Duration;

use idforce_core::ports::{StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use crate::StoreSettings;
use crate::rows::Columns;

pub struct PgStore {
    pool: PgPool,
    /// New sessions, group-committed (`batch.rs`).
    sessions: batch::SessionBatcher,
    /// Session reads, several to a query (`batch.rs`).
    session_reads: batch::Reader<idforce_core::model::Session>,
    /// Refreshes without rotation, several to a transaction (`batch.rs`).
    refresh_uses: batch::RefreshUses,
    /// Refresh token reads, several to a query (`batch.rs`).
    refresh_reads: batch::Reader<idforce_core::model::RefreshToken>,
    /// JWT bearer grants' assertions and sessions, several to a transaction (`spends.rs`).
    assertion_spends: spends::AssertionSpends,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

impl PgStore {
    pub async fn open(url: &str, settings: &StoreSettings) -> StoreResult<PgStore> {
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(t) = settings.statement_timeout {
            options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
        }
        reachable(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_size.unwrap_or(16))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        migrations::apply(&pool).await?;
        Ok(PgStore {
            sessions: batch::SessionBatcher::start(pool.clone()),
            session_reads: batch::Reader::start(
                pool.clone(),
                batch::SESSIONS_BY_DIGEST,
                crate::rows::session,
                |s| s.digest,
            ),
            refresh_uses: batch::RefreshUses::start(pool.clone()),
            refresh_reads: batch::Reader::start(
                pool.clone(),
                batch::REFRESH_BY_DIGEST,
                crate::rows::refresh_token,
                |t| t.digest,
            ),
            assertion_spends: spends::AssertionSpends::start(pool.clone()),
            pool,
        })
    }
}

/// One connection first, so that a server that is down, or refuses us, is reported at once and
/// by name — not as the pool's timeout ten seconds later.
async fn reachable(options: &PgConnectOptions) -> StoreResult<()> {
    use sqlx::Connection;
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("(the user's)").to_owned();
    match tokio::time::timeout(REACH_TIMEOUT, sqlx::PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {at}, database {database}: {e} (is it running and \
             reachable there, and are the user, password and database right?)"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from PostgreSQL at {at} within {} s (a firewall dropping packets, or a \
             wrong host?)",
            REACH_TIMEOUT.as_secs()
        ))),
    }
}

/// How long the first connection may take at start.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_owned())
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() || d.is_check_violation() => {
            StoreError::Invalid(d.message().to_owned())
        }
        // serialization_failure, deadlock_detected (PostgreSQL, CockroachDB).
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")) => {
            StoreError::Retryable(d.message().to_owned())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

impl Columns for PgRow {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.try_get(i).map_err(unavailable)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.try_get(i).map_err(unavailable)
    }
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.try_get(i).map_err(unavailable)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.try_get(i).map_err(unavailable)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.try_get(i).map_err(unavailable)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.try_get(i).map_err(unavailable)
    }
    fn opt_blob(&self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        self.try_get(i).map_err(unavailable)
    }
}

/// The row a query finds, if any, decoded.
async fn one<'e, T, E>(
    query: Query<'_>,
    executor: E,
    decode: impl FnOnce(&PgRow) -> StoreResult<T>,
) -> StoreResult<Option<T>>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    query
        .fetch_optional(executor)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Every row a query finds, decoded.
async fn all<'e, T, E>(
    query: Query<'_>,
    executor: E,
    decode: impl Fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    query
        .fetch_all(executor)
        .await
        .map_err(unavailable)?
        .iter()
        .map(decode)
        .collect()
}

/// How many rows a statement changed.
async fn change<'e, E>(query: Query<'_>, executor: E) -> StoreResult<u64>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    injected_failure()?;
    Ok(query
        .execute(executor)
        .await
        .map_err(unavailable)?
        .rows_affected())
}

/// The failure `testing::failing_after` injects into this write, if any: every statement
/// that writes asks first.
fn injected_failure() -> StoreResult<()> {
    #[cfg(feature = "testing")]
    if let Some(point) = crate::testing::fail_point() {
        crate::testing::count_write(&point)?;
    }
    Ok(())
}

/// Runs `op` again (up to ten more times, with a short growing pause) when it fails with a
/// serialization failure or deadlock: the guarantees come from conditional writes inside
/// transactions, and a SERIALIZABLE database (CockroachDB) may abort one of two racing
/// transactions and expects the client to retry it.
async fn retrying<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0u64;
    loop {
        match op().await {
            Err(StoreError::Retryable(_)) if attempt < 10 => {
                attempt += 1;
                // Random jitter, so that the transactions that collided do not collide again.
                let jitter =
                    u64::from(idforce_core::token::random_bytes::<1>()[0]) % (4 * attempt + 1);
                tokio::time::sleep(Duration::from_millis(2 * attempt + jitter)).await;
            }
            other => return other,
        }
    }
}
