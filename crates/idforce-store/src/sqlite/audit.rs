//! The Setup Audit Trail.

use async_trait::async_trait;
use idforce_core::ports::StoreResult;
use idforce_core::sfid::SfId;
use rusqlite::params;

use super::{SqliteStore, all, change};
use crate::{AuditRecord, AuditTrail, rows};

const RECORD: &str =
    "INSERT INTO audit_trail (at, actor, section, action, org_id) VALUES (?1, ?2, ?3, ?4, ?5)";
/// `?1` an org, or NULL for every org's.
const NEWEST: &str = "SELECT at, actor, section, action, org_id FROM audit_trail
     WHERE ?1 IS NULL OR org_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2";

#[async_trait]
impl AuditTrail for SqliteStore {
    async fn record_change(&self, r: &AuditRecord) -> StoreResult<()> {
        let r = r.clone();
        self.db
            .write_statement(move |c| {
                let org = r.org.map(|o| o.as15().to_owned());
                change(c, RECORD, params![r.at, r.actor, r.section, r.action, org]).map(drop)
            })
            .await
    }

    async fn audit_trail(&self, org: Option<&SfId>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let org = org.map(|o| o.as15().to_owned());
        self.db.read(|c| {
            all(c, NEWEST, params![org, i64::from(limit)], |r| {
                rows::audit(r)
            })
        })
    }
}
