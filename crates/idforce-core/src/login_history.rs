//! Login History (Salesforce's Setup → Login History): one record per login attempt of a
//! known user, from every entry point, with the reason a refusal's deliberately vague wire
//! answer hides. A success is stored with the grant's own writes (`Tokens::login`); a
//! refusal carries its record in the `OAuthError` (`OAuthError::refused_login`) and is
//! stored by whoever answers it (`refusal`).

use std::net::IpAddr;

use crate::grant::{GrantType, TokenContext};
use crate::model::{ConnectedApp, Millis, User};
use crate::sfid::SfId;

/// How the user logged in: Salesforce's Login Type, by the label its Login History shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginType {
    /// The login page.
    Application,
    /// A connected app's OAuth 2.0 flow.
    RemoteAccess2,
    /// SOAP `login()`.
    OtherApexApi,
}

impl LoginType {
    pub fn label(self) -> &'static str {
        match self {
            LoginType::Application => "Application",
            LoginType::RemoteAccess2 => "Remote Access 2.0",
            LoginType::OtherApexApi => "Other Apex API",
        }
    }

    pub fn parse(s: &str) -> Option<LoginType> {
        [
            LoginType::Application,
            LoginType::RemoteAccess2,
            LoginType::OtherApexApi,
        ]
        .into_iter()
        .find(|t| t.label() == s)
    }
}

/// Which flow: Salesforce's Login Subtype API names, and idforce's own for the two flows
/// Salesforce publishes none for (JWT bearer, device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSubtype {
    UiLogin,
    SoapApiLogin,
    UsernamePassword,
    WebServer,
    UserAgent,
    RefreshToken,
    ClientCredentials,
    JwtBearer,
    Device,
    TokenExchange,
    SamlBearer,
}

const SUBTYPES: [LoginSubtype; 11] = [
    LoginSubtype::UiLogin,
    LoginSubtype::SoapApiLogin,
    LoginSubtype::UsernamePassword,
    LoginSubtype::WebServer,
    LoginSubtype::UserAgent,
    LoginSubtype::RefreshToken,
    LoginSubtype::ClientCredentials,
    LoginSubtype::JwtBearer,
    LoginSubtype::Device,
    LoginSubtype::TokenExchange,
    LoginSubtype::SamlBearer,
];

impl LoginSubtype {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginSubtype::UiLogin => "UsernamePasswordUiLogin",
            LoginSubtype::SoapApiLogin => "SoapApiLogin",
            LoginSubtype::UsernamePassword => "OauthUsernamePassword",
            LoginSubtype::WebServer => "OauthWebServer",
            LoginSubtype::UserAgent => "OauthUserAgent",
            LoginSubtype::RefreshToken => "OauthRefreshToken",
            LoginSubtype::ClientCredentials => "OauthClientCredentials",
            LoginSubtype::JwtBearer => "OauthJwtBearer",
            LoginSubtype::Device => "OauthDevice",
            LoginSubtype::TokenExchange => "OauthTokenExchange",
            LoginSubtype::SamlBearer => "OauthSamlBearer",
        }
    }

    pub fn parse(s: &str) -> Option<LoginSubtype> {
        SUBTYPES.into_iter().find(|t| t.as_str() == s)
    }

    pub fn login_type(self) -> LoginType {
        match self {
            LoginSubtype::UiLogin => LoginType::Application,
            LoginSubtype::SoapApiLogin => LoginType::OtherApexApi,
            _ => LoginType::RemoteAccess2,
        }
    }

    /// The flow of a token-endpoint grant.
    pub fn of_grant(grant: GrantType) -> LoginSubtype {
        match grant {
            GrantType::Password => LoginSubtype::UsernamePassword,
            GrantType::JwtBearer => LoginSubtype::JwtBearer,
            GrantType::ClientCredentials => LoginSubtype::ClientCredentials,
            GrantType::AuthorizationCode => LoginSubtype::WebServer,
            GrantType::RefreshToken => LoginSubtype::RefreshToken,
            GrantType::Device => LoginSubtype::Device,
            GrantType::TokenExchange => LoginSubtype::TokenExchange,
            GrantType::SamlBearer => LoginSubtype::SamlBearer,
        }
    }
}

