//! The domain: orgs, users, connected apps, and the sessions (access tokens) issued to them.

use crate::error::OAuthError;
use crate::login_history::LoginStatus;
use crate::scope::Scopes;
use crate::sfid::SfId;
use crate::token::Digest;

/// Milliseconds since the Unix epoch; every instant in idforce is one.
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: SfId,
    pub name: String,
    /// Where the org's data lives (`instance_url` of its tokens) when set explicitly; else its
    /// My Domain's URL, else the server's public URL (`IssuerSettings::instance_url`).
    pub instance_url: Option<String>,
    pub created_at: Millis,
    /// The org's My Domain: a host name (lowercase, without port) whose requests belong to
    /// this org alone.
    pub my_domain: Option<String>,
    /// Where OIDC logout sends the browser (Session Settings → Logout Page Settings); `None`:
    /// the login page.
    pub logout_url: Option<String>,
    /// The org's Experience Cloud sites: each answers under `/<path>/…` on the login host and
    /// the org's My Domain.
    pub sites: Vec<Site>,
    /// Setup's "OAuth and OpenID Connect Settings".
    pub oauth: OAuthSettings,
    /// The org's default time zone (an IANA name): the clock of its profiles' login hours.
    pub time_zone: String,
    /// The org's token exchange handlers (Salesforce's Apex handlers, declared).
    pub token_exchange_handlers: Vec<crate::token_exchange::Handler>,
}

/// An org's "OAuth and OpenID Connect Settings": flows switched off for every app of the org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthSettings {
    /// "Allow OAuth Username-Password Flows" (on unless turned off: idforce is for testing the
    /// integrations that use it; Salesforce's orgs made since Summer '23 start with it off).
    pub allow_username_password_flow: bool,
    /// "Allow OAuth User-Agent Flows".
    pub allow_user_agent_flow: bool,
    /// "Require Proof Key for Code Exchange (PKCE) Extension for Supported Authorization
    /// Flows", for every app of the org.
    pub require_pkce_for_all_apps: bool,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            allow_username_password_flow: true,
            allow_user_agent_flow: true,
            require_pkce_for_all_apps: false,
        }
    }
}

/// An Experience Cloud site of an org (Salesforce's Network, key prefix `0DB`).
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: SfId,
    /// Shown on the site's login page.
    pub name: String,
    /// The first path segment the site answers under, without slashes; unique across orgs.
    pub path: String,
}

impl Org {
    pub fn site_by_path(&self, path: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.path == path)
    }
}

