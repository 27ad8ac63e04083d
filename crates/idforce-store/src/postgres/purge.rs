//! Deleting what can no longer be used or matter; sessions slice by slice, so that no
//! statement holds its locks for long.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::StoreResult;

use super::{PgStore, change, unavailable};
use crate::Purge;

/// Sessions purged per statement.
const SLICE: i64 = 2_000;
/// The last key of the slice after `$1` (`$2` = SLICE - 1), or none when fewer remain.
const SLICE_END: &str =
    "SELECT digest FROM sessions WHERE digest > $1 ORDER BY digest LIMIT 1 OFFSET $2";
/// Deletes the sessions of the slice (`$1`, `$3`] that ended before `$2`.
const SLICE_SESSIONS: &str = "DELETE FROM sessions WHERE digest > $1 AND digest <= $3
     AND (last_used_at + timeout_secs * 1000 < $2 OR revoked_at < $2)";
/// Spent assertions past their expiry; keys start with the expiry (`ledger_key`), so `$2`
/// (the same time as 8 big-endian bytes) bounds a range scan of the expired ones.
const EXPIRED_ASSERTIONS: &str = "DELETE FROM assertions WHERE digest < $2 AND expires_at < $1";
const HOUR: Millis = 3_600_000;

#[async_trait]
impl Purge for PgStore {
    async fn purge_expired(&self, now: Millis) -> StoreResult<u64> {
        let mut total = self.purge_sessions(now - HOUR).await?;
        let statements: [(&'static str, Millis); 4] = [
            (
                "DELETE FROM auth_codes WHERE expires_at < $1",
                now - 24 * HOUR,
            ),
            ("DELETE FROM login_sessions WHERE expires_at < $1", now),
            ("DELETE FROM device_codes WHERE expires_at < $1", now - HOUR),
            (
                "DELETE FROM refresh_tokens WHERE revoked_at < $1",
                now - 30 * 24 * HOUR,
            ),
        ];
        for (sql, before) in statements {
            total += change(sqlx::query(sql).bind(before), &self.pool).await?;
        }
        let expired = sqlx::query(EXPIRED_ASSERTIONS)
            .bind(now)
            .bind(now.max(0).to_be_bytes().to_vec());
        total += change(expired, &self.pool).await?;
        Ok(total)
    }
}

impl PgStore {
    async fn purge_sessions(&self, before: Millis) -> StoreResult<u64> {
        let mut after: Vec<u8> = Vec::new();
        let mut deleted = 0u64;
        loop {
            let last: Option<Vec<u8>> = sqlx::query_scalar(SLICE_END)
                .bind(&after)
                .bind(SLICE - 1)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            // Past the last slice, the bound is above every key (keys are 32 bytes).
            let upto = last.clone().unwrap_or_else(|| vec![0xFF; 33]);
            let slice = sqlx::query(SLICE_SESSIONS)
                .bind(&after)
                .bind(before)
                .bind(upto);
            deleted += change(slice, &self.pool).await?;
            match last {
                Some(last) => after = last,
                None => return Ok(deleted),
            }
        }
    }
}
