//! Server-wide values, id counters, and what export reads beyond the directory.

use async_trait::async_trait;
use idforce_core::model::RefreshToken;
use idforce_core::ports::StoreResult;
use idforce_core::sfid::SfId;
use rusqlite::params;

use super::{SqliteStore, all, change, scalar};
use crate::{ApprovalRecord, Meta, Transfer, rows};

const META_INSERT: &str =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING";
const META_GET: &str = "SELECT value FROM meta WHERE key = ?1";
const META_DELETE: &str = "DELETE FROM meta WHERE key = ?1";
const META_SET: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const NEXT_ID: &str = "INSERT INTO id_serials (prefix, next) VALUES (?1, 2)
     ON CONFLICT (prefix) DO UPDATE SET next = id_serials.next + 1
     RETURNING next - 1";
const SERIALS: &str = "SELECT prefix, next FROM id_serials ORDER BY prefix";
const RAISE_SERIAL: &str = "INSERT INTO id_serials (prefix, next) VALUES (?1, ?2)
     ON CONFLICT (prefix) DO UPDATE SET next = CASE WHEN id_serials.next < ?2 THEN ?2 ELSE id_serials.next END";
const LIVE_REFRESH: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
     last_used_at, rotated_at, revoked_at FROM refresh_tokens
     WHERE revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at";

#[async_trait]
impl Meta for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db.read(|c| scalar::<i64>(c, "SELECT 1", [])).map(drop)
    }

    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.db
            .write(move |c| {
                change(c, META_INSERT, params![key, value])?;
                Ok(scalar(c, META_GET, [&key])?.unwrap_or(value))
            })
            .await
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.db
            .write_statement(move |c| change(c, META_SET, params![key, value]).map(drop))
            .await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.db.read(|c| scalar(c, META_GET, [key]))
    }

    async fn delete_meta(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.db
            .write_statement(move |c| change(c, META_DELETE, [key]).map(drop))
            .await
    }

    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId> {
        let prefix = key_prefix.to_owned();
        let n: i64 = self
            .db
            .write_statement(move |c| Ok(scalar(c, NEXT_ID, [&prefix])?.unwrap_or(1)))
            .await?;
        Ok(SfId::mint(key_prefix, n as u64))
    }

    async fn serials(&self) -> StoreResult<Vec<(String, i64)>> {
        self.db.read(|c| {
            all(c, SERIALS, [], |r| {
                Ok((
                    r.get(0).map_err(super::error)?,
                    r.get(1).map_err(super::error)?,
                ))
            })
        })
    }

    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()> {
        let prefix = key_prefix.to_owned();
        self.db
            .write_statement(move |c| change(c, RAISE_SERIAL, params![prefix, next]).map(drop))
            .await
    }
}

#[async_trait]
impl Transfer for SqliteStore {
    async fn approvals(&self) -> StoreResult<Vec<ApprovalRecord>> {
        self.db.read(|c| {
            all(c, super::approvals::ALL_APPROVALS, [], |r| {
                rows::approval(r)
            })
        })
    }

    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>> {
        self.db
            .read(|c| all(c, LIVE_REFRESH, [], |r| rows::refresh_token(r)))
    }
}
