//! Failed-login counting and lockout, and browser login sessions.

use async_trait::async_trait;
use idforce_core::model::{LockoutPolicy, LoginSession, Millis};
use idforce_core::ports::{LoginAttempts, LoginSessions, StoreResult};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use rusqlite::params;

use super::{SqliteStore, change, one, scalar};
use crate::rows;

/// One statement each, so that concurrent checks are counted one by one. A reservation counts
/// unless the user is locked; one that finds the limit already reached (by checks still in
/// flight, or by reservations whose requests were abandoned and never settled) locks the user
/// instead, so a count can never stay stuck at the limit without a lock that ends. A failure
/// that finds the limit reached sets the lock and restarts the count; a success clears both.
const RESERVE_ATTEMPT: &str = "UPDATE users SET
         failed_logins = CASE WHEN failed_logins >= ?2 THEN 0 ELSE failed_logins + 1 END,
         locked_until = CASE WHEN failed_logins >= ?2 THEN ?4 ELSE locked_until END
     WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?3)
     RETURNING failed_logins";
const ATTEMPT_FAILED: &str = "UPDATE users SET
         locked_until = CASE WHEN failed_logins >= ?2 THEN ?3 ELSE locked_until END,
         failed_logins = CASE WHEN failed_logins >= ?2 THEN 0 ELSE failed_logins END
     WHERE id = ?1 RETURNING locked_until";
const CLEAR_FAILURES: &str =
    "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1";

const DELETE_ENDED: &str = "DELETE FROM login_sessions WHERE expires_at < ?1";
const INSERT_LOGIN: &str =
    "INSERT INTO login_sessions (digest, user_id, auth_time, expires_at) VALUES (?1, ?2, ?3, ?4)";
const LOGIN_BY_DIGEST: &str =
    "SELECT digest, user_id, auth_time, expires_at FROM login_sessions WHERE digest = ?1";
const DELETE_LOGIN: &str = "DELETE FROM login_sessions WHERE digest = ?1";

#[async_trait]
impl LoginAttempts for SqliteStore {
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let user = *user;
        self.db
            .write_statement(move |c| {
                let count: Option<i64> = scalar(
                    c,
                    RESERVE_ATTEMPT,
                    params![
                        user.as15(),
                        i64::from(policy.attempts),
                        now,
                        now + policy.duration_secs * 1000
                    ],
                )?;
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
        let user = *user;
        self.db
            .write_statement(move |c| {
                let locked_until: Option<Option<i64>> = scalar(
                    c,
                    ATTEMPT_FAILED,
                    params![
                        user.as15(),
                        i64::from(policy.attempts),
                        now + policy.duration_secs * 1000
                    ],
                )?;
                Ok(locked_until.flatten().is_some_and(|t| t > now))
            })
            .await
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        let user = *user;
        self.db
            .write_statement(move |c| change(c, CLEAR_FAILURES, [user.as15()]).map(drop))
            .await
    }
}

#[async_trait]
impl LoginSessions for SqliteStore {
    async fn insert_login_session(&self, s: &LoginSession) -> StoreResult<()> {
        let s = s.clone();
        self.db
            .write(move |c| {
                change(c, DELETE_ENDED, [s.auth_time])?;
                change(
                    c,
                    INSERT_LOGIN,
                    params![&s.digest[..], s.user_id.as15(), s.auth_time, s.expires_at],
                )
                .map(drop)
            })
            .await
    }

    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>> {
        self.db.read(|c| {
            one(c, LOGIN_BY_DIGEST, [&digest[..]], |r| {
                rows::login_session(r)
            })
        })
    }

    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()> {
        let digest = *digest;
        self.db
            .write_statement(move |c| change(c, DELETE_LOGIN, [&digest[..]]).map(drop))
            .await
    }
}