/// A profile of an org: connected apps admit users by it (`ConnectedApp::profiles`, by name,
/// as Salesforce's "Manage Profiles" does). Users name theirs in `User::profile`; a profile is
/// made when first named.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: SfId,
    pub org_id: SfId,
    pub name: String,
    pub created_at: Millis,
    /// Login IP Ranges: when any, logins from elsewhere are refused.
    pub login_ip_ranges: Vec<crate::login_policy::IpRange>,
    /// Login Hours: when set, logins outside them are refused.
    pub login_hours: Option<crate::login_policy::LoginHours>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: SfId,
    pub org_id: SfId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub profile: String,
    pub active: bool,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Keyed digest of the security token, and its length in characters (to split it off
    /// the end of `password+token`).
    pub security_token: Option<(Digest, usize)>,
    pub failed_logins: u32,
    pub locked_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Frozen by an admin: cannot log in, yet not deactivated (Salesforce's Freeze).
    pub frozen: bool,
    /// Salesforce's Federation ID: how an identity provider's token may name the user.
    pub federation_id: Option<String>,
}

impl User {
    pub fn display_name(&self) -> String {
        match (self.first_name.is_empty(), self.last_name.is_empty()) {
            (true, true) => self.username.clone(),
            (true, false) => self.last_name.clone(),
            (false, true) => self.first_name.clone(),
            (false, false) => format!("{} {}", self.first_name, self.last_name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermittedUsers {
    /// Users approve the app themselves on the consent page.
    AllUsers,
    /// Only users of the app's profiles, or named pre-authorized users.
    AdminApproved,
}

impl PermittedUsers {
    pub fn as_str(self) -> &'static str {
        match self {
            PermittedUsers::AllUsers => "all_users",
            PermittedUsers::AdminApproved => "admin_approved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all_users" => Some(PermittedUsers::AllUsers),
            "admin_approved" => Some(PermittedUsers::AdminApproved),
            _ => None,
        }
    }
}

/// When a refresh token stops working (spec §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenPolicy {
    UntilRevoked,
    Immediately,
    /// Absolute lifetime in seconds.
    ExpireAfter(i64),
    /// Idle window in seconds; each use restarts it.
    ExpireIfUnused(i64),
}

impl RefreshTokenPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        let secs = |d: &str| {
            humantime::parse_duration(d)
                .ok()
                .map(|d| d.as_secs() as i64)
                .filter(|s| *s > 0)
        };
        match s.split_once(':') {
            None if s == "until_revoked" => Some(RefreshTokenPolicy::UntilRevoked),
            None if s == "immediately" => Some(RefreshTokenPolicy::Immediately),
            Some(("expire_after", d)) => secs(d).map(RefreshTokenPolicy::ExpireAfter),
            Some(("expire_if_unused", d)) => secs(d).map(RefreshTokenPolicy::ExpireIfUnused),
            _ => None,
        }
    }
}

impl std::fmt::Display for RefreshTokenPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |s: i64| humantime::format_duration(std::time::Duration::from_secs(s as u64));
        match self {
            RefreshTokenPolicy::UntilRevoked => f.write_str("until_revoked"),
            RefreshTokenPolicy::Immediately => f.write_str("immediately"),
            RefreshTokenPolicy::ExpireAfter(s) => write!(f, "expire_after:{}", d(*s)),
            RefreshTokenPolicy::ExpireIfUnused(s) => write!(f, "expire_if_unused:{}", d(*s)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedApp {
    pub id: SfId,
    pub org_id: SfId,
    pub name: String,
    pub client_id: String,
    /// Keyed digest of the consumer secret; `None` for a public client (no secret at all).
    pub secret_digest: Option<Digest>,
    pub callback_urls: Vec<String>,
    pub scopes: Scopes,
    /// DER of the X.509 certificate that verifies JWT bearer assertions.
    pub certificate_der: Option<Vec<u8>>,
    pub permitted_users: PermittedUsers,
    pub profiles: Vec<String>,
    pub pre_authorized_users: Vec<SfId>,
    pub run_as: Option<SfId>,
    pub require_secret_for_web_server_flow: bool,
    pub require_secret_for_refresh_token_flow: bool,
    pub require_pkce: bool,
    pub refresh_token_policy: RefreshTokenPolicy,
    pub rotate_refresh_tokens: bool,
    pub session_timeout_secs: i64,
    pub introspect_all_tokens: bool,
    /// Validity of id_tokens, 1–720 minutes (default 2).
    pub id_token_lifetime_secs: i64,
    /// Issue RFC 9068 JWT access tokens instead of opaque session ids.
    pub jwt_access_tokens: bool,
    /// Refuse JWT bearer assertions while the certificate is expired or not yet valid
    /// (Salesforce does not: off by default).
    pub enforce_certificate_validity: bool,
    /// The consumer secret, sealed under the system secret (see `Sealer`): what `signature`
    /// is computed with when a request does not carry the secret, and what an admin can be
    /// shown again. `None` for a public client, or a secret set before secrets were sealed.
    pub secret_sealed: Option<Vec<u8>>,
    /// Blocked by an admin: no tokens, and its live ones ended (Connected Apps OAuth Usage).
    pub blocked: bool,
    /// Salesforce's API Name: letters, digits and single underscores, unique in the org.
    pub api_name: String,
    /// Contact Email: whom the org's admins ask about the app (shown in Setup only).
    pub contact_email: String,
    /// "Enable OAuth Settings": without it the app has no consumer key on the wire (every
    /// request naming it is answered as for an unknown client).
    pub oauth_enabled: bool,
    /// "Enable for Device Flow": whether the device authorization request is served for it.
    pub device_flow: bool,
    /// Where OIDC logout may send the browser back to, each matched exactly (an extension:
    /// Salesforce ignores `post_logout_redirect_uri`).
    pub post_logout_redirect_uris: Vec<String>,
    /// How many refresh-token approvals a user may hold at once; a grant beyond it revokes the
    /// oldest (Salesforce's five).
    pub max_approvals_per_user: u32,
    /// The token with which clients register themselves as apps of this org (Salesforce's
    /// "Initial Access Token for Dynamic Client Registration").
    pub initial_access_token: Option<ShownSecret>,
    /// A JWK Set (JSON) whose keys verify this app's `private_key_jwt` client assertions,
    /// beside its certificate's key.
    pub jwks: Option<String>,
    /// Where this app publishes such a set instead (fetched, cached, bounded).
    pub jwks_uri: Option<String>,
    /// How the app was registered, when a client registered it (RFC 7591).
    pub registration: Option<crate::registration::Registration>,
    /// "IP Relaxation": whether the profiles' Login IP Ranges hold for this app's logins.
    pub ip_relaxation: crate::login_policy::IpRelaxation,
    /// "Enable Token Exchange Flow" and the handlers the app may use.
    pub token_exchange: crate::token_exchange::AppSettings,
}

/// A credential an admin may be shown again: its keyed digest, which requests are checked
/// against, and a copy sealed under the system secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSecret {
    pub digest: Digest,
    pub sealed: Vec<u8>,
}

/// Salesforce's limit of approvals per user and connected app.
pub const DEFAULT_MAX_APPROVALS_PER_USER: u32 = 5;

/// The consumer key prefix of each org's built-in SOAP app (`ConnectedApp::is_builtin`).
pub const BUILTIN_SOAP_APP_PREFIX: &str = "idforce-soap-api-";

pub const DEFAULT_ID_TOKEN_LIFETIME_SECS: i64 = 120;

pub const DEFAULT_SESSION_TIMEOUT_SECS: i64 = 2 * 3600;

impl User {
    /// Why this user may not log in now, if they may not: deactivated (Salesforce's `inactive
    /// user`) or frozen (answered as a failed login: Salesforce documents no answer of its own
    /// for it, and keeps the reason for Login History; docs/salesforce-compatibility.md).
    pub fn login_refusal(&self) -> Option<OAuthError> {
        if !self.active {
            let why = format!("user {} is deactivated", self.id);
            return Some(
                OAuthError::inactive_user()
                    .because(why)
                    .in_login_history(self, LoginStatus::UserInactive),
            );
        }
        if self.frozen {
            let why = format!("user {} is frozen", self.id);
            return Some(
                OAuthError::authentication_failure()
                    .because(why)
                    .in_login_history(self, LoginStatus::UserFrozen),
            );
        }
        None
    }

    /// Whether this user's existing tokens may still be used.
    pub fn may_use_tokens(&self) -> bool {
        self.active && !self.frozen
    }
}

impl ConnectedApp {
    /// An app with Salesforce's defaults for everything but its names and scopes: no secret,
    /// callbacks or certificate, self-authorized, secrets required where Salesforce requires
    /// them, refresh tokens valid until revoked, two-hour sessions.
    pub fn new(id: SfId, org_id: SfId, name: String, client_id: String, scopes: Scopes) -> Self {
        ConnectedApp {
            id,
            org_id,
            client_id,
            secret_digest: None,
            callback_urls: Vec::new(),
            scopes,
            certificate_der: None,
            permitted_users: PermittedUsers::AllUsers,
            profiles: Vec::new(),
            pre_authorized_users: Vec::new(),
            run_as: None,
            require_secret_for_web_server_flow: true,
            require_secret_for_refresh_token_flow: true,
            require_pkce: false,
            refresh_token_policy: RefreshTokenPolicy::UntilRevoked,
            rotate_refresh_tokens: false,
            session_timeout_secs: DEFAULT_SESSION_TIMEOUT_SECS,
            introspect_all_tokens: false,
            id_token_lifetime_secs: DEFAULT_ID_TOKEN_LIFETIME_SECS,
            jwt_access_tokens: false,
            enforce_certificate_validity: false,
            secret_sealed: None,
            blocked: false,
            api_name: api_name_of(&name),
            contact_email: String::new(),
            oauth_enabled: true,
            device_flow: true,
            post_logout_redirect_uris: Vec::new(),
            max_approvals_per_user: DEFAULT_MAX_APPROVALS_PER_USER,
            initial_access_token: None,
            jwks: None,
            jwks_uri: None,
            registration: None,
            ip_relaxation: Default::default(),
            token_exchange: Default::default(),
            name,
        }
    }

    /// idforce's own app of an org (the one SOAP logins' sessions belong to): not an admin's to
    /// edit, so Setup neither lists nor changes it.
    pub fn is_builtin(&self) -> bool {
        self.client_id.starts_with(BUILTIN_SOAP_APP_PREFIX)
    }

    /// Whether an admin has pre-authorized this user (by profile or by name).
    pub fn pre_authorizes(&self, user: &User) -> bool {
        self.pre_authorized_users.contains(&user.id) || self.admits_profile(&user.profile)
    }

    /// Whether users of the profile `name` are pre-authorized (names ignore ASCII case).
    pub fn admits_profile(&self, name: &str) -> bool {
        self.profiles.iter().any(|p| p.eq_ignore_ascii_case(name))
    }
}

/// A session: what an access token stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub digest: Digest,
    pub org_id: SfId,
    pub user_id: SfId,
    pub app_id: SfId,
    pub scopes: Scopes,
    pub issued_at: Millis,
    pub last_used_at: Millis,
    pub timeout_secs: i64,
    pub revoked: bool,
    /// The refresh family the session descends from, if any.
    pub family: Option<Family>,
    /// The address the grant came from (Session Management's Source IP).
    pub source_ip: Option<String>,
}

impl Session {
    pub fn expires_at(&self) -> Millis {
        self.last_used_at + self.timeout_secs * 1000
    }

    pub fn is_live(&self, now: Millis) -> bool {
        !self.revoked && now < self.expires_at()
    }

    /// Sliding expiry without a write per request: the idle clock is pushed forward only
    /// once more than half of the timeout has passed since it was last pushed.
    pub fn needs_touch(&self, now: Millis) -> bool {
        now - self.last_used_at > self.timeout_secs * 500
    }
}

/// Salesforce's limit of logins per user: at most `logins` in any `window_ms` (3,600 an hour),
/// counted across every login entry point and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRate {
    pub logins: u32,
    pub window_ms: i64,
}

