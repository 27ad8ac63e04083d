//! One implementation of every store trait, expanded once per SQL backend by `sql_store!`.
//! The SQL is written once, portable between SQLite and PostgreSQL (CASE instead of MAX/GREATEST,
//! lower() for case-insensitive names, ON CONFLICT, RETURNING), with SQLite's `?`/`?N`
//! placeholders; each backend's `sql()` turns them into its own form.

use idforce_core::model::{Family, Millis};
use idforce_core::ports::{StoreError, StoreResult};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use crate::SessionFilter;

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_owned())
        }
        // serialization_failure, deadlock_detected (PostgreSQL, CockroachDB); SQLITE_BUSY.
        sqlx::Error::Database(d)
            if matches!(
                d.code().as_deref(),
                Some("40001") | Some("40P01") | Some("5") | Some("517")
            ) =>
        {
            StoreError::Retryable(d.message().to_owned())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} is not readable"))
}

pub(crate) fn parse_id(s: &str) -> StoreResult<SfId> {
    SfId::parse(s).map_err(|_| corrupt("id"))
}

pub(crate) fn json_list(s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|_| corrupt("list"))
}

pub(crate) fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn digest_of(v: Option<Vec<u8>>) -> StoreResult<Option<Digest>> {
    v.map(|b| Digest::try_from(b.as_slice()).map_err(|_| corrupt("digest")))
        .transpose()
}

pub(crate) fn family_of(v: Option<Vec<u8>>) -> StoreResult<Option<Family>> {
    v.map(|b| Family::try_from(b.as_slice()).map_err(|_| corrupt("family")))
        .transpose()
}

pub(crate) fn session_filter_sql(filter: SessionFilter) -> (&'static str, String) {
    match filter {
        SessionFilter::User(id) => ("user_id", id.as15().to_owned()),
        SessionFilter::App(id) => ("app_id", id.as15().to_owned()),
    }
}

/// Records an assertion, or takes over the record of an expired one with the same digest;
/// changes exactly one row when this is the assertion's first use.
pub(crate) const ASSERTION_FIRST_USE: &str = "INSERT INTO assertions (digest, expires_at) VALUES (?1, ?2)
     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE assertions.expires_at < ?3";

/// Runs `op` again (up to ten more times, with a short growing pause) when it fails with a
/// serialization failure or deadlock: the guarantees come from conditional writes inside
/// transactions, and a SERIALIZABLE database (CockroachDB) may abort one of two racing
/// transactions and expects the client to retry it.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0u64;
    loop {
        match op().await {
            Err(StoreError::Retryable(_)) if attempt < 10 => {
                attempt += 1;
                // Random jitter, so that the transactions that collided do not collide again.
                let jitter =
                    u64::from(idforce_core::token::random_bytes::<1>()[0]) % (4 * attempt + 1);
                tokio::time::sleep(std::time::Duration::from_millis(2 * attempt + jitter)).await;
            }
            other => return other,
        }
    }
}

