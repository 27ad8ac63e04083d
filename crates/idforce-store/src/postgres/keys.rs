//! The RS256 keys that sign id_tokens and JWT access tokens, shared by every node.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::StoreResult;
use sqlx::PgConnection;

use super::{PgStore, all, change, retrying, unavailable};
use crate::{SigningKeys, StoredKey, rows};

const KEYS: &str =
    "SELECT kid, created_at, retired_at, publish_until, private_key, encrypted, modulus, exponent
     FROM signing_keys ORDER BY created_at, kid";
const PUT: &str =
    "INSERT INTO signing_keys (kid, created_at, retired_at, publish_until, private_key, encrypted,
     modulus, exponent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kid) DO NOTHING";
const RESEAL: &str = "UPDATE signing_keys SET private_key = $1, encrypted = TRUE WHERE kid = $2";
const RETIRE_OTHERS: &str = "UPDATE signing_keys SET retired_at = $1, publish_until = $2
     WHERE retired_at IS NULL AND kid <> $3";

async fn put(c: &mut PgConnection, key: &StoredKey) -> StoreResult<u64> {
    let query = sqlx::query(PUT)
        .bind(&key.kid)
        .bind(key.created_at)
        .bind(key.retired_at)
        .bind(key.publish_until)
        .bind(&key.private_key)
        .bind(key.encrypted)
        .bind(&key.modulus)
        .bind(&key.exponent);
    change(query, c).await
}

#[async_trait]
impl SigningKeys for PgStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        all(sqlx::query(KEYS), &self.pool, rows::signing_key).await
    }

    async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        let query = sqlx::query(RESEAL).bind(sealed).bind(kid);
        change(query, &self.pool).await.map(drop)
    }

    async fn put_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        let mut c = self.pool.acquire().await.map_err(unavailable)?;
        put(&mut c, key).await.map(drop)
    }

    async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool> {
        let key = &StoredKey {
            retired_at: None,
            publish_until: None,
            ..key.clone()
        };
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            // The kid first: if another node added it, keep theirs and retire nothing.
            if put(&mut tx, key).await? == 0 {
                return Ok(false);
            }
            if let Some(until) = retire_others_until {
                let retire = sqlx::query(RETIRE_OTHERS)
                    .bind(key.created_at)
                    .bind(until)
                    .bind(&key.kid);
                change(retire, &mut *tx).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(true)
        })
        .await
    }
}