impl LoginRate {
    /// `"3600/h"`: a count, a slash, and a window (`s`, `m`, `h`, `d`, or a duration such as
    /// `30m`).
    pub fn parse(s: &str) -> Option<LoginRate> {
        let (n, per) = s.trim().split_once('/')?;
        let logins: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
        let per = per.trim();
        let secs = match per {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => {
                let d = humantime::parse_duration(other).ok()?;
                // Whole seconds only: a window of 1.5 s is not silently one of 1 s.
                (d.subsec_nanos() == 0).then_some(d.as_secs())?
            }
        };
        let window_ms = i64::try_from(secs).ok()?.checked_mul(1000)?;
        // The sliding count weighs (2 × logins + 1) windows: it must fit in 64 bits, in the
        // stores' SQL as here.
        i64::from(logins)
            .checked_mul(2)?
            .checked_add(1)?
            .checked_mul(window_ms)?;
        (window_ms > 0).then_some(LoginRate { logins, window_ms })
    }

    /// The sliding-window count a store keeps per user, after one more login at `now`, if it
    /// is within the rate; `None` if it is not (and nothing is counted). Windows start at
    /// multiples of `window_ms`; a window started up to one window later than `now` (another
    /// node's clock a little ahead) is taken as the current one, one further ahead as stale (a
    /// clock far ahead must not block the user until real time catches up). The stores' SQL
    /// does the same in one statement.
    pub fn admit(&self, kept: Option<LoginCount>, now: Millis) -> Option<LoginCount> {
        let w = self.window_ms;
        let bucket = now.div_euclid(w) * w;
        let next = match kept {
            Some(k) if (bucket..=bucket + w).contains(&k.bucket) => LoginCount {
                bucket: k.bucket,
                count: k.count + 1,
                previous: k.previous,
            },
            Some(k) => LoginCount {
                bucket,
                count: 1,
                previous: if k.bucket == bucket - w { k.count } else { 0 },
            },
            None => LoginCount {
                bucket,
                count: 1,
                previous: 0,
            },
        };
        let elapsed = (now - next.bucket).clamp(0, w);
        let weighted = next.previous * (w - elapsed) + next.count * w;
        (weighted <= i64::from(self.logins) * w).then_some(next)
    }
}

