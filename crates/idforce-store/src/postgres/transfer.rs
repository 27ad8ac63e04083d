//! Server-wide values, id counters, and what export reads beyond the directory.

use async_trait::async_trait;
use idforce_core::model::RefreshToken;
use idforce_core::ports::StoreResult;
use idforce_core::sfid::SfId;
use sqlx::Row;

use super::{PgStore, all, change, retrying, unavailable};
use crate::{ApprovalRecord, Meta, Transfer, rows};

const META_INSERT: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const META_GET: &str = "SELECT value FROM meta WHERE key = $1";
const META_DELETE: &str = "DELETE FROM meta WHERE key = $1";
const META_SET: &str = "INSERT INTO meta (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const NEXT_ID: &str = "INSERT INTO id_serials (prefix, next) VALUES ($1, 2)
     ON CONFLICT (prefix) DO UPDATE SET next = id_serials.next + 1
     RETURNING next - 1";
const SERIALS: &str = "SELECT prefix, next FROM id_serials ORDER BY prefix";
const RAISE_SERIAL: &str = "INSERT INTO id_serials (prefix, next) VALUES ($1, $2)
     ON CONFLICT (prefix) DO UPDATE SET next = GREATEST(id_serials.next, $2)";
const LIVE_REFRESH: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
     last_used_at, rotated_at, revoked_at FROM refresh_tokens
     WHERE revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at";

#[async_trait]
impl Meta for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        change(sqlx::query("SELECT 1"), &self.pool).await.map(drop)
    }

    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        retrying(|| async move {
            change(sqlx::query(META_INSERT).bind(key).bind(value), &self.pool).await?;
            sqlx::query_scalar(META_GET)
                .bind(key)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        let query = sqlx::query(META_SET).bind(key).bind(value);
        change(query, &self.pool).await.map(drop)
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar(META_GET)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn delete_meta(&self, key: &str) -> StoreResult<()> {
        change(sqlx::query(META_DELETE).bind(key), &self.pool)
            .await
            .map(drop)
    }

    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId> {
        retrying(|| async move {
            let n: i64 = sqlx::query_scalar(NEXT_ID)
                .bind(key_prefix)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(SfId::mint(key_prefix, n as u64))
        })
        .await
    }

    async fn serials(&self) -> StoreResult<Vec<(String, i64)>> {
        all(sqlx::query(SERIALS), &self.pool, |r| {
            Ok((
                r.try_get(0).map_err(unavailable)?,
                r.try_get(1).map_err(unavailable)?,
            ))
        })
        .await
    }

    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()> {
        let query = sqlx::query(RAISE_SERIAL).bind(key_prefix).bind(next);
        change(query, &self.pool).await.map(drop)
    }
}

#[async_trait]
impl Transfer for PgStore {
    async fn approvals(&self) -> StoreResult<Vec<ApprovalRecord>> {
        let query = sqlx::query(super::approvals::ALL_APPROVALS);
        all(query, &self.pool, rows::approval).await
    }

    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>> {
        all(sqlx::query(LIVE_REFRESH), &self.pool, |r| {
            rows::refresh_token(r)
        })
        .await
    }
}
