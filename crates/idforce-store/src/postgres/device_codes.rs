//! Device authorizations (RFC 8628): issued to a device, decided by a user on the
//! verification page, polled for by the device and spent with the tokens they pay for.

use async_trait::async_trait;
use idforce_core::model::{DEVICE_POLL_TOLERANCE_MS, DeviceCode, DeviceDecision, Millis};
use idforce_core::ports::{DeviceCodes, DevicePoll, StoreError, StoreResult, Tokens};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use super::{PgStore, change, one, retrying, tokens, unavailable};
use crate::rows;

const INSERT: &str =
    "INSERT INTO device_codes (digest, user_code_digest, app_id, scopes, issued_at, expires_at,
     interval_secs, last_polled_at, user_id, auth_time, denied, redeemed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)";
const BY_USER_CODE: &str = "SELECT digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs,
     last_polled_at, user_id, auth_time, denied, redeemed_at FROM device_codes WHERE user_code_digest = $1";
const BY_DIGEST: &str = "SELECT digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs,
     last_polled_at, user_id, auth_time, denied, redeemed_at FROM device_codes WHERE digest = $1 AND app_id = $2";
const DECIDE: &str = "UPDATE device_codes SET user_id = $1, auth_time = $2, denied = $3
     WHERE user_code_digest = $4 AND user_id IS NULL AND denied = 0 AND expires_at > $5";
/// On time: at least the interval (less a little network jitter) since the last poll.
const POLL_ON_TIME: &str = "UPDATE device_codes SET last_polled_at = $1
     WHERE digest = $2 AND app_id = $4 AND (last_polled_at IS NULL OR last_polled_at + interval_secs * 1000 - $3 <= $1)";
/// Too soon (or unknown): RFC 8628 §3.5 — every later poll waits 5 s longer.
const POLL_TOO_SOON: &str =
    "UPDATE device_codes SET last_polled_at = $1, interval_secs = interval_secs + 5
     WHERE digest = $2 AND app_id = $3";
/// Spends an approved authorization for the user the tokens are for.
const REDEEM: &str = "UPDATE device_codes SET redeemed_at = $1
     WHERE digest = $2 AND app_id = $3 AND user_id = $4 AND redeemed_at IS NULL AND expires_at > $1";

#[async_trait]
impl DeviceCodes for PgStore {
    async fn insert_device_code(&self, d: &DeviceCode) -> StoreResult<()> {
        let (user_id, auth_time, denied) = rows::decision_columns(d.decision);
        let query = sqlx::query(INSERT)
            .bind(&d.digest[..])
            .bind(&d.user_code_digest[..])
            .bind(d.app_id.as15())
            .bind(d.scopes.to_string())
            .bind(d.issued_at)
            .bind(d.expires_at)
            .bind(d.interval_secs)
            .bind(d.last_polled_at)
            .bind(user_id)
            .bind(auth_time)
            .bind(denied);
        change(query, &self.pool)
            .await
            .map(drop)
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("device code".into()),
                e => e,
            })
    }

    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>> {
        let query = sqlx::query(BY_USER_CODE).bind(&user_code_digest[..]);
        one(query, &self.pool, rows::device_code).await
    }

    async fn decide_device_code(
        &self,
        user_code_digest: &Digest,
        decision: DeviceDecision,
        now: Millis,
    ) -> StoreResult<bool> {
        if decision == DeviceDecision::Pending {
            return Ok(false);
        }
        let (user_id, auth_time, denied) = rows::decision_columns(decision);
        let query = sqlx::query(DECIDE)
            .bind(user_id)
            .bind(auth_time)
            .bind(denied)
            .bind(&user_code_digest[..])
            .bind(now);
        Ok(change(query, &self.pool).await? == 1)
    }

    async fn device_code(&self, digest: &Digest, app: &SfId) -> StoreResult<Option<DeviceCode>> {
        let query = sqlx::query(BY_DIGEST).bind(&digest[..]).bind(app.as15());
        one(query, &self.pool, rows::device_code).await
    }

    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<DevicePoll> {
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let poll = sqlx::query(POLL_ON_TIME)
                .bind(now)
                .bind(&digest[..])
                .bind(DEVICE_POLL_TOLERANCE_MS)
                .bind(app.as15());
            let on_time = change(poll, &mut *tx).await? == 1;
            let mut redeemed = false;
            if !on_time {
                let slower = sqlx::query(POLL_TOO_SOON)
                    .bind(now)
                    .bind(&digest[..])
                    .bind(app.as15());
                change(slower, &mut *tx).await?;
            } else if let Some(tokens) = tokens {
                let redeem = sqlx::query(REDEEM)
                    .bind(now)
                    .bind(&digest[..])
                    .bind(app.as15())
                    .bind(tokens.session.user_id.as15());
                redeemed = change(redeem, &mut *tx).await? == 1;
                if redeemed {
                    tokens::insert_tokens(&mut tx, tokens).await?;
                }
            }
            let query = sqlx::query(BY_DIGEST).bind(&digest[..]).bind(app.as15());
            let found = one(query, &mut *tx, rows::device_code).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(match found {
                None => DevicePoll::Unknown,
                Some(code) if on_time => DevicePoll::OnTime { code, redeemed },
                Some(code) => DevicePoll::TooSoon(code),
            })
        })
        .await
    }
}
