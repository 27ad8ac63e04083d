//! Helpers for tests that need a PostgreSQL store: each gets a fresh schema in the database
//! named by `IDFORCE_TEST_POSTGRES_URL` (default: the machine's local server). Without a
//! reachable server the caller is told why, so it can skip loudly or, under `CI=true`, fail.

use sqlx::Connection;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
