//! Helpers for tests (the `testing` feature): an in-memory store, failure injection, and a
//! fresh PostgreSQL schema per test in the database named by `IDFORCE_TEST_POSTGRES_URL`
//! (default: the machine's local server). Without a reachable server the caller is told why,
//! so it can skip loudly or, under `CI=true`, fail.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use idforce_core::ports::{StoreError, StoreResult};
use sqlx::Connection;

pub use crate::memory::MemoryStore;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

tokio::task_local! {
    /// Writes left before one fails, for the store calls made inside `failing_after`.
    static WRITES_LEFT: Arc<AtomicI64>;
}

/// Runs `work` so that the store write statement after the first `writes` fails (0: the
/// first) with `StoreError::Unavailable`, as a lost connection or a full disk would. Every
/// backend honours it: PostgreSQL and the in-memory store in the calling task, SQLite on its
/// writer thread for the jobs this task queues.
pub async fn failing_after<F: Future>(writes: i64, work: F) -> F::Output {
    WRITES_LEFT
        .scope(Arc::new(AtomicI64::new(writes)), work)
        .await
}

/// Runs `work` under a failure point taken from another task: a batch runs apart from the
/// tasks that queued it.
pub(crate) async fn with_fail_point<F: Future>(point: Arc<AtomicI64>, work: F) -> F::Output {
    WRITES_LEFT.scope(point, work).await
}

/// The failure point of the calling task, if it runs inside `failing_after`.
pub(crate) fn fail_point() -> Option<Arc<AtomicI64>> {
    WRITES_LEFT.try_with(Arc::clone).ok()
}

/// Counts one write against `point`; the write that finds it at zero fails.
pub(crate) fn count_write(point: &AtomicI64) -> StoreResult<()> {
    if point.fetch_sub(1, Ordering::AcqRel) == 0 {
        Err(StoreError::Unavailable("injected write failure".into()))
    } else {
        Ok(())
    }
}

pub fn test_postgres_url() -> String {
    std::env::var("IDFORCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned())
}

/// Creates an empty schema and returns a URL whose connections use it.
pub async fn fresh_postgres_schema() -> Result<String, String> {
    let base = test_postgres_url();
    let mut conn = sqlx::PgConnection::connect(&base).await.map_err(|e| {
        format!(
            "PostgreSQL at {} is not reachable: {e}",
            crate::redact_url(&base)
        )
    })?;
    let bytes = idforce_core::token::random_bytes::<8>();
    let schema: String = format!(
        "t_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot create a schema: {e}"))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options[search_path]={schema}"))
}

/// Whether tests must fail rather than skip when a service is missing.
pub fn strict() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}
