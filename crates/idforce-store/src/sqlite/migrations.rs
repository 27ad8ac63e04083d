//! The SQLite schema, one version at a time.

use std::path::Path;

use idforce_core::ports::StoreResult;
use rusqlite::OptionalExtension;

use super::writer::{connect_creating, error};

/// Schema versions, applied in order, each once.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_core.sql")),
    (2, include_str!("migrations/0002_browser_flows.sql")),
    (3, include_str!("migrations/0003_oidc.sql")),
    (4, include_str!("migrations/0004_username_index.sql")),
    (5, include_str!("migrations/0005_assertion_keys.sql")),
    (6, include_str!("migrations/0006_session_family_index.sql")),
    (7, include_str!("migrations/0007_device_codes.sql")),
    (8, include_str!("migrations/0008_assertion_log.sql")),
    (9, include_str!("migrations/0009_app_secrets.sql")),
    (10, include_str!("migrations/0010_profiles.sql")),
    (11, include_str!("migrations/0011_frozen_blocked.sql")),
    (12, include_str!("migrations/0012_audit_trail.sql")),
    (13, include_str!("migrations/0013_login_history.sql")),
    (14, include_str!("migrations/0014_app_details.sql")),
    (15, include_str!("migrations/0015_audit_org.sql")),
    (16, include_str!("migrations/0016_session_source_ip.sql")),
    (17, include_str!("migrations/0017_login_history_by_id.sql")),
    (18, include_str!("migrations/0018_hosts.sql")),
    (19, include_str!("migrations/0019_org_oauth_settings.sql")),
    (20, include_str!("migrations/0020_max_approvals.sql")),
    (21, include_str!("migrations/0021_client_registration.sql")),
    (22, include_str!("migrations/0022_login_rates.sql")),
    (23, include_str!("migrations/0023_login_restrictions.sql")),
    (24, include_str!("migrations/0024_token_exchange.sql")),
];

/// Creates the file if needed, switches it to WAL mode and applies what is missing.
pub(super) fn apply(path: &Path) -> StoreResult<()> {
    let conn = connect_creating(path)?;
    // Persistent: every later connection opens the file in WAL mode.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(error)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(error)?;
    for (version, sql) in MIGRATIONS {
        // BEGIN IMMEDIATE takes the write lock first, so two processes opening one new file
        // cannot both apply a migration.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(error)?;
        let applied = (|| {
            let done = conn
                .query_row(
                    "SELECT version FROM schema_migrations WHERE version = ?1",
                    [version],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            if done.is_none() {
                conn.execute_batch(sql)?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    [*version, crate::now_secs()],
                )?;
            }
            conn.execute_batch("COMMIT")
        })();
        if let Err(e) = applied {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error(e));
        }
    }
    Ok(())
}