/// What a store keeps of a user's logins for `LoginRate`: the current window's start and
/// count, and the previous window's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginCount {
    pub bucket: Millis,
    pub count: i64,
    pub previous: i64,
}

/// Lockout rule of the org's password policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub attempts: u32,
    pub duration_secs: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            attempts: 10,
            duration_secs: 15 * 60,
        }
    }
}

impl User {
    pub fn is_locked(&self, now: Millis) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// The id of a refresh family: every refresh token and session descended from one grant.
pub type Family = [u8; 16];

/// A pending authorization code (spec §3.2): bound to the app, the redirect URI, the PKCE
/// challenge and the granted scopes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthCode {
    pub digest: Digest,
    pub org_id: SfId,
    pub user_id: SfId,
    pub app_id: SfId,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: Millis,
    pub issued_at: Millis,
    pub expires_at: Millis,
}

/// A device authorization (spec §3.8, RFC 8628): the device polls with `device_code` while a
/// user, on another screen, enters `user_code` and approves or denies. Both codes are kept
/// only as keyed digests.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCode {
    pub digest: Digest,
    pub user_code_digest: Digest,
    pub app_id: SfId,
    pub scopes: Scopes,
    pub issued_at: Millis,
    pub expires_at: Millis,
    /// Seconds the device must wait between polls; grows by 5 on every `slow_down`.
    pub interval_secs: i64,
    pub last_polled_at: Option<Millis>,
    pub decision: DeviceDecision,
    pub redeemed: bool,
}

