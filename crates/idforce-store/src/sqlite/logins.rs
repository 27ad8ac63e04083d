//! Failed-login counting and lockout, and browser login sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::{LockoutPolicy, LoginRate, LoginSession, Millis};
use idforce_core::ports::{LoginAttempts, LoginSessions, StoreResult};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use rusqlite::params;

use super::{SqliteStore, change, one, scalar};
use crate::rows::{self, Columns};

/// A user's lockout state, read fresh.
const LOCK_STATE: &str = "SELECT failed_logins, locked_until FROM users WHERE id = ?1";
/// Locks the user (the count of checks reached the limit) and restarts the count.
const LOCK: &str = "UPDATE users SET locked_until = ?2, failed_logins = 0 WHERE id = ?1";
/// A failure counts unless the user is locked (a check reserved before the lock, settling
/// after it); the one that reaches the limit locks the user and restarts the count.
const ATTEMPT_FAILED: &str = "UPDATE users SET
         locked_until = CASE
             WHEN (locked_until IS NULL OR locked_until <= ?3) AND failed_logins + 1 >= ?2 THEN ?4
             ELSE locked_until END,
         failed_logins = CASE
             WHEN locked_until IS NOT NULL AND locked_until > ?3 THEN failed_logins
             WHEN failed_logins + 1 >= ?2 THEN 0
             ELSE failed_logins + 1 END
     WHERE id = ?1 RETURNING locked_until";
const CLEAR_FAILURES: &str =
    "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1";

/// How long a reserved check counts before it is taken as abandoned (a check takes well under
/// a second; its request was dropped before settling it).
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Password checks reserved and not yet settled, per user. Kept in memory, not in the file:
/// one process serves a SQLite store (the serve lock), so this is every check in flight, and a
/// successful login costs no write at all. With the failures stored in the file, reserved and
/// failed checks never exceed the policy's limit.
#[derive(Default)]
pub(crate) struct ChecksInFlight(Mutex<HashMap<SfId, InFlight>>);

#[derive(Default)]
struct InFlight {
    /// When each unsettled check was reserved.
    reserved: Vec<Instant>,
    /// A lock decided here and perhaps not yet written: it holds from the moment it is decided.
    locked_until: Option<Millis>,
}

impl ChecksInFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SfId, InFlight>> {
        // A panic while holding it leaves a map that is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One reserved check of `user` settled (the oldest: any one will do).
    fn settle(&self, user: &SfId) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(user) {
            if !entry.reserved.is_empty() {
                entry.reserved.remove(0);
            }
            if entry.reserved.is_empty() && entry.locked_until.is_none() {
                map.remove(user);
            }
        }
    }

    /// A success or an unlock: no lock decided here holds any more.
    fn unlock(&self, user: &SfId) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(user) {
            entry.locked_until = None;
            if entry.reserved.is_empty() {
                map.remove(user);
            }
        }
    }
}

const DELETE_ENDED: &str = "DELETE FROM login_sessions WHERE expires_at < ?1";
const INSERT_LOGIN: &str =
    "INSERT INTO login_sessions (digest, user_id, auth_time, expires_at) VALUES (?1, ?2, ?3, ?4)";
const LOGIN_BY_DIGEST: &str =
    "SELECT digest, user_id, auth_time, expires_at FROM login_sessions WHERE digest = ?1";
const DELETE_LOGIN: &str = "DELETE FROM login_sessions WHERE digest = ?1";

/// One statement counts a login within `LoginRate` or refuses it (`model::LoginRate::admit`
/// says the same in Rust): the row's update runs only when the sliding window has room, and
/// a refused login returns no row. `?1` user, `?2` the current window's start, `?3` the
/// window, `?4` now, `?5` the logins allowed.
const TAKE_LOGIN: &str = "INSERT INTO login_rates (user_id, bucket, count, previous) VALUES (?1, ?2, 1, 0)
     ON CONFLICT (user_id) DO UPDATE SET
         count = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3) THEN login_rates.count + 1 ELSE 1 END,
         previous = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3) THEN login_rates.previous
             WHEN login_rates.bucket = excluded.bucket - ?3 THEN login_rates.count ELSE 0 END,
         bucket = CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3) THEN login_rates.bucket
             ELSE excluded.bucket END
     WHERE (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3) THEN login_rates.previous
             WHEN login_rates.bucket = excluded.bucket - ?3 THEN login_rates.count ELSE 0 END)
             * (?3 - (CASE WHEN ?4 - (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3)
                 THEN login_rates.bucket ELSE excluded.bucket END) < 0 THEN 0
                 ELSE ?4 - (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3)
                 THEN login_rates.bucket ELSE excluded.bucket END) END))
         + (CASE WHEN (login_rates.bucket >= excluded.bucket AND login_rates.bucket <= excluded.bucket + ?3) THEN login_rates.count + 1 ELSE 1 END) * ?3
         <= ?5 * ?3
     RETURNING count";