/// The outcome: Salesforce's Status strings, as its Login History page shows them
/// (docs/salesforce-compatibility.md has the sources, and marks the inferred ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStatus {
    Success,
    InvalidPassword,
    PasswordLockout,
    UserInactive,
    UserFrozen,
    SecurityTokenRequired,
    NotApprovedForAccess,
    AppBlocked,
    UsernamePasswordFlowDisabled,
    LoginRateExceeded,
    RestrictedIp,
    RestrictedTime,
}

const STATUSES: [LoginStatus; 12] = [
    LoginStatus::Success,
    LoginStatus::InvalidPassword,
    LoginStatus::PasswordLockout,
    LoginStatus::UserInactive,
    LoginStatus::UserFrozen,
    LoginStatus::SecurityTokenRequired,
    LoginStatus::NotApprovedForAccess,
    LoginStatus::AppBlocked,
    LoginStatus::UsernamePasswordFlowDisabled,
    LoginStatus::LoginRateExceeded,
    LoginStatus::RestrictedIp,
    LoginStatus::RestrictedTime,
];

impl LoginStatus {
    pub fn label(self) -> &'static str {
        match self {
            LoginStatus::Success => "Success",
            LoginStatus::InvalidPassword => "Invalid Password",
            LoginStatus::PasswordLockout => "Password Lockout",
            LoginStatus::UserInactive => "User is Inactive",
            LoginStatus::UserFrozen => "User is Frozen",
            LoginStatus::SecurityTokenRequired => "Failed: API security token required",
            LoginStatus::NotApprovedForAccess => "Failed: Not approved for access",
            LoginStatus::AppBlocked => "Failed: Connected app blocked",
            LoginStatus::UsernamePasswordFlowDisabled => "Username-Password Flow Disabled",
            LoginStatus::LoginRateExceeded => "Login rate exceeded",
            LoginStatus::RestrictedIp => "Restricted IP",
            LoginStatus::RestrictedTime => "Restricted time",
        }
    }

    pub fn parse(s: &str) -> Option<LoginStatus> {
        STATUSES.into_iter().find(|t| t.label() == s)
    }
}

/// One row of Login History.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEvent {
    pub at: Millis,
    pub org_id: SfId,
    pub user_id: SfId,
    pub username: String,
    pub subtype: LoginSubtype,
    pub status: LoginStatus,
    /// The client's address (`X-Forwarded-For` believed only from trusted proxies).
    pub source_ip: Option<IpAddr>,
    /// The connected app; `None` for the login page and for refusals before an app was known.
    pub app_id: Option<SfId>,
    /// The app's name then, or "Browser" for the login page (as Salesforce shows it).
    pub application: String,
    pub browser: String,
    pub platform: String,
    /// The host the login was sent to.
    pub login_url: String,
}

impl LoginEvent {
    pub fn login_type(&self) -> LoginType {
        self.subtype.login_type()
    }
}

/// A refusal's Login History facts, carried by its `OAuthError` until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedLogin {
    pub org_id: SfId,
    pub user_id: SfId,
    pub username: String,
    pub status: LoginStatus,
    pub app: Option<(SfId, String)>,
}

impl RefusedLogin {
    pub fn new(user: &User, status: LoginStatus) -> Self {
        RefusedLogin {
            org_id: user.org_id,
            user_id: user.id,
            username: user.username.clone(),
            status,
            app: None,
        }
    }
}

/// Where a request came from, as Login History records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// The record of a login at `ctx.now` by `user`, through `app` (none: the login page), if
/// Login History is kept.
pub fn recorded(
    ctx: &TokenContext<'_>,
    user: &User,
    app: Option<&ConnectedApp>,
    subtype: LoginSubtype,
    status: LoginStatus,
) -> Option<LoginEvent> {
    ctx.settings
        .login_history
        .then(|| event(ctx, user, app, subtype, status))
}

/// The record of a login at `ctx.now` by `user`, through `app` (none: the login page).
pub fn event(
    ctx: &TokenContext<'_>,
    user: &User,
    app: Option<&ConnectedApp>,
    subtype: LoginSubtype,
    status: LoginStatus,
) -> LoginEvent {
    let app = app.map(|a| (a.id, a.name.clone()));
    build(
        ctx,
        user.org_id,
        user.id,
        user.username.clone(),
        app,
        subtype,
        status,
    )
}

