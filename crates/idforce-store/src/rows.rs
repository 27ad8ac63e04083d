//! Stored rows as domain records, for both backends. Every `SELECT` of a table lists its
//! columns in the order given here, and each decoder reads them by position.

use idforce_core::model::{
    AuthCode, ConnectedApp, DeviceCode, DeviceDecision, Family, LoginSession, Org, PermittedUsers,
    Profile, RefreshToken, RefreshTokenPolicy, Session, ShownSecret, Site, User,
};
use idforce_core::ports::{StoreError, StoreResult};
use idforce_core::registration::Registration;
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use crate::StoredKey;

/// One result row, read by column position; each backend implements it for its own rows.
pub(crate) trait Columns {
    fn text(&self, i: usize) -> StoreResult<String>;
    fn int(&self, i: usize) -> StoreResult<i64>;
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>>;
    fn flag(&self, i: usize) -> StoreResult<bool>;
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    fn opt_blob(&self, i: usize) -> StoreResult<Option<Vec<u8>>>;

    fn id(&self, i: usize) -> StoreResult<SfId> {
        parse_id(&self.text(i)?)
    }
    fn digest(&self, i: usize) -> StoreResult<Digest> {
        Digest::try_from(self.blob(i)?.as_slice()).map_err(|_| corrupt("digest"))
    }
    fn scopes(&self, i: usize) -> StoreResult<Scopes> {
        Scopes::parse(&self.text(i)?).map_err(|_| corrupt("scopes"))
    }
    fn family(&self, i: usize) -> StoreResult<Option<Family>> {
        self.opt_blob(i)?
            .map(|b| Family::try_from(b.as_slice()).map_err(|_| corrupt("family")))
            .transpose()
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} is not readable"))
}

pub(crate) fn parse_id(s: &str) -> StoreResult<SfId> {
    SfId::parse(s).map_err(|_| corrupt("id"))
}

/// Lists (callback URLs, profiles, pre-authorized users) are stored as JSON arrays.
pub(crate) fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

fn json_list(s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|_| corrupt("list"))
}

/// `id, name, instance_url, created_at, my_domain, logout_url, sites,
/// allow_username_password_flow, allow_user_agent_flow, require_pkce_for_all_apps, time_zone,
/// token_exchange_handlers`
pub(crate) fn org(r: &impl Columns) -> StoreResult<Org> {
    Ok(Org {
        id: r.id(0)?,
        name: r.text(1)?,
        instance_url: r.opt_text(2)?,
        created_at: r.int(3)?,
        my_domain: r.opt_text(4)?,
        logout_url: r.opt_text(5)?,
        sites: sites(&r.text(6)?)?,
        oauth: idforce_core::model::OAuthSettings {
            allow_username_password_flow: r.flag(7)?,
            allow_user_agent_flow: r.flag(8)?,
            require_pkce_for_all_apps: r.flag(9)?,
        },
        time_zone: r.text(10)?,
        token_exchange_handlers: idforce_core::token_exchange::handlers_from_json(&r.text(11)?)
            .ok_or_else(|| corrupt("token_exchange_handlers"))?,
    })
}

/// An org's sites as stored: a JSON list of `{"id", "name", "path"}`.
pub(crate) fn sites_json(sites: &[Site]) -> String {
    let stored: Vec<serde_json::Value> = sites
        .iter()
        .map(|s| serde_json::json!({"id": s.id.as15(), "name": s.name, "path": s.path}))
        .collect();
    serde_json::Value::Array(stored).to_string()
}

fn sites(s: &str) -> StoreResult<Vec<Site>> {
    let stored: Vec<serde_json::Value> = serde_json::from_str(s).map_err(|_| corrupt("sites"))?;
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or_else(|| corrupt("sites"))
    };
    stored
        .iter()
        .map(|v| {
            Ok(Site {
                id: parse_id(&text(v, "id")?)?,
                name: text(v, "name")?,
                path: text(v, "path")?,
            })
        })
        .collect()
}

/// `at, actor, section, action`
pub(crate) fn audit(r: &impl Columns) -> StoreResult<crate::AuditRecord> {
    Ok(crate::AuditRecord {
        at: r.int(0)?,
        actor: r.text(1)?,
        section: r.text(2)?,
        action: r.text(3)?,
        org: r.opt_text(4)?.as_deref().map(parse_id).transpose()?,
    })
}

/// The columns of a Login History row, in the order `login_record` reads them.
pub(crate) const LOGIN_HISTORY_COLUMNS: &str = "id, at, org_id, user_id, username, subtype, status, \
     source_ip, app_id, application, browser, platform, login_url";