#[async_trait]
impl LoginAttempts for SqliteStore {
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let lock_now = {
            let mut checks = self.checks.lock();
            // Read under the lock, so that concurrent reservations are decided one at a time.
            let state = self.db.read(|c| {
                one(c, LOCK_STATE, [user.as15()], |r| {
                    Ok((r.int(0)?, r.opt_int(1)?))
                })
            })?;
            let Some((failed, locked_until)) = state else {
                return Ok(false);
            };
            let entry = checks.entry(*user).or_default();
            if locked_until.or(entry.locked_until).is_some_and(|t| now < t) {
                return Ok(false);
            }
            entry.reserved.retain(|at| at.elapsed() < ABANDONED_AFTER);
            let counted = failed.max(0) as u64 + entry.reserved.len() as u64;
            if counted < u64::from(policy.attempts) {
                entry.reserved.push(Instant::now());
                return Ok(true);
            }
            // Every allowed check is taken: lock, as the last failure would have, from this
            // moment (the write follows), and forget the checks in flight: those that fail
            // now find the lock and are not counted.
            entry.reserved.clear();
            entry.locked_until = Some(now + policy.duration_secs * 1000);
            true
        };
        if lock_now {
            let (id, until) = (*user, now + policy.duration_secs * 1000);
            let written = self
                .db
                .write_statement(move |c| change(c, LOCK, params![id.as15(), until]).map(drop))
                .await;
            // Stored (or failed to be): the file holds the lock now, where an administrator's
            // unlock from another process can end it.
            self.checks.unlock(user);
            written?;
        }
        Ok(false)
    }

    async fn login_attempt_failed(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let id = *user;
        // Stored before the reservation is released: a reservation decided in between counts
        // this check twice, never not at all.
        let locked = self
            .db
            .write_statement(move |c| {
                let locked_until: Option<Option<i64>> = scalar(
                    c,
                    ATTEMPT_FAILED,
                    params![
                        id.as15(),
                        i64::from(policy.attempts),
                        now,
                        now + policy.duration_secs * 1000
                    ],
                )?;
                Ok(locked_until.flatten().is_some_and(|t| t > now))
            })
            .await;
        self.checks.settle(user);
        locked
    }

    async fn take_login(&self, user: &SfId, now: Millis, rate: LoginRate) -> StoreResult<bool> {
        let user = *user;
        let w = rate.window_ms;
        let bucket = now.div_euclid(w) * w;
        let logins = i64::from(rate.logins);
        self.db
            .write_statement(move |c| {
                let counted: Option<i64> =
                    scalar(c, TAKE_LOGIN, params![user.as15(), bucket, w, now, logins])?;
                Ok(counted.is_some())
            })
            .await
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        self.checks.settle(user);
        self.checks.unlock(user);
        // The common case, a user with nothing counted, needs no write.
        let state = self.db.read(|c| {
            one(c, LOCK_STATE, [user.as15()], |r| {
                Ok((r.int(0)?, r.opt_int(1)?))
            })
        })?;
        if state.is_some_and(|(failed, locked)| failed > 0 || locked.is_some()) {
            let user = *user;
            self.db
                .write_statement(move |c| change(c, CLEAR_FAILURES, [user.as15()]).map(drop))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl LoginSessions for SqliteStore {
    async fn insert_login_session(
        &self,
        s: &LoginSession,
        login: Option<&LoginEvent>,
    ) -> StoreResult<()> {
        let (s, login) = (s.clone(), login.cloned());
        self.db
            .write(move |c| {
                change(c, DELETE_ENDED, [s.auth_time])?;
                if let Some(login) = &login {
                    super::login_history::insert_login(c, login)?;
                }
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
