//! Failed-login counting and lockout, and browser login sessions.

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::{LockoutPolicy, LoginRate, LoginSession, Millis};
use idforce_core::ports::{LoginAttempts, LoginSessions, StoreResult};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use super::{PgStore, change, one, retrying, unavailable};
use crate::rows;

/// One statement each (see sqlite/logins.rs); the row lock orders concurrent checks, on
/// every node.
const RESERVE_ATTEMPT: &str = "UPDATE users SET
         failed_logins = CASE WHEN failed_logins >= $2 THEN 0 ELSE failed_logins + 1 END,
         locked_until = CASE WHEN failed_logins >= $2 THEN $4 ELSE locked_until END
     WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $3)
     RETURNING failed_logins";
const ATTEMPT_FAILED: &str = "UPDATE users SET
         locked_until = CASE WHEN failed_logins >= $2 THEN $3 ELSE locked_until END,
         failed_logins = CASE WHEN failed_logins >= $2 THEN 0 ELSE failed_logins END
     WHERE id = $1 RETURNING locked_until";
const CLEAR_FAILURES: &str =
    "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1";

const DELETE_ENDED: &str = "DELETE FROM login_sessions WHERE expires_at < $1";
const INSERT_LOGIN: &str =
    "INSERT INTO login_sessions (digest, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4)";
const LOGIN_BY_DIGEST: &str =
    "SELECT digest, user_id, auth_time, expires_at FROM login_sessions WHERE digest = $1";
const DELETE_LOGIN: &str = "DELETE FROM login_sessions WHERE digest = $1";

/// One statement counts a login within `LoginRate` or refuses it (`model::LoginRate::admit`
/// says the same in Rust): the row's update runs only when the sliding window has room, and
/// a refused login returns no row. `$1` user, `$2` the current window's start, `$3` the
/// window, `$4` now, `$5` the logins allowed.
const TAKE_LOGIN: &str = "INSERT INTO login_rates (user_id, bucket, count, previous) VALUES ($1, $2, 1, 0)
     ON CONFLICT (user_id) DO UPDATE SET
         count = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3) THEN login_rates.count + 1 ELSE 1 END,
         previous = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3) THEN login_rates.previous
             WHEN login_rates.bucket = excluded.bucket - $3 THEN login_rates.count ELSE 0 END,
         bucket = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3) THEN login_rates.bucket
             ELSE excluded.bucket END
     WHERE (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3) THEN login_rates.previous
             WHEN login_rates.bucket = excluded.bucket - $3 THEN login_rates.count ELSE 0 END)
             * ($3 - (CASE WHEN $4 - (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3)
                 THEN login_rates.bucket ELSE excluded.bucket END) < 0 THEN 0
                 ELSE $4 - (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3)
                 THEN login_rates.bucket ELSE excluded.bucket END) END))
         + (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + $3) THEN login_rates.count + 1 ELSE 1 END) * $3
         <= $5 * $3
     RETURNING count";

#[async_trait]
impl LoginAttempts for PgStore {
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let count: Option<i64> = sqlx::query_scalar(RESERVE_ATTEMPT)
                .bind(user.as15())
                .bind(i64::from(policy.attempts))
                .bind(now)
                .bind(now + policy.duration_secs * 1000)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            // 0: the reservation found the limit reached and locked the user instead.
            Ok(count.is_some_and(|n| n > 0))
        })
        .await
    }

    async fn login_attempt_failed(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let locked: Option<Option<i64>> = sqlx::query_scalar(ATTEMPT_FAILED)
                .bind(user.as15())
                .bind(i64::from(policy.attempts))
                .bind(now + policy.duration_secs * 1000)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(locked.flatten().is_some_and(|t| t > now))
        })
        .await
    }

    async fn take_login(&self, user: &SfId, now: Millis, rate: LoginRate) -> StoreResult<bool> {
        let w = rate.window_ms;
        let bucket = now.div_euclid(w) * w;
        retrying(|| async move {
            let counted: Option<i64> = sqlx::query_scalar(TAKE_LOGIN)
                .bind(user.as15())
                .bind(bucket)
                .bind(w)
                .bind(now)
                .bind(i64::from(rate.logins))
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(counted.is_some())
        })
        .await
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        let query = sqlx::query(CLEAR_FAILURES).bind(user.as15());
        change(query, &self.pool).await.map(drop)
    }
}

#[async_trait]
impl LoginSessions for PgStore {
    async fn insert_login_session(
        &self,
        s: &LoginSession,
        login: Option<&LoginEvent>,
    ) -> StoreResult<()> {
        change(sqlx::query(DELETE_ENDED).bind(s.auth_time), &self.pool).await?;
        retrying(|| async move {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let query = sqlx::query(INSERT_LOGIN)
                .bind(&s.digest[..])
                .bind(s.user_id.as15())
                .bind(s.auth_time)
                .bind(s.expires_at);
            change(query, &mut *tx).await?;
            if let Some(login) = login {
                super::login_history::insert_login(&mut tx, login).await?;
            }
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>> {
        let query = sqlx::query(LOGIN_BY_DIGEST).bind(&digest[..]);
        one(query, &self.pool, rows::login_session).await
    }

    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()> {
        let query = sqlx::query(DELETE_LOGIN).bind(&digest[..]);
        change(query, &self.pool).await.map(drop)
    }
}
