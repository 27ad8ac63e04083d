//! Server-rendered pages: login, approval, errors. No JavaScript; every form carries a CSRF
//! token; every value is HTML-escaped on the way in.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

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

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"/assets/idforce.css\"></head>\
<body><main class=\"card\"><header class=\"brand\" aria-label=\"idforce\"><span class=\"logo\" aria-hidden=\"true\">id</span>force</header>{body}</main></body></html>",
        title = esc(title)
    )
}

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            layout(title, body),
        )
            .into_response(),
    )
}

pub struct LoginForm<'a> {
    pub start_url: &'a str,
    pub username: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

pub fn login(f: &LoginForm<'_>) -> Response {
    let error = f.error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
            esc(e)
        )
    });
    let autofocus_user = if f.username.is_empty() {
        " autofocus"
    } else {
        ""
    };
    let autofocus_pw = if f.username.is_empty() {
        ""
    } else {
        " autofocus"
    };
    let body = format!(
        "<h1>Log in</h1>{error}\
<form method=\"post\" action=\"/\" class=\"stack\">\
<input type=\"hidden\" name=\"startURL\" value=\"{start}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"username\">Username</label>\
<input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\" required value=\"{user}\"{autofocus_user}>\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"pw\" type=\"password\" autocomplete=\"current-password\" required{autofocus_pw}>\
<button type=\"submit\" id=\"Login\" class=\"primary\">Log In</button>\
</form>",
        start = esc(f.start_url),
        csrf = esc(f.csrf),
        user = esc(f.username),
    );
    page(StatusCode::OK, "Login | idforce", &body)
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

pub fn consent(f: &ConsentForm<'_>) -> Response {
    let mut seen = Vec::new();
    let items: String = f
        .scopes
        .iter()
        .map(|s| describe_scope(s))
        .filter(|d| {
            let new = !seen.contains(d);
            seen.push(*d);
            new
        })
        .map(|d| format!("<li>{}</li>", esc(d)))
        .collect();
    let hidden: String = f
        .hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let body = format!(
        "<h1>Allow Access?</h1>\
<p><strong>{app}</strong> is asking to:</p><ul class=\"scopes\">{items}</ul>\
<p class=\"muted\">Signed in as {user}. <a href=\"/secur/logout.jsp\">Not you?</a></p>\
<form method=\"post\" action=\"{action}\" class=\"actions\">\
{hidden}<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"oaapprove-deny\" class=\"secondary\">Deny</button>\
<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"oaapprove\" class=\"primary\" autofocus>Allow</button>\
</form>",
        action = esc(f.action),
        app = esc(f.app_name),
        user = esc(f.username),
        csrf = esc(f.csrf),
    );
    page(StatusCode::OK, "Allow Access? | idforce", &body)
}

pub struct DeviceCodeForm<'a> {
    pub username: &'a str,
    pub user_code: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

/// The device flow's verification page: the user types the code their device shows.
pub fn device_code(f: &DeviceCodeForm<'_>, status: StatusCode) -> Response {
    let error = f.error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
            esc(e)
        )
    });
    let body = format!(
        "<h1>Connect Your Device</h1>{error}\
<p>Enter the code displayed on your device.</p>\
<form method=\"post\" action=\"/setup/connect\" class=\"stack\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"user_code\">Code</label>\
<input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" required value=\"{code}\" autofocus>\
<button type=\"submit\" id=\"connect\" class=\"primary\">Connect</button>\
</form>\
<p class=\"muted\">Signed in as {user}. <a href=\"/secur/logout.jsp\">Not you?</a></p>",
        csrf = esc(f.csrf),
        code = esc(f.user_code),
        user = esc(f.username),
    );
    page(status, "Connect Your Device | idforce", &body)
}

/// After the user's decision on the verification page.
pub fn device_done(allowed: bool) -> Response {
    let body = if allowed {
        "<h1 id=\"device-connected\">Device Connected</h1><p>You can return to your device; it will continue on its own.</p>"
    } else {
        "<h1 id=\"device-denied\">Access Denied</h1><p>Your device was not given access. You can close this window.</p>"
    };
    page(StatusCode::OK, "Connect Your Device | idforce", body)
}

/// The page for errors that must not be redirected (unknown client, bad redirect URI), with
/// Salesforce's text.
pub fn authorize_error(code: &str, description: &str) -> Response {
    let encoded = format!(
        "error={}&error_description={}",
        code,
        description.replace(' ', "%20")
    );
    let body = format!(
        "<h1>Remote Access Error</h1><p role=\"alert\" class=\"error\"><code id=\"error-text\">{}</code></p>\
<p class=\"muted\">The application that sent you here is not set up for this server. Tell its developer.</p>",
        esc(&encoded)
    );
    page(
        StatusCode::BAD_REQUEST,
        "Remote Access Error | idforce",
        &body,
    )
}

pub fn logged_out() -> Response {
    page(
        StatusCode::OK,
        "Logged out | idforce",
        "<h1>You are logged out</h1><p><a href=\"/\">Log in again</a></p>",
    )
}

pub fn success() -> Response {
    page(
        StatusCode::OK,
        "Remote Access Application Authorization | idforce",
        "<h1>Remote Access Application Authorization</h1><p>This window can be closed.</p>",
    )
}
