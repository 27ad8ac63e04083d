//! The RS256 keys that sign id_tokens and JWT access tokens.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::StoreResult;
use rusqlite::params;

use super::{SqliteStore, all, change};
use crate::{SigningKeys, StoredKey, rows};

const KEYS: &str =
    "SELECT kid, created_at, retired_at, publish_until, private_key, encrypted, modulus, exponent
     FROM signing_keys ORDER BY created_at, kid";
const PUT: &str =
    "INSERT INTO signing_keys (kid, created_at, retired_at, publish_until, private_key, encrypted,
     modulus, exponent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (kid) DO NOTHING";
const RESEAL: &str = "UPDATE signing_keys SET private_key = ?1, encrypted = TRUE WHERE kid = ?2";
const RETIRE_OTHERS: &str = "UPDATE signing_keys SET retired_at = ?1, publish_until = ?2
     WHERE retired_at IS NULL AND kid <> ?3";

#[async_trait]
impl SigningKeys for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.db.read(|c| all(c, KEYS, [], |r| rows::signing_key(r)))
    }

    async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        let (kid, sealed) = (kid.to_owned(), sealed.to_vec());
        self.db
            .write_statement(move |c| change(c, RESEAL, params![sealed, kid]).map(drop))
            .await
    }

    async fn put_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        let key = key.clone();
        self.db
            .write_statement(move |c| put(c, &key).map(drop))
            .await
    }

    async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool> {
        let key = StoredKey {
            retired_at: None,
            publish_until: None,
            ..key.clone()
        };
        self.db
            .write(move |c| {
                // The kid first: if another command added it, keep theirs and retire nothing.
                if put(c, &key)? == 0 {
                    return Ok(false);
                }
                if let Some(until) = retire_others_until {
                    change(c, RETIRE_OTHERS, params![key.created_at, until, key.kid])?;
                }
                Ok(true)
            })
            .await
    }
}

fn put(c: &rusqlite::Connection, key: &StoredKey) -> StoreResult<usize> {
    change(
        c,
        PUT,
        params![
            key.kid,
            key.created_at,
            key.retired_at,
            key.publish_until,
            key.private_key,
            key.encrypted,
            key.modulus,
            key.exponent,
        ],
    )
}
