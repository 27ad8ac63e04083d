//! Authorization codes: single use, spent in the transaction that stores their tokens.

use async_trait::async_trait;
use idforce_core::model::{AuthCode, Family, Millis};
use idforce_core::ports::{Codes, Redemption, StoreResult, Tokens};
use idforce_core::token::Digest;

use super::{PgStore, change, one, retrying, tokens, unavailable};
use crate::rows;

const INSERT_CODE: &str =
    "INSERT INTO auth_codes (digest, org_id, user_id, app_id, redirect_uri, scopes,
     code_challenge, nonce, auth_time, issued_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const CODE_BY_DIGEST: &str =
    "SELECT digest, org_id, user_id, app_id, redirect_uri, scopes, code_challenge, nonce,
     auth_time, issued_at, expires_at, redeemed_at FROM auth_codes WHERE digest = $1";
/// One conditional write decides the winner among concurrent redemptions.
const REDEEM: &str =
    "UPDATE auth_codes SET redeemed_at = $1, family = $2 WHERE digest = $3 AND redeemed_at IS NULL";
/// The family a spent code's redemption started (NULL if it issued nothing).
const FIRST_FAMILY: &str = "SELECT family FROM auth_codes WHERE digest = $1";

#[async_trait]
impl Codes for PgStore {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        let query = sqlx::query(INSERT_CODE)
            .bind(&code.digest[..])
            .bind(code.org_id.as15())
            .bind(code.user_id.as15())
            .bind(code.app_id.as15())
            .bind(&code.redirect_uri)
            .bind(code.scopes.to_string())
            .bind(&code.code_challenge)
            .bind(&code.nonce)
            .bind(code.auth_time)
            .bind(code.issued_at)
            .bind(code.expires_at);
        change(query, &self.pool).await.map(drop)
    }

    async fn code(&self, digest: &Digest) -> StoreResult<Option<(AuthCode, bool)>> {
        let query = sqlx::query(CODE_BY_DIGEST).bind(&digest[..]);
        one(query, &self.pool, rows::code).await
    }

    async fn redeem_code(
        &self,
        digest: &Digest,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<Redemption> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let family = tokens.and_then(|t| t.session.family);
            let redeem = sqlx::query(REDEEM)
                .bind(now)
                .bind(family.as_ref().map(|f| &f[..]))
                .bind(&digest[..]);
            if change(redeem, &mut *tx).await? == 1 {
                if let Some(tokens) = tokens {
                    tokens::insert_tokens(&mut tx, tokens).await?;
                }
                tx.commit().await.map_err(unavailable)?;
                return Ok(Redemption::Redeemed);
            }
            let first: Option<Option<Vec<u8>>> = sqlx::query_scalar(FIRST_FAMILY)
                .bind(&digest[..])
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            let Some(first) = first else {
                return Ok(Redemption::Unknown);
            };
            // Someone holds a copy of the code: end what its first redemption issued.
            if let Some(first) = first.and_then(|f| Family::try_from(f.as_slice()).ok()) {
                tokens::revoke_family(&mut tx, &first, now).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(Redemption::Reused)
        })
        .await
    }
}
