//! The Setup Audit Trail.

use async_trait::async_trait;
use idforce_core::ports::StoreResult;
use rusqlite::params;

use super::{SqliteStore, all, change};
use crate::{AuditRecord, AuditTrail, rows};

const RECORD: &str = "INSERT INTO audit_trail (at, actor, section, action) VALUES (?1, ?2, ?3, ?4)";
const NEWEST: &str =
    "SELECT at, actor, section, action FROM audit_trail ORDER BY at DESC, id DESC LIMIT ?1";

#[async_trait]
impl AuditTrail for SqliteStore {
    async fn record_change(&self, r: &AuditRecord) -> StoreResult<()> {
        let r = r.clone();
        self.db
            .write_statement(move |c| {
                change(c, RECORD, params![r.at, r.actor, r.section, r.action]).map(drop)
            })
            .await
    }

    async fn audit_trail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.db
            .read(|c| all(c, NEWEST, [i64::from(limit)], |r| rows::audit(r)))
    }
}