/// `LOGIN_HISTORY_COLUMNS`
pub(crate) fn login_record(r: &impl Columns) -> StoreResult<crate::LoginRecord> {
    use idforce_core::login_history::{LoginStatus, LoginSubtype};
    let source_ip = r
        .opt_text(7)?
        .map(|ip| ip.parse().map_err(|_| corrupt("source IP")))
        .transpose()?;
    Ok(crate::LoginRecord {
        id: r.int(0)?,
        event: idforce_core::login_history::LoginEvent {
            at: r.int(1)?,
            org_id: r.id(2)?,
            user_id: r.id(3)?,
            username: r.text(4)?,
            subtype: LoginSubtype::parse(&r.text(5)?).ok_or_else(|| corrupt("login subtype"))?,
            status: LoginStatus::parse(&r.text(6)?).ok_or_else(|| corrupt("login status"))?,
            source_ip,
            app_id: r.opt_text(8)?.map(|s| parse_id(&s)).transpose()?,
            application: r.text(9)?,
            browser: r.text(10)?,
            platform: r.text(11)?,
            login_url: r.text(12)?,
        },
    })
}

/// The values of a Login History row, in the order of `INSERT_LOGIN` (everything but `id`).
pub(crate) struct LoginValues {
    pub at: i64,
    pub org_id: String,
    pub user_id: String,
    pub username: String,
    pub subtype: &'static str,
    pub status: &'static str,
    pub source_ip: Option<String>,
    pub app_id: Option<String>,
    pub application: String,
    pub browser: String,
    pub platform: String,
    pub login_url: String,
}

impl From<&idforce_core::login_history::LoginEvent> for LoginValues {
    fn from(e: &idforce_core::login_history::LoginEvent) -> Self {
        LoginValues {
            at: e.at,
            org_id: e.org_id.as15().to_owned(),
            user_id: e.user_id.as15().to_owned(),
            username: e.username.clone(),
            subtype: e.subtype.as_str(),
            status: e.status.label(),
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            app_id: e.app_id.map(|a| a.as15().to_owned()),
            application: e.application.clone(),
            browser: e.browser.clone(),
            platform: e.platform.clone(),
            login_url: e.login_url.clone(),
        }
    }
}

/// `id, org_id, name, created_at, login_ip_ranges, login_hours`
pub(crate) fn profile(r: &impl Columns) -> StoreResult<Profile> {
    Ok(Profile {
        id: r.id(0)?,
        org_id: r.id(1)?,
        name: r.text(2)?,
        created_at: r.int(3)?,
        login_ip_ranges: serde_json::from_str(&r.text(4)?)
            .map_err(|_| corrupt("login_ip_ranges"))?,
        login_hours: r
            .opt_text(5)?
            .map(|t| serde_json::from_str(&t).map_err(|_| corrupt("login_hours")))
            .transpose()?,
    })
}

/// A profile's Login IP Ranges as stored: JSON `[{"start", "end"}]`.
pub(crate) fn ip_ranges_json(ranges: &[idforce_core::login_policy::IpRange]) -> String {
    serde_json::to_string(ranges).unwrap_or_else(|_| "[]".to_owned())
}

/// A profile's Login Hours as stored: JSON `{"days": [[start, end] or null; 7]}` (minutes).
pub(crate) fn login_hours_json(hours: &idforce_core::login_policy::LoginHours) -> String {
    serde_json::to_string(hours).unwrap_or_default()
}

/// The columns of `users`, in the order `user` reads them.
macro_rules! user_columns {
    () => {
        "id, org_id, username, email, first_name, last_name, profile, active, password_hash,
     security_token_digest, security_token_len, failed_logins, locked_until, created_at,
     updated_at, frozen, federation_id"
    };
}
pub(crate) use user_columns;

/// A user, from the columns `user_columns!` lists.
pub(crate) fn user(r: &impl Columns) -> StoreResult<User> {
    let token = r
        .opt_blob(9)?
        .map(|b| Digest::try_from(b.as_slice()).map_err(|_| corrupt("digest")))
        .transpose()?;
    let token_len = r.opt_int(10)?.map(|n| n as usize);
    Ok(User {
        id: r.id(0)?,
        org_id: r.id(1)?,
        username: r.text(2)?,
        email: r.text(3)?,
        first_name: r.text(4)?,
        last_name: r.text(5)?,
        profile: r.text(6)?,
        active: r.flag(7)?,
        password_hash: r.text(8)?,
        security_token: token.zip(token_len),
        failed_logins: u32::try_from(r.int(11)?).map_err(|_| corrupt("failed_logins"))?,
        locked_until: r.opt_int(12)?,
        created_at: r.int(13)?,
        updated_at: r.int(14)?,
        frozen: r.flag(15)?,
        federation_id: r.opt_text(16)?,
    })
}