/// What the user decided on the verification page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceDecision {
    Pending,
    Approved { user_id: SfId, auth_time: Millis },
    Denied,
}

/// Device codes live 10 minutes; devices poll every 5 seconds (spec §3.8).
pub const DEVICE_CODE_LIFETIME_MS: Millis = 10 * 60 * 1000;
pub const DEVICE_POLL_INTERVAL_SECS: i64 = 5;
/// A poll this much early still counts as on time (timers and networks jitter).
pub const DEVICE_POLL_TOLERANCE_MS: Millis = 1000;

/// Authorization codes live 15 minutes (spec §10).
pub const AUTH_CODE_LIFETIME_MS: Millis = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub digest: Digest,
    pub family: Family,
    pub org_id: SfId,
    pub user_id: SfId,
    pub app_id: SfId,
    pub scopes: Scopes,
    /// When the grant that started the family was made (absolute policies count from it).
    pub family_started_at: Millis,
    pub issued_at: Millis,
    pub last_used_at: Millis,
    pub rotated: bool,
    pub revoked: bool,
}

impl RefreshTokenPolicy {
    /// Whether a refresh token may still be used at `now` (spec §10).
    pub fn allows(&self, token: &RefreshToken, now: Millis) -> bool {
        match *self {
            RefreshTokenPolicy::UntilRevoked => true,
            RefreshTokenPolicy::Immediately => false,
            RefreshTokenPolicy::ExpireAfter(secs) => now < token.family_started_at + secs * 1000,
            RefreshTokenPolicy::ExpireIfUnused(secs) => now < token.last_used_at + secs * 1000,
        }
    }
}

