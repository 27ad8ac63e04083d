//! The PostgreSQL schema, one version at a time, applied by one node while the others wait.

use std::time::Duration;

use idforce_core::ports::StoreResult;
use sqlx::PgPool;

use super::unavailable;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_core.sql")),
    (2, include_str!("migrations/0002_browser_flows.sql")),
    (3, include_str!("migrations/0003_oidc.sql")),
    (4, include_str!("migrations/0004_username_index.sql")),
    (5, include_str!("migrations/0005_assertion_keys.sql")),
    (6, include_str!("migrations/0006_session_family_index.sql")),
    (7, include_str!("migrations/0007_device_codes.sql")),
    (8, include_str!("migrations/0008_app_secrets.sql")),
    (9, include_str!("migrations/0009_profiles.sql")),
    (10, include_str!("migrations/0010_frozen_blocked.sql")),
    (11, include_str!("migrations/0011_audit_trail.sql")),
    (12, include_str!("migrations/0012_login_history.sql")),
    (13, include_str!("migrations/0013_app_details.sql")),
    (14, include_str!("migrations/0014_audit_org.sql")),
    (15, include_str!("migrations/0015_session_source_ip.sql")),
    (16, include_str!("migrations/0016_login_history_by_id.sql")),
    (17, include_str!("migrations/0017_hosts.sql")),
    (18, include_str!("migrations/0018_org_oauth_settings.sql")),
    (19, include_str!("migrations/0019_max_approvals.sql")),
    (20, include_str!("migrations/0020_client_registration.sql")),
    (21, include_str!("migrations/0021_login_rates.sql")),
    (22, include_str!("migrations/0022_login_restrictions.sql")),
    (23, include_str!("migrations/0023_token_exchange.sql")),
];

pub(super) async fn apply(pool: &PgPool) -> StoreResult<()> {
    // Nodes starting together may race on CREATE TABLE IF NOT EXISTS itself; retry.
    for attempt in 0.. {
        let r = sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
             INSERT INTO schema_migrations (version, applied_at) VALUES (0, 0) ON CONFLICT (version) DO NOTHING;",
        )
        .execute(pool)
        .await;
        match r {
            Ok(_) => break,
            Err(_) if attempt < 5 => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(unavailable(e)),
        }
    }
    let mut tx = pool.begin().await.map_err(unavailable)?;
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
