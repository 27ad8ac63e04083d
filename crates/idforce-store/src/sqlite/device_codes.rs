//! Device authorizations (RFC 8628): issued to a device, decided by a user on the
//! verification page, polled for by the device and spent with the tokens they pay for.

use async_trait::async_trait;
use idforce_core::model::{DEVICE_POLL_TOLERANCE_MS, DeviceCode, DeviceDecision, Millis};
use idforce_core::ports::{DeviceCodes, DevicePoll, StoreError, StoreResult, Tokens};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use rusqlite::params;

use super::{SqliteStore, change, one, tokens};
use crate::rows;

const INSERT: &str =
    "INSERT INTO device_codes (digest, user_code_digest, app_id, scopes, issued_at, expires_at,
     interval_secs, last_polled_at, user_id, auth_time, denied, redeemed_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL)";
const BY_USER_CODE: &str = "SELECT digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs,
     last_polled_at, user_id, auth_time, denied, redeemed_at FROM device_codes WHERE user_code_digest = ?1";
const BY_DIGEST: &str = "SELECT digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs,
     last_polled_at, user_id, auth_time, denied, redeemed_at FROM device_codes WHERE digest = ?1 AND app_id = ?2";
const DECIDE: &str = "UPDATE device_codes SET user_id = ?1, auth_time = ?2, denied = ?3
     WHERE user_code_digest = ?4 AND user_id IS NULL AND denied = 0 AND expires_at > ?5";
/// On time: at least the interval (less a little network jitter) since the last poll.
const POLL_ON_TIME: &str = "UPDATE device_codes SET last_polled_at = ?1
     WHERE digest = ?2 AND app_id = ?4 AND (last_polled_at IS NULL OR last_polled_at + interval_secs * 1000 - ?3 <= ?1)";
/// Too soon (or unknown): RFC 8628 §3.5 — every later poll waits 5 s longer.
const POLL_TOO_SOON: &str =
    "UPDATE device_codes SET last_polled_at = ?1, interval_secs = interval_secs + 5
     WHERE digest = ?2 AND app_id = ?3";
/// Spends an approved authorization for the user the tokens are for.
const REDEEM: &str = "UPDATE device_codes SET redeemed_at = ?1
     WHERE digest = ?2 AND app_id = ?3 AND user_id = ?4 AND redeemed_at IS NULL AND expires_at > ?1";

#[async_trait]
impl DeviceCodes for SqliteStore {
    async fn insert_device_code(&self, d: &DeviceCode) -> StoreResult<()> {
        let d = d.clone();
        self.db
            .write_statement(move |c| {
                let (user_id, auth_time, denied) = rows::decision_columns(d.decision);
                change(
                    c,
                    INSERT,
                    params![
                        &d.digest[..],
                        &d.user_code_digest[..],
                        d.app_id.as15(),
                        d.scopes.to_string(),
                        d.issued_at,
                        d.expires_at,
                        d.interval_secs,
                        d.last_polled_at,
                        user_id,
                        auth_time,
                        denied,
                    ],
                )
                .map(drop)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict("device code".into()),
                    e => e,
                })
            })
            .await
    }

    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>> {
        self.db.read(|c| {
            one(c, BY_USER_CODE, [&user_code_digest[..]], |r| {
                rows::device_code(r)
            })
        })
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
        let user_code = *user_code_digest;
        self.db
            .write_statement(move |c| {
                let (user_id, auth_time, denied) = rows::decision_columns(decision);
                let n = change(
                    c,
                    DECIDE,
                    params![user_id, auth_time, denied, &user_code[..], now],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn device_code(&self, digest: &Digest, app: &SfId) -> StoreResult<Option<DeviceCode>> {
        self.db.read(|c| {
            one(c, BY_DIGEST, params![&digest[..], app.as15()], |r| {
                rows::device_code(r)
            })
        })
    }

    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<DevicePoll> {
        let (digest, app, tokens) = (*digest, *app, tokens.cloned());
        self.db
            .write(move |c| {
                let on_time = change(
                    c,
                    POLL_ON_TIME,
                    params![now, &digest[..], DEVICE_POLL_TOLERANCE_MS, app.as15()],
                )? == 1;
                let mut redeemed = false;
                if !on_time {
                    change(c, POLL_TOO_SOON, params![now, &digest[..], app.as15()])?;
                } else if let Some(tokens) = &tokens {
                    let user = tokens.session.user_id;
                    redeemed = change(
                        c,
                        REDEEM,
                        params![now, &digest[..], app.as15(), user.as15()],
                    )? == 1;
                    if redeemed {
                        tokens::insert_tokens(c, tokens)?;
                    }
                }
                let found = one(c, BY_DIGEST, params![&digest[..], app.as15()], |r| {
                    rows::device_code(r)
                })?;
                Ok(match found {
                    None => DevicePoll::Unknown,
                    Some(code) if on_time => DevicePoll::OnTime { code, redeemed },
                    Some(code) => DevicePoll::TooSoon(code),
                })
            })
            .await
    }
}
