//! Approvals: which scopes a user granted an app, on the consent page or by an admin.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::{Approvals, StoreResult};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use rusqlite::params;

use super::{SqliteStore, change, scalar};
use crate::rows::corrupt;

const APPROVAL: &str = "SELECT scopes FROM approvals WHERE user_id = ?1 AND app_id = ?2";
const APPROVE: &str =
    "INSERT INTO approvals (user_id, app_id, scopes, created_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (user_id, app_id) DO UPDATE SET scopes = excluded.scopes";
pub(super) const ALL_APPROVALS: &str =
    "SELECT user_id, app_id, scopes, created_at FROM approvals ORDER BY user_id, app_id";

#[async_trait]
impl Approvals for SqliteStore {
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<Scopes>> {
        let scopes: Option<String> = self
            .db
            .read(|c| scalar(c, APPROVAL, [user.as15(), app.as15()]))?;
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
        let (user, app, scopes) = (*user, *app, scopes.to_string());
        self.db
            .write_statement(move |c| {
                change(c, APPROVE, params![user.as15(), app.as15(), scopes, now]).map(drop)
            })
            .await
    }
}
