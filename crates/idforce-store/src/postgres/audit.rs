//! The Setup Audit Trail.

use async_trait::async_trait;
use idforce_core::ports::StoreResult;

use super::{PgStore, all, change};
use crate::{AuditRecord, AuditTrail, rows};

const RECORD: &str = "INSERT INTO audit_trail (at, actor, section, action) VALUES ($1, $2, $3, $4)";
const NEWEST: &str =
    "SELECT at, actor, section, action FROM audit_trail ORDER BY at DESC, id DESC LIMIT $1";

#[async_trait]
impl AuditTrail for PgStore {
    async fn record_change(&self, r: &AuditRecord) -> StoreResult<()> {
        let query = sqlx::query(RECORD)
            .bind(r.at)
            .bind(&r.actor)
            .bind(&r.section)
            .bind(&r.action);
        change(query, &self.pool).await.map(drop)
    }

    async fn audit_trail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        all(
            sqlx::query(NEWEST).bind(i64::from(limit)),
            &self.pool,
            rows::audit,
        )
        .await
    }
}
