//! Server-rendered pages: login, approval, errors. Templates in `templates/` (askama: checked
//! at compile time, every value HTML-escaped unless a template says otherwise, and none does).
//! No JavaScript; every form carries a CSRF token.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const STYLESHEET: &str = include_str!("../../assets/idforce.css");

/// Security headers for every page: no framing, no inline script or style, nothing cached.
pub fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A rendered page with the security headers. A template cannot fail to render but through a
/// formatting error of its values, which none of ours has; should one, the answer is a plain 500.
pub(super) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(text) => secure(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                text,
            )
                .into_response(),
        ),
        Err(e) => {
            tracing::error!(cause = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginForm<'a> {
    /// Where the form posts: `/`, or the site's `/<path>/`.
    pub action: &'a str,
    /// The site's name, on a site's login page.
    pub site: Option<&'a str>,
    pub start_url: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

pub fn login(f: &LoginForm<'_>) -> Response {
    html(StatusCode::OK, f)
}

/// Plain words for the scopes an app asks for.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "api" => "Manage user data via APIs",
        "web" => "Manage user data via Web browsers",
        "full" => "Full access",
        "refresh_token" | "offline_access" => "Perform requests at any time",
        "openid" => "Access unique user identifiers",
        "id" | "profile" => "Access the identity URL service",
        "email" => "Access your email address",
        "address" => "Access your address",
        "phone" => "Access your phone number",
        "chatter_api" => "Access Chatter REST API resources",
        "visualforce" => "Access Visualforce applications",
        "custom_permissions" => "Access custom permissions",
        "content" => "Access content resources",
        "lightning" => "Access Lightning applications",
        "wave_api" | "eclair_api" => "Access Analytics REST API resources",
        _ => "Access additional Salesforce services",
    }
}

pub struct ConsentForm<'a> {
    /// Where the decision is posted: the web flow's approval URL or the device page.
    pub action: &'a str,
    pub app_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<&'a str>,
    pub hidden: Vec<(&'a str, String)>,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: &'a str,
    app_name: &'a str,
    username: &'a str,
    /// What the scopes allow, in plain words, each once.
    descriptions: Vec<&'static str>,
    hidden: &'a [(&'a str, String)],
    csrf: &'a str,
}

pub fn consent(f: &ConsentForm<'_>) -> Response {
    let mut descriptions = Vec::new();
    for d in f.scopes.iter().map(|s| describe_scope(s)) {
        if !descriptions.contains(&d) {
            descriptions.push(d);
        }
    }
    let page = ConsentPage {
        action: f.action,
        app_name: f.app_name,
        username: f.username,
        descriptions,
        hidden: &f.hidden,
        csrf: f.csrf,
    };
    html(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "device_code.html")]
pub struct DeviceCodeForm<'a> {
    /// Where the form posts: the verification page, under the site's path on a site.
    pub action: &'a str,
    pub username: &'a str,
    pub user_code: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

/// The device flow's verification page: the user types the code their device shows.
pub fn device_code(f: &DeviceCodeForm<'_>, status: StatusCode) -> Response {
    html(status, f)
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DeviceDone {
    allowed: bool,
}

/// After the user's decision on the verification page.
pub fn device_done(allowed: bool) -> Response {
    html(StatusCode::OK, &DeviceDone { allowed })
}

#[derive(Template)]
#[template(path = "authorize_error.html")]
struct AuthorizeError {
    text: String,
}

/// The page for errors that must not be redirected (unknown client, bad redirect URI), with
/// Salesforce's text.
pub fn authorize_error(code: &str, description: &str) -> Response {
    let text = format!(
        "error={}&error_description={}",
        code,
        description.replace(' ', "%20")
    );
    html(StatusCode::BAD_REQUEST, &AuthorizeError { text })
}

/// A page that says one thing: a title, a heading, a sentence and perhaps a link.
#[derive(Template)]
#[template(path = "notice.html")]
pub struct Notice<'a> {
    pub title: &'a str,
    pub heading: &'a str,
    pub text: &'a str,
    /// The sentence is a refusal: shown as an error, announced to screen readers.
    pub alert: bool,
    pub link: Option<(&'a str, &'a str)>,
}

pub fn notice(status: StatusCode, n: &Notice<'_>) -> Response {
    html(status, n)
}

pub fn logged_out() -> Response {
    notice(
        StatusCode::OK,
        &Notice {
            title: "Logged out",
            heading: "You are logged out",
            text: "Your session has ended.",
            alert: false,
            link: Some(("/", "Log in again")),
        },
    )
}

