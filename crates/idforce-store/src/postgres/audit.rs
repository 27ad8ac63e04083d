//! The Setup Audit Trail.

use async_trait::async_trait;
use idforce_core::ports::StoreResult;
use idforce_core::sfid::SfId;

use super::{PgStore, all, change};
use crate::{AuditRecord, AuditTrail, rows};

const RECORD: &str =
    "INSERT INTO audit_trail (at, actor, section, action, org_id) VALUES ($1, $2, $3, $4, $5)";
/// `$1` an org, or NULL for every org's.
const NEWEST: &str = "SELECT at, actor, section, action, org_id FROM audit_trail
     WHERE $1::text IS NULL OR org_id = $1 ORDER BY at DESC, id DESC LIMIT $2";

#[async_trait]
impl AuditTrail for PgStore {
    async fn record_change(&self, r: &AuditRecord) -> StoreResult<()> {
        let query = sqlx::query(RECORD)
            .bind(r.at)
            .bind(&r.actor)
            .bind(&r.section)
            .bind(&r.action)
            .bind(r.org.map(|o| o.as15().to_owned()));
        change(query, &self.pool).await.map(drop)
    }

    async fn audit_trail(&self, org: Option<&SfId>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        all(
            sqlx::query(NEWEST)
                .bind(org.map(|o| o.as15().to_owned()))
                .bind(i64::from(limit)),
            &self.pool,
            rows::audit,
        )
        .await
    }
}