/// The columns of `apps`, in the order `app` reads them.
macro_rules! app_columns {
    () => {
        "id, org_id, name, client_id, secret_digest, callback_urls, scopes, certificate_der,
     permitted_users, profiles, pre_authorized_users, run_as, require_secret_for_web_server_flow,
     require_secret_for_refresh_token_flow, require_pkce, refresh_token_policy, rotate_refresh_tokens,
     session_timeout_secs, introspect_all_tokens, id_token_lifetime_secs, jwt_access_tokens,
     enforce_certificate_validity, secret_sealed, blocked, api_name, contact_email,
     oauth_enabled, device_flow, post_logout_redirect_uris, max_approvals_per_user,
     initial_access_token_digest, initial_access_token_sealed, jwks, jwks_uri, registration,
     ip_relaxation, token_exchange"
    };
}
pub(crate) use app_columns;

/// An app, from the columns `app_columns!` lists.
pub(crate) fn app(r: &impl Columns) -> StoreResult<ConnectedApp> {
    let secret = r
        .opt_blob(4)?
        .map(|b| Digest::try_from(b.as_slice()).map_err(|_| corrupt("digest")))
        .transpose()?;
    Ok(ConnectedApp {
        id: r.id(0)?,
        org_id: r.id(1)?,
        name: r.text(2)?,
        client_id: r.text(3)?,
        secret_digest: secret,
        callback_urls: json_list(&r.text(5)?)?,
        scopes: r.scopes(6)?,
        certificate_der: r.opt_blob(7)?,
        permitted_users: PermittedUsers::parse(&r.text(8)?)
            .ok_or_else(|| corrupt("permitted_users"))?,
        profiles: json_list(&r.text(9)?)?,
        pre_authorized_users: json_list(&r.text(10)?)?
            .iter()
            .map(|s| parse_id(s))
            .collect::<StoreResult<_>>()?,
        run_as: r.opt_text(11)?.as_deref().map(parse_id).transpose()?,
        require_secret_for_web_server_flow: r.flag(12)?,
        require_secret_for_refresh_token_flow: r.flag(13)?,
        require_pkce: r.flag(14)?,
        refresh_token_policy: RefreshTokenPolicy::parse(&r.text(15)?)
            .ok_or_else(|| corrupt("refresh_token_policy"))?,
        rotate_refresh_tokens: r.flag(16)?,
        session_timeout_secs: r.int(17)?,
        introspect_all_tokens: r.flag(18)?,
        id_token_lifetime_secs: r.int(19)?,
        jwt_access_tokens: r.flag(20)?,
        enforce_certificate_validity: r.flag(21)?,
        secret_sealed: r.opt_blob(22)?,
        blocked: r.flag(23)?,
        api_name: match r.text(24)? {
            // Apps stored before API names: the name Salesforce would propose.
            a if a.is_empty() => idforce_core::model::api_name_of(&r.text(2)?),
            a => a,
        },
        contact_email: r.text(25)?,
        oauth_enabled: r.flag(26)?,
        device_flow: r.flag(27)?,
        post_logout_redirect_uris: json_list(&r.text(28)?)?,
        max_approvals_per_user: u32::try_from(r.int(29)?)
            .map_err(|_| corrupt("max_approvals_per_user"))?,
        initial_access_token: match (r.opt_blob(30)?, r.opt_blob(31)?) {
            (Some(digest), Some(sealed)) => Some(ShownSecret {
                digest: Digest::try_from(digest.as_slice()).map_err(|_| corrupt("digest"))?,
                sealed,
            }),
            _ => None,
        },
        jwks: r.opt_text(32)?,
        jwks_uri: r.opt_text(33)?,
        registration: r.opt_text(34)?.as_deref().map(registration).transpose()?,
        ip_relaxation: idforce_core::login_policy::IpRelaxation::parse(&r.text(35)?)
            .ok_or_else(|| corrupt("ip_relaxation"))?,
        token_exchange: idforce_core::token_exchange::AppSettings::from_json(&r.text(36)?)
            .ok_or_else(|| corrupt("token_exchange"))?,
    })
}

pub(crate) fn registration_json(r: &Registration) -> String {
    r.to_json().to_string()
}

fn registration(text: &str) -> StoreResult<Registration> {
    serde_json::from_str(text)
        .ok()
        .and_then(|v| Registration::from_json(&v))
        .ok_or_else(|| corrupt("registration"))
}

/// The stored forms of an app's lists: callback URLs, profiles, pre-authorized users.
pub(crate) fn app_lists(a: &ConnectedApp) -> (String, String, String) {
    let pre: Vec<String> = a
        .pre_authorized_users
        .iter()
        .map(|id| id.as15().to_owned())
        .collect();
    (
        to_json(&a.callback_urls),
        to_json(&a.profiles),
        to_json(&pre),
    )
}