/// `?` and `?N` placeholders as PostgreSQL's `$N` (outside string literals).
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str(&format!("${next}"));
                    next += 1;
                } else {
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Sessions are purged one slice of the key space per statement: there may be millions, and
/// one statement over all of them would hold SQLite's write lock — which every token grant
/// needs — for seconds. A slice is this many keys.
pub(crate) const PURGE_SLICE: i64 = 2_000;
/// The last key of the slice after `?1` (`?2` = PURGE_SLICE - 1), or none when fewer remain.
pub(crate) const PURGE_SLICE_END: &str =
    "SELECT digest FROM sessions WHERE digest > ?1 ORDER BY digest LIMIT 1 OFFSET ?2";
/// Deletes the sessions of the slice (`?1`, `?3`] that ended before `?2`.
pub(crate) const PURGE_SLICE_SESSIONS: &str = "DELETE FROM sessions WHERE digest > ?1 AND digest <= ?3 AND (last_used_at + timeout_secs * 1000 < ?2 OR revoked_at < ?2)";

/// Spent assertions past their expiry. Their keys start with the expiry (`ledger_key`), so
/// `?2` (the same time as 8 big-endian bytes, shorter than any key) bounds a range scan of
/// the expired ones instead of a scan of the whole ledger.
pub(crate) const EXPIRED_ASSERTIONS: &str =
    "DELETE FROM assertions WHERE digest < ?2 AND expires_at < ?1";

/// The bound `EXPIRED_ASSERTIONS` takes for `before`.
pub(crate) fn expiry_key(before: Millis) -> Vec<u8> {
    before.max(0).to_be_bytes().to_vec()
}

/// Past the last slice, the bound is above every key (keys are 32 bytes).
pub(crate) fn slice_bound(last: &Option<Vec<u8>>) -> Vec<u8> {
    last.clone().unwrap_or_else(|| vec![0xFF; 33])
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
/// Runs a query expected to return at most one row and maps it.
async fn optional<'q, T>(
    query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
    pool: &sqlx::Pool<$db>,
    map: fn(&$row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    query
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(map)
        .transpose()
}

/// The same, shared: directory entries are read by every token request and cached, so they
/// are handed out behind an `Arc` rather than copied (a user or an app is a dozen strings).
async fn shared<'q, T>(
    query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
    pool: &sqlx::Pool<$db>,
    map: fn(&$row) -> StoreResult<T>,
) -> StoreResult<Option<std::sync::Arc<T>>> {
    Ok(optional(query, pool, map).await?.map(std::sync::Arc::new))
}





fn org_from(row: &$row) -> StoreResult<Org> {
    Ok(Org {
        id: parse_id(row.try_get("id").map_err(unavailable)?)?,
        name: row.try_get("name").map_err(unavailable)?,
        instance_url: row.try_get("instance_url").map_err(unavailable)?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
    })
}

fn user_from(row: &$row) -> StoreResult<User> {
    let g = |e| unavailable(e);
    let token_digest = digest_of(row.try_get("security_token_digest").map_err(g)?)?;
    let token_len: Option<i64> = row.try_get("security_token_len").map_err(g)?;
    Ok(User {
        id: parse_id(row.try_get("id").map_err(g)?)?,
        org_id: parse_id(row.try_get("org_id").map_err(g)?)?,
        username: row.try_get("username").map_err(g)?,
        email: row.try_get("email").map_err(g)?,
        first_name: row.try_get("first_name").map_err(g)?,
        last_name: row.try_get("last_name").map_err(g)?,
        profile: row.try_get("profile").map_err(g)?,
        active: row.try_get("active").map_err(g)?,
        password_hash: row.try_get("password_hash").map_err(g)?,
        security_token: token_digest.zip(token_len.map(|n| n as usize)),
        failed_logins: row.try_get::<i64, _>("failed_logins").map_err(g)? as u32,
        locked_until: row.try_get("locked_until").map_err(g)?,
        created_at: row.try_get("created_at").map_err(g)?,
        updated_at: row.try_get("updated_at").map_err(g)?,
    })
}

fn app_from(row: &$row) -> StoreResult<ConnectedApp> {
    let g = |e| unavailable(e);
    let scopes: String = row.try_get("scopes").map_err(g)?;
    let permitted: String = row.try_get("permitted_users").map_err(g)?;
    let policy: String = row.try_get("refresh_token_policy").map_err(g)?;
    let pre: String = row.try_get("pre_authorized_users").map_err(g)?;
    let run_as: Option<String> = row.try_get("run_as").map_err(g)?;
    Ok(ConnectedApp {
        id: parse_id(row.try_get("id").map_err(g)?)?,
        org_id: parse_id(row.try_get("org_id").map_err(g)?)?,
        name: row.try_get("name").map_err(g)?,
        client_id: row.try_get("client_id").map_err(g)?,
        secret_digest: digest_of(row.try_get("secret_digest").map_err(g)?)?,
        callback_urls: json_list(row.try_get("callback_urls").map_err(g)?)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        certificate_der: row.try_get("certificate_der").map_err(g)?,
        permitted_users: PermittedUsers::parse(&permitted)
            .ok_or_else(|| corrupt("permitted_users"))?,
        profiles: json_list(row.try_get("profiles").map_err(g)?)?,
        pre_authorized_users: json_list(&pre)?
            .iter()
            .map(|s| parse_id(s))
            .collect::<StoreResult<_>>()?,
        run_as: run_as.as_deref().map(parse_id).transpose()?,
        require_secret_for_web_server_flow: row
            .try_get("require_secret_for_web_server_flow")
            .map_err(g)?,
        require_secret_for_refresh_token_flow: row
            .try_get("require_secret_for_refresh_token_flow")
            .map_err(g)?,
        require_pkce: row.try_get("require_pkce").map_err(g)?,
        refresh_token_policy: RefreshTokenPolicy::parse(&policy)
            .ok_or_else(|| corrupt("refresh_token_policy"))?,
        rotate_refresh_tokens: row.try_get("rotate_refresh_tokens").map_err(g)?,
        session_timeout_secs: row.try_get("session_timeout_secs").map_err(g)?,
        introspect_all_tokens: row.try_get("introspect_all_tokens").map_err(g)?,
        id_token_lifetime_secs: row.try_get("id_token_lifetime_secs").map_err(g)?,
        jwt_access_tokens: row.try_get("jwt_access_tokens").map_err(g)?,
    })
}


fn code_from(row: &$row) -> StoreResult<AuthCode> {
    let g = |e| unavailable(e);
    let scopes: String = row.try_get("scopes").map_err(g)?;
    Ok(AuthCode {
        digest: digest_of(Some(row.try_get("digest").map_err(g)?))?
            .ok_or_else(|| corrupt("digest"))?,
        org_id: parse_id(row.try_get("org_id").map_err(g)?)?,
        user_id: parse_id(row.try_get("user_id").map_err(g)?)?,
        app_id: parse_id(row.try_get("app_id").map_err(g)?)?,
        redirect_uri: row.try_get("redirect_uri").map_err(g)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        code_challenge: row.try_get("code_challenge").map_err(g)?,
        nonce: row.try_get("nonce").map_err(g)?,
        auth_time: row.try_get("auth_time").map_err(g)?,
        issued_at: row.try_get("issued_at").map_err(g)?,
        expires_at: row.try_get("expires_at").map_err(g)?,
    })
}

fn device_code_from(row: &$row) -> StoreResult<DeviceCode> {
    let g = |e| unavailable(e);
    let scopes: String = row.try_get("scopes").map_err(g)?;
    let user_id: Option<String> = row.try_get("user_id").map_err(g)?;
    let auth_time: Option<i64> = row.try_get("auth_time").map_err(g)?;
    let denied: i64 = row.try_get("denied").map_err(g)?;
    let redeemed_at: Option<i64> = row.try_get("redeemed_at").map_err(g)?;
    let decision = match (user_id, denied) {
        (Some(user), _) => DeviceDecision::Approved {
            user_id: parse_id(&user)?,
            auth_time: auth_time.ok_or_else(|| corrupt("auth_time"))?,
        },
        (None, 0) => DeviceDecision::Pending,
        (None, _) => DeviceDecision::Denied,
    };
    Ok(DeviceCode {
        digest: digest_of(Some(row.try_get("digest").map_err(g)?))?
            .ok_or_else(|| corrupt("digest"))?,
        user_code_digest: digest_of(Some(row.try_get("user_code_digest").map_err(g)?))?
            .ok_or_else(|| corrupt("user_code_digest"))?,
        app_id: parse_id(row.try_get("app_id").map_err(g)?)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        issued_at: row.try_get("issued_at").map_err(g)?,
        expires_at: row.try_get("expires_at").map_err(g)?,
        interval_secs: row.try_get("interval_secs").map_err(g)?,
        last_polled_at: row.try_get("last_polled_at").map_err(g)?,
        decision,
        redeemed: redeemed_at.is_some(),
    })
}

/// A decision as its columns (user_id, auth_time, denied); `device_code_from` reads them back.
fn decision_columns(d: DeviceDecision) -> (Option<String>, Option<i64>, i64) {
    match d {
        DeviceDecision::Pending => (None, None, 0),
        DeviceDecision::Approved { user_id, auth_time } => {
            (Some(user_id.as15().to_owned()), Some(auth_time), 0)
        }
        DeviceDecision::Denied => (None, None, 1),
    }
}

fn refresh_from(row: &$row) -> StoreResult<RefreshToken> {
    let g = |e| unavailable(e);
    let scopes: String = row.try_get("scopes").map_err(g)?;
    let rotated: Option<i64> = row.try_get("rotated_at").map_err(g)?;
    let revoked: Option<i64> = row.try_get("revoked_at").map_err(g)?;
    Ok(RefreshToken {
        digest: digest_of(Some(row.try_get("digest").map_err(g)?))?
            .ok_or_else(|| corrupt("digest"))?,
        family: family_of(Some(row.try_get("family").map_err(g)?))?
            .ok_or_else(|| corrupt("family"))?,
        org_id: parse_id(row.try_get("org_id").map_err(g)?)?,
        user_id: parse_id(row.try_get("user_id").map_err(g)?)?,
        app_id: parse_id(row.try_get("app_id").map_err(g)?)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        family_started_at: row.try_get("family_started_at").map_err(g)?,
        issued_at: row.try_get("issued_at").map_err(g)?,
        last_used_at: row.try_get("last_used_at").map_err(g)?,
        rotated: rotated.is_some(),
        revoked: revoked.is_some(),
    })
}

fn session_from(row: &$row) -> StoreResult<Session> {
    let g = |e| unavailable(e);
    let scopes: String = row.try_get("scopes").map_err(g)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(g)?;
    let family: Option<Vec<u8>> = row.try_get("family").map_err(g)?;
    Ok(Session {
        family: family_of(family)?,
        digest: digest_of(Some(row.try_get("digest").map_err(g)?))?
            .ok_or_else(|| corrupt("digest"))?,
        org_id: parse_id(row.try_get("org_id").map_err(g)?)?,
        user_id: parse_id(row.try_get("user_id").map_err(g)?)?,
        app_id: parse_id(row.try_get("app_id").map_err(g)?)?,
        scopes: Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
        issued_at: row.try_get("issued_at").map_err(g)?,
        last_used_at: row.try_get("last_used_at").map_err(g)?,
        timeout_secs: row.try_get("timeout_secs").map_err(g)?,
        revoked: revoked_at.is_some(),
    })
}

#[async_trait]
impl Directory for $store {
    async fn org(&self, id: &SfId) -> StoreResult<Option<std::sync::Arc<Org>>> {
        self.cache
            .get_or_load(&self.cache.orgs, id, || shared(
            sqlx::query($store::sql("SELECT * FROM orgs WHERE id = ?")).bind(id.as15()),
            &self.pool,
            org_from,
        ))
            .await
    }

    async fn user(&self, id: &SfId) -> StoreResult<Option<std::sync::Arc<User>>> {
        self.cache
            .get_or_load(&self.cache.users, id, || shared(
            sqlx::query($store::sql("SELECT * FROM users WHERE id = ?")).bind(id.as15()),
            &self.pool,
            user_from,
        ))
            .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<std::sync::Arc<User>>> {
        self.cache
            .get_or_load(
                &self.cache.usernames,
                username.to_lowercase().as_str(),
                || self.login_user(username),
            )
            .await
    }

    async fn login_user(&self, username: &str) -> StoreResult<Option<std::sync::Arc<User>>> {
        shared(
            sqlx::query($store::sql("SELECT * FROM users WHERE lower(username) = lower(?)")).bind(username),
            &self.pool,
            user_from,
        )
        .await
    }

    async fn app(&self, id: &SfId) -> StoreResult<Option<std::sync::Arc<ConnectedApp>>> {
        self.cache
            .get_or_load(&self.cache.apps, id, || shared(
            sqlx::query($store::sql("SELECT * FROM apps WHERE id = ?")).bind(id.as15()),
            &self.pool,
            app_from,
        ))
            .await
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<std::sync::Arc<ConnectedApp>>> {
        self.cache
            .get_or_load(&self.cache.clients, client_id, || shared(
            sqlx::query($store::sql("SELECT * FROM apps WHERE client_id = ?")).bind(client_id),
            &self.pool,
            app_from,
        ))
            .await
    }

    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool> {
        if let Some(approved) = self.cache.get(&self.cache.approvals, &(*user, *app)) {
            return Ok(approved);
        }
        let ticket = self.cache.ticket();
        let n: i64 =
            sqlx::query_scalar($store::sql("SELECT COUNT(*) FROM approvals WHERE user_id = ? AND app_id = ?"))
                .bind(user.as15())
                .bind(app.as15())
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
        self.cache.put(&self.cache.approvals, ticket, (*user, *app), n > 0);
        Ok(n > 0)
    }
}

#[async_trait]
impl LoginAttempts for $store {
    async fn record_login_failure(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        retrying(|| async move {
        // One statement: concurrent failures each count, and the one that reaches the limit
        // sets the lock and restarts the count.
        let locked: Option<Option<i64>> = sqlx::query_scalar($store::sql("UPDATE users SET
                 locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END,
                 failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END
             WHERE id = ?1 RETURNING locked_until"),
        )
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
        .await;
        self.cache.invalidate();
        result
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        sqlx::query($store::sql("UPDATE users SET failed_logins = 0 WHERE id = ?"))
            .bind(user.as15())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
        }
        .await;
        self.cache.invalidate();
        result
    }
}


#[async_trait]
impl Codes for $store {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        sqlx::query($store::sql("INSERT INTO auth_codes (digest, org_id, user_id, app_id, redirect_uri, scopes, code_challenge, nonce,
                 auth_time, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(&c.digest[..])
        .bind(c.org_id.as15())
        .bind(c.user_id.as15())
        .bind(c.app_id.as15())
        .bind(&c.redirect_uri)
        .bind(c.scopes.to_string())
        .bind(&c.code_challenge)
        .bind(&c.nonce)
        .bind(c.auth_time)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        digest: &Digest,
        family: &Family,
        now: Millis,
    ) -> StoreResult<Redemption> {
        retrying(|| async move {
        // One conditional write decides the winner among concurrent redemptions.
        let won = sqlx::query($store::sql("UPDATE auth_codes SET redeemed_at = ?, family = ? WHERE digest = ? AND redeemed_at IS NULL RETURNING *"),
        )
        .bind(now)
        .bind(&family[..])
        .bind(&digest[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        if let Some(row) = won {
            return Ok(Redemption::Redeemed(code_from(&row)?));
        }
        let first: Option<Option<Vec<u8>>> =
            sqlx::query_scalar($store::sql("SELECT family FROM auth_codes WHERE digest = ?"))
                .bind(&digest[..])
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(match first {
            Some(f) => Redemption::Reused(family_of(f)?),
            None => Redemption::Unknown,
        })
            })
        .await
    }
}


#[async_trait]
impl DeviceCodes for $store {
    async fn insert_device_code(&self, c: &DeviceCode) -> StoreResult<()> {
        let (user_id, auth_time, denied) = decision_columns(c.decision);
        sqlx::query($store::sql("INSERT INTO device_codes (digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs, last_polled_at, user_id, auth_time, denied, redeemed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"))
        .bind(&c.digest[..])
        .bind(&c.user_code_digest[..])
        .bind(c.app_id.as15())
        .bind(c.scopes.to_string())
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(c.interval_secs)
        .bind(c.last_polled_at)
        .bind(user_id)
        .bind(auth_time)
        .bind(denied)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict("device code".into())
            }
            e => unavailable(e),
        })?;
        Ok(())
    }

    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>> {
        optional(
            sqlx::query($store::sql("SELECT * FROM device_codes WHERE user_code_digest = ?"))
                .bind(&user_code_digest[..]),
            &self.pool,
            device_code_from,
        )
        .await
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
        let (user_id, auth_time, denied) = decision_columns(decision);
        let r = sqlx::query($store::sql("UPDATE device_codes SET user_id = ?, auth_time = ?, denied = ?
             WHERE user_code_digest = ? AND user_id IS NULL AND denied = 0 AND expires_at > ?"))
        .bind(user_id)
        .bind(auth_time)
        .bind(denied)
        .bind(&user_code_digest[..])
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(r.rows_affected() == 1)
    }

    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
    ) -> StoreResult<DevicePoll> {
        retrying(|| async move {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // On time: at least the interval (less a little network jitter) since the last poll.
        let on_time = sqlx::query($store::sql("UPDATE device_codes SET last_polled_at = ?1
             WHERE digest = ?2 AND app_id = ?4 AND (last_polled_at IS NULL OR last_polled_at + interval_secs * 1000 - ?3 <= ?1)"))
        .bind(now)
        .bind(&digest[..])
        .bind(idforce_core::model::DEVICE_POLL_TOLERANCE_MS)
        .bind(app.as15())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected()
            == 1;
        let mut redeemed = false;
        if on_time {
            redeemed = sqlx::query($store::sql("UPDATE device_codes SET redeemed_at = ?1
                 WHERE digest = ?2 AND app_id = ?3 AND user_id IS NOT NULL AND redeemed_at IS NULL AND expires_at > ?1"))
            .bind(now)
            .bind(&digest[..])
            .bind(app.as15())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
                == 1;
        } else {
            // Too soon (or unknown): RFC 8628 §3.5 — every later poll waits 5 s longer.
            sqlx::query($store::sql("UPDATE device_codes SET last_polled_at = ?1, interval_secs = interval_secs + 5 WHERE digest = ?2 AND app_id = ?3"))
            .bind(now)
            .bind(&digest[..])
            .bind(app.as15())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        let row = sqlx::query($store::sql("SELECT * FROM device_codes WHERE digest = ? AND app_id = ?"))
            .bind(&digest[..])
            .bind(app.as15())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(match row {
            None => DevicePoll::Unknown,
            Some(row) if on_time => DevicePoll::OnTime {
                code: device_code_from(&row)?,
                redeemed,
            },
            Some(row) => DevicePoll::TooSoon(device_code_from(&row)?),
        })
            })
        .await
    }
}

#[async_trait]
impl LoginSessions for $store {
    async fn insert_login_session(&self, s: &LoginSession) -> StoreResult<()> {
        sqlx::query($store::sql("DELETE FROM login_sessions WHERE expires_at < ?"))
            .bind(s.auth_time)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        sqlx::query($store::sql("INSERT INTO login_sessions (digest, user_id, auth_time, expires_at) VALUES (?, ?, ?, ?)"))
            .bind(&s.digest[..])
            .bind(s.user_id.as15())
            .bind(s.auth_time)
            .bind(s.expires_at)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>> {
        let row = sqlx::query($store::sql("SELECT * FROM login_sessions WHERE digest = ?"))
            .bind(&digest[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            Ok(LoginSession {
                digest: *digest,
                user_id: parse_id(r.try_get("user_id").map_err(unavailable)?)?,
                auth_time: r.try_get("auth_time").map_err(unavailable)?,
                expires_at: r.try_get("expires_at").map_err(unavailable)?,
            })
        })
        .transpose()
    }

    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()> {
        sqlx::query($store::sql("DELETE FROM login_sessions WHERE digest = ?"))
            .bind(&digest[..])
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl Approvals for $store {
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<Scopes>> {
        let s: Option<String> =
            sqlx::query_scalar($store::sql("SELECT scopes FROM approvals WHERE user_id = ? AND app_id = ?"))
                .bind(user.as15())
                .bind(app.as15())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        s.map(|s| Scopes::parse(&s).map_err(|_| corrupt("scopes")))
            .transpose()
    }

    async fn approve(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &Scopes,
        now: Millis,
    ) -> StoreResult<()> {
        Admin::record_approval(self, user, app, scopes, now).await
    }
}


#[async_trait]
impl Admin for $store {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query($store::sql("SELECT 1"))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        retrying(|| async move {
        sqlx::query($store::sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"))
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        sqlx::query_scalar($store::sql("SELECT value FROM meta WHERE key = ?"))
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
            })
        .await
    }

    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId> {
        retrying(|| async move {
        let n: i64 = sqlx::query_scalar($store::sql("INSERT INTO id_serials (prefix, next) VALUES (?, 2)
             ON CONFLICT (prefix) DO UPDATE SET next = id_serials.next + 1
             RETURNING next - 1"),
        )
        .bind(key_prefix)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(SfId::mint(key_prefix, n as u64))
            })
        .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar($store::sql("SELECT COUNT(*) FROM orgs"))
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(n == 0)
    }

    async fn save_org(&self, org: &Org) -> StoreResult<()> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        sqlx::query($store::sql("INSERT INTO orgs (id, name, instance_url, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, instance_url = excluded.instance_url"),
        )
        .bind(org.id.as15())
        .bind(&org.name)
        .bind(&org.instance_url)
        .bind(org.created_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
        }
        .await;
        self.cache.invalidate();
        result
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        optional(
            sqlx::query($store::sql("SELECT * FROM orgs WHERE name = ?")).bind(name),
            &self.pool,
            org_from,
        )
        .await
    }

    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        sqlx::query($store::sql("SELECT * FROM orgs ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(org_from)
            .collect()
    }

    async fn save_user(&self, u: &User) -> StoreResult<()> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        sqlx::query($store::sql("INSERT INTO users (id, org_id, username, email, first_name, last_name, profile, active,
                 password_hash, security_token_digest, security_token_len, failed_logins, locked_until,
                 created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, username = excluded.username,
                 email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
                 profile = excluded.profile, active = excluded.active, password_hash = excluded.password_hash,
                 security_token_digest = excluded.security_token_digest,
                 security_token_len = excluded.security_token_len, failed_logins = excluded.failed_logins,
                 locked_until = excluded.locked_until, updated_at = excluded.updated_at"),
        )
        .bind(u.id.as15())
        .bind(u.org_id.as15())
        .bind(&u.username)
        .bind(&u.email)
        .bind(&u.first_name)
        .bind(&u.last_name)
        .bind(&u.profile)
        .bind(u.active)
        .bind(&u.password_hash)
        .bind(u.security_token.as_ref().map(|(d, _)| d.to_vec()))
        .bind(u.security_token.as_ref().map(|(_, n)| *n as i64))
        .bind(i64::from(u.failed_logins))
        .bind(u.locked_until)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
        }
        .await;
        self.cache.invalidate();
        result
    }

    async fn users(&self, org: Option<&SfId>) -> StoreResult<Vec<User>> {
        let rows = match org {
            Some(org) => {
                sqlx::query($store::sql("SELECT * FROM users WHERE org_id = ? ORDER BY id"))
                    .bind(org.as15())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query($store::sql("SELECT * FROM users ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(user_from).collect()
    }

    async fn save_app(&self, a: &ConnectedApp) -> StoreResult<()> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        let pre: Vec<String> = a
            .pre_authorized_users
            .iter()
            .map(|id| id.as15().to_owned())
            .collect();
        sqlx::query($store::sql("INSERT INTO apps (id, org_id, name, client_id, secret_digest, callback_urls, scopes,
                 certificate_der, permitted_users, profiles, pre_authorized_users, run_as,
                 require_secret_for_web_server_flow, require_secret_for_refresh_token_flow, require_pkce,
                 refresh_token_policy, rotate_refresh_tokens, session_timeout_secs, introspect_all_tokens,
                 id_token_lifetime_secs, jwt_access_tokens)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, client_id = excluded.client_id,
                 secret_digest = excluded.secret_digest, callback_urls = excluded.callback_urls,
                 scopes = excluded.scopes, certificate_der = excluded.certificate_der,
                 permitted_users = excluded.permitted_users, profiles = excluded.profiles,
                 pre_authorized_users = excluded.pre_authorized_users, run_as = excluded.run_as,
                 require_secret_for_web_server_flow = excluded.require_secret_for_web_server_flow,
                 require_secret_for_refresh_token_flow = excluded.require_secret_for_refresh_token_flow,
                 require_pkce = excluded.require_pkce, refresh_token_policy = excluded.refresh_token_policy,
                 rotate_refresh_tokens = excluded.rotate_refresh_tokens,
                 session_timeout_secs = excluded.session_timeout_secs,
                 introspect_all_tokens = excluded.introspect_all_tokens,
                 id_token_lifetime_secs = excluded.id_token_lifetime_secs,
                 jwt_access_tokens = excluded.jwt_access_tokens"),
        )
        .bind(a.id.as15())
        .bind(a.org_id.as15())
        .bind(&a.name)
        .bind(&a.client_id)
        .bind(a.secret_digest.map(|d| d.to_vec()))
        .bind(to_json(&a.callback_urls))
        .bind(a.scopes.to_string())
        .bind(&a.certificate_der)
        .bind(a.permitted_users.as_str())
        .bind(to_json(&a.profiles))
        .bind(to_json(&pre))
        .bind(a.run_as.map(|id| id.as15().to_owned()))
        .bind(a.require_secret_for_web_server_flow)
        .bind(a.require_secret_for_refresh_token_flow)
        .bind(a.require_pkce)
        .bind(a.refresh_token_policy.to_string())
        .bind(a.rotate_refresh_tokens)
        .bind(a.session_timeout_secs)
        .bind(a.introspect_all_tokens)
        .bind(a.id_token_lifetime_secs)
        .bind(a.jwt_access_tokens)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
        }
        .await;
        self.cache.invalidate();
        result
    }

    async fn app_by_name(&self, org: &SfId, name: &str) -> StoreResult<Option<ConnectedApp>> {
        optional(
            sqlx::query($store::sql("SELECT * FROM apps WHERE org_id = ? AND name = ?"))
                .bind(org.as15())
                .bind(name),
            &self.pool,
            app_from,
        )
        .await
    }

    async fn apps(&self, org: Option<&SfId>) -> StoreResult<Vec<ConnectedApp>> {
        let rows = match org {
            Some(org) => {
                sqlx::query($store::sql("SELECT * FROM apps WHERE org_id = ? ORDER BY id"))
                    .bind(org.as15())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query($store::sql("SELECT * FROM apps ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(app_from).collect()
    }

    async fn record_approval(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &Scopes,
        now: Millis,
    ) -> StoreResult<()> {
        // Invalidated after the write, so that no read begun before it is cached.
        let result: StoreResult<_> = async {
        sqlx::query($store::sql("INSERT INTO approvals (user_id, app_id, scopes, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id, app_id) DO UPDATE SET scopes = excluded.scopes"),
        )
        .bind(user.as15())
        .bind(app.as15())
        .bind(scopes.to_string())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
        }
        .await;
        self.cache.invalidate();
        result
    }

    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>> {
        let (column, id) = session_filter_sql(filter);
        let sql = match column {
            "user_id" => {
                "SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ? ORDER BY issued_at"
            }
            _ => {
                "SELECT * FROM sessions WHERE app_id = ? AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ? ORDER BY issued_at"
            }
        };
        sqlx::query($store::sql(sql))
            .bind(id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(session_from)
            .collect()
    }

    async fn purge_expired(&self, now: Millis) -> StoreResult<u64> {
        const HOUR: Millis = 3_600_000;
        let mut total = self.purge_sessions(now - HOUR).await?;
        let statements: [(&'static str, Millis); 4] = [
            ("DELETE FROM auth_codes WHERE expires_at < ?1", now - 24 * HOUR),
            ("DELETE FROM login_sessions WHERE expires_at < ?1", now),
            ("DELETE FROM device_codes WHERE expires_at < ?1", now - HOUR),
            ("DELETE FROM refresh_tokens WHERE revoked_at < ?1", now - 30 * 24 * HOUR),
        ];
        for (sql, before) in statements {
            total += self.purge_rows(sql, before, None).await?;
        }
        total += self
            .purge_rows(crate::sql::EXPIRED_ASSERTIONS, now, Some(crate::sql::expiry_key(now)))
            .await?;
        Ok(total)
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        sqlx::query($store::sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"))
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn serials(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query($store::sql("SELECT prefix, next FROM id_serials ORDER BY prefix"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| Ok((r.try_get("prefix").map_err(unavailable)?, r.try_get("next").map_err(unavailable)?)))
            .collect()
    }

    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()> {
        sqlx::query($store::sql("INSERT INTO id_serials (prefix, next) VALUES (?1, ?2)
             ON CONFLICT (prefix) DO UPDATE SET next = CASE WHEN id_serials.next < ?2 THEN ?2 ELSE id_serials.next END"))
            .bind(key_prefix)
            .bind(next)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn approvals(&self) -> StoreResult<Vec<(SfId, SfId, Scopes, Millis)>> {
        let rows = sqlx::query($store::sql("SELECT user_id, app_id, scopes, created_at FROM approvals ORDER BY user_id, app_id"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes").map_err(unavailable)?;
                Ok((
                    parse_id(r.try_get("user_id").map_err(unavailable)?)?,
                    parse_id(r.try_get("app_id").map_err(unavailable)?)?,
                    Scopes::parse(&scopes).map_err(|_| corrupt("scopes"))?,
                    r.try_get("created_at").map_err(unavailable)?,
                ))
            })
            .collect()
    }

    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>> {
        sqlx::query($store::sql("SELECT * FROM refresh_tokens WHERE revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(refresh_from)
            .collect()
    }

    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>> {
        let (column, id) = session_filter_sql(filter);
        let sql = match column {
            "user_id" => {
                "SELECT * FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at"
            }
            _ => {
                "SELECT * FROM refresh_tokens WHERE app_id = ? AND revoked_at IS NULL AND rotated_at IS NULL ORDER BY issued_at"
            }
        };
        sqlx::query($store::sql(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(refresh_from)
            .collect()
    }

    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)> {
        retrying(|| async move {
        let (column, id) = session_filter_sql(filter);
        let (sessions_sql, refresh_sql) = match column {
            "user_id" => (
                "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ?1",
                "UPDATE refresh_tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL AND rotated_at IS NULL",
            ),
            _ => (
                "UPDATE sessions SET revoked_at = ?1 WHERE app_id = ?2 AND revoked_at IS NULL AND last_used_at + timeout_secs * 1000 > ?1",
                "UPDATE refresh_tokens SET revoked_at = ?1 WHERE app_id = ?2 AND revoked_at IS NULL AND rotated_at IS NULL",
            ),
        };
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let sessions = sqlx::query($store::sql(sessions_sql))
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let refresh = if refresh_too {
            sqlx::query($store::sql(refresh_sql))
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected()
        } else {
            0
        };
        tx.commit().await.map_err(unavailable)?;
        Ok((sessions.rows_affected(), refresh))
            })
        .await
    }
}

#[async_trait]
impl crate::SigningKeys for $store {
    async fn signing_keys(&self) -> StoreResult<Vec<crate::StoredKey>> {
        let rows = sqlx::query($store::sql("SELECT * FROM signing_keys ORDER BY created_at, kid"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let g = |e| unavailable(e);
                Ok(crate::StoredKey {
                    kid: r.try_get("kid").map_err(g)?,
                    created_at: r.try_get("created_at").map_err(g)?,
                    retired_at: r.try_get("retired_at").map_err(g)?,
                    publish_until: r.try_get("publish_until").map_err(g)?,
                    private_key: r.try_get("private_key").map_err(g)?,
                    encrypted: r.try_get("encrypted").map_err(g)?,
                    modulus: r.try_get("modulus").map_err(g)?,
                    exponent: r.try_get("exponent").map_err(g)?,
                })
            })
            .collect()
    }

    async fn put_signing_key(&self, key: &crate::StoredKey) -> StoreResult<()> {
        sqlx::query($store::sql("INSERT INTO signing_keys (kid, created_at, retired_at, publish_until, private_key, encrypted, modulus, exponent)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING"))
            .bind(&key.kid)
            .bind(key.created_at)
            .bind(key.retired_at)
            .bind(key.publish_until)
            .bind(&key.private_key)
            .bind(key.encrypted)
            .bind(&key.modulus)
            .bind(&key.exponent)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn add_signing_key(
        &self,
        key: &crate::StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool> {
        retrying(|| async move {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(until) = retire_others_until {
            sqlx::query($store::sql("UPDATE signing_keys SET retired_at = ?, publish_until = ? WHERE retired_at IS NULL"))
                .bind(key.created_at)
                .bind(until)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let inserted = sqlx::query($store::sql("INSERT INTO signing_keys (kid, created_at, retired_at, publish_until, private_key, encrypted, modulus, exponent)
             VALUES (?, ?, NULL, NULL, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING"),
        )
        .bind(&key.kid)
        .bind(key.created_at)
        .bind(&key.private_key)
        .bind(key.encrypted)
        .bind(&key.modulus)
        .bind(&key.exponent)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 0 {
            // Another node or command added this kid first: keep theirs, retire nothing.
            return Ok(false);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
            })
        .await
    }
}

    };
}

pub(crate) use sql_store;

/// Sessions, assertions and refresh tokens through the sqlx pool. SQLite has its own
/// implementation of these (group commit, direct reads: see `direct.rs`).
macro_rules! sql_token_store {
    ($store:ident, $db:ty, $row:ty) => {
#[async_trait]
impl Sessions for $store {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        insert_session(&self.pool, s).await
    }

    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        optional(
            sqlx::query($store::sql("SELECT * FROM sessions WHERE digest = ?")).bind(&digest[..]),
            &self.pool,
            session_from,
        )
        .await
    }

    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        sqlx::query($store::sql("UPDATE sessions SET last_used_at = CASE WHEN last_used_at < ?1 THEN ?1 ELSE last_used_at END WHERE digest = ?2"))
            .bind(now)
            .bind(&digest[..])
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        let r = sqlx::query($store::sql("UPDATE sessions SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL"),
        )
        .bind(now)
        .bind(&digest[..])
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(r.rows_affected() > 0)
    }
}

#[async_trait]
impl AssertionLedger for $store {
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        retrying(|| async move {
        let r = sqlx::query($store::sql(crate::sql::ASSERTION_FIRST_USE))
        .bind(&digest[..])
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(r.rows_affected() == 1)
            })
        .await
    }

    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        session: &Session,
    ) -> StoreResult<bool> {
        retrying(|| async move {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let r = sqlx::query($store::sql(crate::sql::ASSERTION_FIRST_USE))
        .bind(&digest[..])
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        insert_session(&mut *tx, session).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
            })
        .await
    }
}

async fn insert_session<'e, E: sqlx::Executor<'e, Database = $db>>(
    e: E,
    s: &Session,
) -> StoreResult<()> {
    sqlx::query($store::sql("INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"),
    )
    .bind(&s.digest[..])
    .bind(s.org_id.as15())
    .bind(s.user_id.as15())
    .bind(s.app_id.as15())
    .bind(s.scopes.to_string())
    .bind(s.issued_at)
    .bind(s.last_used_at)
    .bind(s.timeout_secs)
    .bind(s.family.map(|f| f.to_vec()))
    .execute(e)
    .await
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl RefreshTokens for $store {
    async fn insert_refresh_token(&self, t: &RefreshToken) -> StoreResult<()> {
        insert_refresh(&self.pool, t).await
    }

    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        optional(
            sqlx::query($store::sql("SELECT * FROM refresh_tokens WHERE digest = ?")).bind(&digest[..]),
            &self.pool,
            refresh_from,
        )
        .await
    }

    async fn touch_refresh_token(&self, old: &Digest, now: Millis) -> StoreResult<()> {
        sqlx::query($store::sql("UPDATE refresh_tokens SET last_used_at = CASE WHEN last_used_at < ?1 THEN ?1 ELSE last_used_at END WHERE digest = ?2"),
        )
        .bind(now)
        .bind(&old[..])
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old: &Digest,
        new: &RefreshToken,
        now: Millis,
    ) -> StoreResult<bool> {
        retrying(|| async move {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let r = sqlx::query($store::sql("UPDATE refresh_tokens SET rotated_at = ? WHERE digest = ? AND rotated_at IS NULL AND revoked_at IS NULL"),
        )
        .bind(now)
        .bind(&old[..])
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh(&mut *tx, new).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
            })
        .await
    }

    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        retrying(|| async move {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query($store::sql("UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL"),
        )
        .bind(now)
        .bind(&family[..])
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let r = sqlx::query($store::sql("UPDATE sessions SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL"),
        )
        .bind(now)
        .bind(&family[..])
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(r.rows_affected())
            })
        .await
    }
}

async fn insert_refresh<'e, E: sqlx::Executor<'e, Database = $db>>(
    e: E,
    t: &RefreshToken,
) -> StoreResult<()> {
    sqlx::query($store::sql("INSERT INTO refresh_tokens (digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(t.digest.to_vec())
    .bind(t.family.to_vec())
    .bind(t.org_id.as15().to_owned())
    .bind(t.user_id.as15().to_owned())
    .bind(t.app_id.as15().to_owned())
    .bind(t.scopes.to_string())
    .bind(t.family_started_at)
    .bind(t.issued_at)
    .bind(t.last_used_at)
    .execute(e)
    .await
    .map_err(unavailable)?;
    Ok(())
}
    };
}

pub(crate) use sql_token_store;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(
            super::dollar_placeholders("a = ? AND b = ? AND c = '?'"),
            "a = $1 AND b = $2 AND c = '?'"
        );
        assert_eq!(
            super::dollar_placeholders("x = ?2, y = ?1, z = ?1"),
            "x = $2, y = $1, z = $1"
        );
    }

    /// The ledger's purge reads only the expired range of the primary key.
    #[test]
    fn the_ledger_purge_searches_the_key_range() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE assertions (digest BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
        )
        .expect("schema");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::EXPIRED_ASSERTIONS))
            .and_then(|mut st| {
                st.query_map(rusqlite::params![1000, super::expiry_key(1000)], |r| {
                    r.get::<_, String>(3)
                })?
                .collect()
            })
            .expect("plan");
        assert_eq!(plan, ["SEARCH assertions USING PRIMARY KEY (digest<?)"]);
        assert_eq!(super::expiry_key(1000), 1000i64.to_be_bytes());
        assert_eq!(super::expiry_key(-5), [0; 8]);
    }
}