fn build(
    ctx: &TokenContext<'_>,
    org_id: SfId,
    user_id: SfId,
    username: String,
    app: Option<(SfId, String)>,
    subtype: LoginSubtype,
    status: LoginStatus,
) -> LoginEvent {
    let (browser, platform) = browser_and_platform(ctx.caller.user_agent.unwrap_or_default());
    let (app_id, application) = match app {
        Some((id, name)) => (Some(id), name),
        None if subtype == LoginSubtype::UiLogin => (None, "Browser".to_owned()),
        None => (None, String::new()),
    };
    LoginEvent {
        at: ctx.now,
        org_id,
        user_id,
        username,
        subtype,
        status,
        source_ip: ctx.caller.ip,
        app_id,
        application,
        browser: browser.to_owned(),
        platform: platform.to_owned(),
        login_url: login_url(ctx),
    }
}

/// The host the request named, if it is a host name or address, else this server's public
/// host: `Host` is the client's to write, and a row must not carry whatever it wrote.
fn login_url(ctx: &TokenContext<'_>) -> String {
    let plausible = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    };
    if let Some(host) = ctx.host.filter(|h| plausible(h)) {
        return host.to_ascii_lowercase();
    }
    let public = &ctx.settings.public_url;
    let rest = public.split_once("://").map_or(public.as_str(), |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or_default().to_owned()
}

/// The Login History record of a refusal by `subtype`'s flow, if it refused a known user's
/// login (and Login History is kept), for whoever answers the refusal to store.
pub fn refusal(
    ctx: &TokenContext<'_>,
    error: &crate::OAuthError,
    subtype: LoginSubtype,
) -> Option<LoginEvent> {
    let refused = error
        .refused_login()
        .filter(|_| ctx.settings.login_history)?;
    Some(build(
        ctx,
        refused.org_id,
        refused.user_id,
        refused.username.clone(),
        refused.app.clone(),
        subtype,
        refused.status,
    ))
}

/// Salesforce's Browser and Platform columns from a `User-Agent`: the families people log in
/// with, "Unknown" for the rest (API clients: curl, python-requests, jsforce).
pub fn browser_and_platform(user_agent: &str) -> (String, String) {
    (browser(user_agent), platform(user_agent).to_owned())
}

fn browser(ua: &str) -> String {
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    const FAMILIES: [(&str, &str); 6] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("CriOS/", "Chrome"),
        ("Version/", "Safari"),
    ];
    for (marker, name) in FAMILIES {
        if let Some(at) = ua.find(marker) {
            if name == "Safari" && !ua.contains("Safari/") {
                continue;
            }
            let version: String = ua[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return if version.is_empty() {
                name.to_owned()
            } else {
                format!("{name} {version}")
            };
        }
    }
    "Unknown".to_owned()
}

fn platform(ua: &str) -> &'static str {
    const PLATFORMS: [(&str, &str); 7] = [
        ("Windows NT 10", "Windows 10"),
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Android", "Android"),
        ("Mac OS X", "Mac OSX"),
        ("Linux", "Linux"),
    ];
    PLATFORMS
        .into_iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("Unknown", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_platforms_are_named_as_salesforce_names_them() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome 131", "Linux"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
                ("Edge 120", "Windows 10"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                ("Safari 17", "Mac OSX"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                ("Safari 17", "iOS"),
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                ("Firefox 121", "Linux"),
            ),
            ("curl/8.5.0", ("Unknown", "Unknown")),
            ("python-requests/2.31.0", ("Unknown", "Unknown")),
            ("", ("Unknown", "Unknown")),
        ];
        for (ua, (b, p)) in cases {
            assert_eq!(
                browser_and_platform(ua),
                (b.to_owned(), p.to_owned()),
                "{ua}"
            );
        }
    }

    #[test]
    fn labels_read_back() {
        for s in STATUSES {
            assert_eq!(LoginStatus::parse(s.label()), Some(s));
        }
        for s in SUBTYPES {
            assert_eq!(LoginSubtype::parse(s.as_str()), Some(s));
        }
        assert_eq!(LoginStatus::parse("success"), None);
    }
}