/// `digest, org_id, user_id, app_id, redirect_uri, scopes, code_challenge, nonce, auth_time,
/// issued_at, expires_at, redeemed_at`; with whether it was spent.
pub(crate) fn code(r: &impl Columns) -> StoreResult<(AuthCode, bool)> {
    Ok((
        AuthCode {
            digest: r.digest(0)?,
            org_id: r.id(1)?,
            user_id: r.id(2)?,
            app_id: r.id(3)?,
            redirect_uri: r.text(4)?,
            scopes: r.scopes(5)?,
            code_challenge: r.opt_text(6)?,
            nonce: r.opt_text(7)?,
            auth_time: r.int(8)?,
            issued_at: r.int(9)?,
            expires_at: r.int(10)?,
        },
        r.opt_int(11)?.is_some(),
    ))
}

/// `digest, user_code_digest, app_id, scopes, issued_at, expires_at, interval_secs,
/// last_polled_at, user_id, auth_time, denied, redeemed_at`
pub(crate) fn device_code(r: &impl Columns) -> StoreResult<DeviceCode> {
    let decision = match (r.opt_text(8)?, r.int(10)?) {
        (Some(user), _) => DeviceDecision::Approved {
            user_id: parse_id(&user)?,
            auth_time: r.opt_int(9)?.ok_or_else(|| corrupt("auth_time"))?,
        },
        (None, 0) => DeviceDecision::Pending,
        (None, _) => DeviceDecision::Denied,
    };
    Ok(DeviceCode {
        digest: r.digest(0)?,
        user_code_digest: r.digest(1)?,
        app_id: r.id(2)?,
        scopes: r.scopes(3)?,
        issued_at: r.int(4)?,
        expires_at: r.int(5)?,
        interval_secs: r.int(6)?,
        last_polled_at: r.opt_int(7)?,
        decision,
        redeemed: r.opt_int(11)?.is_some(),
    })
}

/// A device decision as its columns (user_id, auth_time, denied); `device_code` reads them
/// back.
pub(crate) fn decision_columns(d: DeviceDecision) -> (Option<String>, Option<i64>, i64) {
    match d {
        DeviceDecision::Pending => (None, None, 0),
        DeviceDecision::Approved { user_id, auth_time } => {
            (Some(user_id.as15().to_owned()), Some(auth_time), 0)
        }
        DeviceDecision::Denied => (None, None, 1),
    }
}

/// `digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs,
/// revoked_at, family, source_ip`
pub(crate) fn session(r: &impl Columns) -> StoreResult<Session> {
    Ok(Session {
        digest: r.digest(0)?,
        org_id: r.id(1)?,
        user_id: r.id(2)?,
        app_id: r.id(3)?,
        scopes: r.scopes(4)?,
        issued_at: r.int(5)?,
        last_used_at: r.int(6)?,
        timeout_secs: r.int(7)?,
        revoked: r.opt_int(8)?.is_some(),
        family: r.family(9)?,
        source_ip: r.opt_text(10)?,
    })
}

/// `digest, family, org_id, user_id, app_id, scopes, family_started_at, issued_at,
/// last_used_at, rotated_at, revoked_at`
pub(crate) fn refresh_token(r: &impl Columns) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        digest: r.digest(0)?,
        family: r.family(1)?.ok_or_else(|| corrupt("family"))?,
        org_id: r.id(2)?,
        user_id: r.id(3)?,
        app_id: r.id(4)?,
        scopes: r.scopes(5)?,
        family_started_at: r.int(6)?,
        issued_at: r.int(7)?,
        last_used_at: r.int(8)?,
        rotated: r.opt_int(9)?.is_some(),
        revoked: r.opt_int(10)?.is_some(),
    })
}

/// `digest, user_id, auth_time, expires_at`
pub(crate) fn login_session(r: &impl Columns) -> StoreResult<LoginSession> {
    Ok(LoginSession {
        digest: r.digest(0)?,
        user_id: r.id(1)?,
        auth_time: r.int(2)?,
        expires_at: r.int(3)?,
    })
}

/// `kid, created_at, retired_at, publish_until, private_key, encrypted, modulus, exponent`
pub(crate) fn signing_key(r: &impl Columns) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: r.text(0)?,
        created_at: r.int(1)?,
        retired_at: r.opt_int(2)?,
        publish_until: r.opt_int(3)?,
        private_key: r.blob(4)?,
        encrypted: r.flag(5)?,
        modulus: r.blob(6)?,
        exponent: r.blob(7)?,
    })
}

/// `user_id, app_id, scopes, created_at`
pub(crate) fn approval(r: &impl Columns) -> StoreResult<crate::ApprovalRecord> {
    Ok((r.id(0)?, r.id(1)?, r.scopes(2)?, r.int(3)?))
}
