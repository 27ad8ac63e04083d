//! Approvals: which scopes a user granted an app, on the consent page or by an admin.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::{Approvals, StoreResult};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;

use super::{PgStore, change, unavailable};
use crate::rows::corrupt;

const APPROVAL: &str = "SELECT scopes FROM approvals WHERE user_id = $1 AND app_id = $2";
const APPROVE: &str =
    "INSERT INTO approvals (user_id, app_id, scopes, created_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (user_id, app_id) DO UPDATE SET scopes = excluded.scopes";
pub(super) const ALL_APPROVALS: &str =
    "SELECT user_id, app_id, scopes, created_at FROM approvals ORDER BY user_id, app_id";

#[async_trait]
impl Approvals for PgStore {
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<Scopes>> {
        let scopes: Option<String> = sqlx::query_scalar(APPROVAL)
            .bind(user.as15())
            .bind(app.as15())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        scopes
            .map(|s| Scopes::parse(&s).map_err(|_| corrupt("scopes")))
            .transpose()
    }

    async fn approve(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &Scopes,
        now: Millis,
    ) -> StoreResult<()> {
        let query = sqlx::query(APPROVE)
            .bind(user.as15())
            .bind(app.as15())
            .bind(scopes.to_string())
            .bind(now);
        change(query, &self.pool).await.map(drop)
    }
}