pub fn success() -> Response {
    notice(
        StatusCode::OK,
        &Notice {
            title: "Remote Access Application Authorization",
            heading: "Remote Access Application Authorization",
            text: "This window can be closed.",
            alert: false,
            link: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a user typed comes back as text, never as markup: in attribute values and in
    /// element content alike.
    #[test]
    fn values_are_escaped_in_attributes_and_text() {
        let hostile = "\"><script>alert(1)</script>";
        let page = LoginForm {
            action: "/",
            site: Some(hostile),
            start_url: "/services/oauth2/authorize?a=1&b=\"2\"",
            username: hostile,
            csrf: "token",
            error: Some("<b>bold</b>"),
        }
        .render()
        .expect("renders");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>bold</b>"), "{page}");
        assert!(!page.contains("value=\"\"><"), "{page}");
        // Control: the page is there, with its form and the username field filled.
        assert!(
            page.contains("<form method=\"post\" action=\"/\""),
            "{page}"
        );
        assert!(page.contains("id=\"username\""), "{page}");
        assert!(page.contains("alert(1)"), "the text itself is kept: {page}");
    }

    /// The approval page echoes the authorize request's parameters in hidden fields: the
    /// likeliest place for markup to slip in.
    #[test]
    fn the_approval_page_escapes_the_parameters_it_carries() {
        let hidden = vec![
            ("state", "\"><img src=x onerror=alert(1)>".to_owned()),
            ("redirect_uri", "https://app.example/cb?a=1&b=2".to_owned()),
        ];
        let response = consent(&ConsentForm {
            action: "/setup/secur/RemoteAccessAuthorizationPage.apexp",
            app_name: "<b>App</b>",
            username: "alice@acme.test",
            scopes: vec!["api"],
            hidden,
            csrf: "token",
        });
        assert_eq!(response.status(), StatusCode::OK);
        let page = ConsentPage {
            action: "/x",
            app_name: "<b>App</b>",
            username: "u",
            descriptions: vec!["Manage user data via APIs"],
            hidden: &[("state", "\"><img src=x onerror=alert(1)>".to_owned())],
            csrf: "t",
        }
        .render()
        .expect("renders");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>App</b>"), "{page}");
        // Control: the hidden field is there, its value kept as text.
        assert!(
            page.contains("<input type=\"hidden\" name=\"state\" value=\""),
            "{page}"
        );
        assert!(page.contains("onerror=alert(1)"), "{page}");
    }
}

/// The page a logged-in user lands on at `/` without a pending request.
#[derive(Template)]
#[template(path = "home.html")]
pub struct Home<'a> {
    pub username: &'a str,
    /// The user may open Setup (System Administrator).
    pub setup: bool,
    pub setup_href: &'a str,
}

pub fn home(h: &Home<'_>) -> Response {
    html(StatusCode::OK, h)
}

#[derive(Template)]
#[template(path = "setup_home.html")]
pub struct SetupHome<'a> {
    pub org_name: &'a str,
    pub username: &'a str,
}

pub fn setup_home(p: &SetupHome<'_>) -> Response {
    html(StatusCode::OK, p)
}

#[derive(Template)]
#[template(path = "setup_login_history.html")]
pub struct SetupLoginHistory<'a> {
    pub org_name: &'a str,
    pub username: &'a str,
    /// The one user whose logins are shown, if only one's.
    pub subject: Option<String>,
    pub download_href: String,
    pub columns: &'a [&'a str],
    pub rows: Vec<[String; 10]>,
    /// The next page's link, when there may be older rows.
    pub older: Option<String>,
}

pub fn setup_login_history(p: &SetupLoginHistory<'_>) -> Response {
    html(StatusCode::OK, p)
}

/// A form posted without its page's CSRF token (expired, or forged): 403, nothing done.
pub fn form_expired(text: &str, link: Option<(&str, &str)>) -> Response {
    notice(
        StatusCode::FORBIDDEN,
        &Notice {
            title: "Request refused",
            heading: "Request refused",
            text,
            alert: true,
            link,
        },
    )
}

/// Salesforce's page for a user whose profile does not allow what they opened.
pub fn insufficient_privileges() -> Response {
    notice(
        StatusCode::FORBIDDEN,
        &Notice {
            title: "Insufficient Privileges",
            heading: "Insufficient Privileges",
            text: "You do not have the level of access necessary to perform the operation you \
                   requested. Please contact the owner of the record or your administrator if \
                   access is necessary.",
            alert: true,
            link: Some(("/", "Home")),
        },
    )
}

/// A scope as Salesforce's "Selected OAuth Scopes" lists it: what it allows, then its names.
pub fn scope_label(scope: &str) -> String {
    match scope {
        "refresh_token" | "offline_access" => {
            "Perform requests at any time (refresh_token, offline_access)".to_owned()
        }
        other => format!("{} ({other})", describe_scope(other)),
    }
}
