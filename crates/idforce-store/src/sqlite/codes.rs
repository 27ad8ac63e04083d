//! Authorization codes: single use, spent in the transaction that stores their tokens.

use async_trait::async_trait;
use idforce_core::model::{AuthCode, Family, Millis};
use idforce_core::ports::{Codes, Redemption, StoreResult, Tokens};
use idforce_core::token::Digest;
use rusqlite::params;

use super::{SqliteStore, change, one, scalar, tokens};
use crate::rows;

const INSERT_CODE: &str =
    "INSERT INTO auth_codes (digest, org_id, user_id, app_id, redirect_uri, scopes,
     code_challenge, nonce, auth_time, issued_at, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const CODE_BY_DIGEST: &str =
    "SELECT digest, org_id, user_id, app_id, redirect_uri, scopes, code_challenge, nonce,
     auth_time, issued_at, expires_at, redeemed_at FROM auth_codes WHERE digest = ?1";
/// One conditional write decides the winner among concurrent redemptions.
const REDEEM: &str =
    "UPDATE auth_codes SET redeemed_at = ?1, family = ?2 WHERE digest = ?3 AND redeemed_at IS NULL";
/// The family a spent code's redemption started (NULL if it issued nothing).
const FIRST_FAMILY: &str = "SELECT family FROM auth_codes WHERE digest = ?1";

#[async_trait]
impl Codes for SqliteStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let code = c.clone();
        self.db
            .write_statement(move |c| {
                change(
                    c,
                    INSERT_CODE,
                    params![
                        &code.digest[..],
                        code.org_id.as15(),
                        code.user_id.as15(),
                        code.app_id.as15(),
                        code.redirect_uri,
                        code.scopes.to_string(),
                        code.code_challenge,
                        code.nonce,
                        code.auth_time,
                        code.issued_at,
                        code.expires_at,
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn code(&self, digest: &Digest) -> StoreResult<Option<(AuthCode, bool)>> {
        self.db
            .read(|c| one(c, CODE_BY_DIGEST, [&digest[..]], |r| rows::code(r)))
    }

    async fn redeem_code(
        &self,
        digest: &Digest,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<Redemption> {
        let (digest, tokens) = (*digest, tokens.cloned());
        self.db
            .write(move |c| {
                let family = tokens.as_ref().and_then(|t| t.session.family);
                let won = change(
                    c,
                    REDEEM,
                    params![now, family.as_ref().map(|f| &f[..]), &digest[..]],
                )?;
                if won == 1 {
                    if let Some(tokens) = &tokens {
                        tokens::insert_tokens(c, tokens)?;
                    }
                    return Ok(Redemption::Redeemed);
                }
                let first: Option<Option<Vec<u8>>> = scalar(c, FIRST_FAMILY, [&digest[..]])?;
                let Some(first) = first else {
                    return Ok(Redemption::Unknown);
                };
                // Someone holds a copy of the code: end what its first redemption issued.
                if let Some(first) = first.and_then(|f| Family::try_from(f.as_slice()).ok()) {
                    tokens::revoke_family(c, &first, now)?;
                }
                Ok(Redemption::Reused)
            })
            .await
    }
}