/// A browser login (the login cookie's session).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginSession {
    pub digest: Digest,
    pub user_id: SfId,
    pub auth_time: Millis,
    pub expires_at: Millis,
}

/// The API Name Salesforce proposes for an app's name: each run of characters other than
/// letters and digits becomes one underscore, none at either end, and a leading digit gets an
/// `X` (an API name starts with a letter).
pub fn api_name_of(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_');
    match out.chars().next() {
        None => "App".to_owned(),
        Some(c) if c.is_ascii_digit() => format!("X{out}"),
        Some(_) => out.to_owned(),
    }
}

/// Whether `s` is an API name Salesforce accepts: a letter first, then letters, digits and
/// underscores, never two underscores together nor one at the end, 80 characters at most.
pub fn is_api_name(s: &str) -> bool {
    s.len() <= 80
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn login_rates_parse_as_admins_write_them() {
        let rate = |s| LoginRate::parse(s);
        assert_eq!(
            rate("3600/h"),
            Some(LoginRate {
                logins: 3600,
                window_ms: HOUR
            })
        );
        assert_eq!(
            rate(" 10 / 30m "),
            Some(LoginRate {
                logins: 10,
                window_ms: HOUR / 2
            })
        );
        assert_eq!(rate("5/s").unwrap().window_ms, 1000);
        for bad in [
            "",
            "3600",
            "0/h",
            "-1/h",
            "x/h",
            "10/",
            "10/parsec",
            "1/1500ms",
            "4000000000/300years",
        ] {
            assert_eq!(rate(bad), None, "{bad}");
        }
    }

    /// Logins within the rate are counted; the one beyond it is refused and not counted; the
    /// previous window weighs less as the sliding window leaves it.
    #[test]
    fn a_sliding_window_admits_the_rate_and_no_more() {
        let rate = LoginRate {
            logins: 3,
            window_ms: HOUR,
        };
        let start = 10 * HOUR;
        let mut kept = None;
        for i in 0..3 {
            kept = Some(rate.admit(kept, start + i).expect("within the rate"));
        }
        assert_eq!(rate.admit(kept, start + 10), None, "the fourth in the hour");
        assert_eq!(kept.unwrap().count, 3, "a refusal is not counted");
        // Early in the next window the previous one still fills it: refused.
        assert_eq!(rate.admit(kept, start + HOUR + 60_000), None);
        // A third of the way in, a third of the previous window's logins has slid out: one
        // login fits (3 × 2/3 + 1 = 3), the next does not.
        let later = start + HOUR + HOUR / 3;
        let k = rate.admit(kept, later).expect("room again");
        assert_eq!((k.count, k.previous), (1, 3));
        assert_eq!(rate.admit(Some(k), later), None);
        // Two windows later nothing is left of them.
        let k = rate.admit(Some(k), start + 3 * HOUR).unwrap();
        assert_eq!((k.count, k.previous), (1, 0));
        // A window another node already started (its clock ahead) is the current one.
        let ahead = LoginCount {
            bucket: 20 * HOUR,
            count: 1,
            previous: 0,
        };
        assert_eq!(rate.admit(Some(ahead), 20 * HOUR - 5).unwrap().count, 2);
        // One far ahead is stale: it does not hold the user back.
        let far = LoginCount {
            bucket: 90 * HOUR,
            count: 3,
            previous: 3,
        };
        let k = rate.admit(Some(far), 20 * HOUR + 5).unwrap();
        assert_eq!((k.bucket, k.count, k.previous), (20 * HOUR, 1, 0));
    }
}
