//! Dynamic client registration (RFC 7591), as Salesforce offers it at
//! `/services/oauth2/register`: a parent connected app's initial access token lets a client
//! register itself as a new connected app of the parent's org. This module reads the metadata a
//! client sends, checks it against what the parent may hand on, and says what the registered
//! app looks like on the wire; storing it and the tokens that guard it is the server's part.
//!
//! Reading, updating and deleting a registration (RFC 7592) with its registration access
//! token is an idforce extension: Salesforce documents none of it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::authorize::is_callback_url;
use crate::jwks::JwkSet;
use crate::model::ConnectedApp;
use crate::scope::Scopes;
use crate::sfid::SfId;
use crate::token::Digest;

/// How an app came to be registered, and what it registered with.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The app whose initial access token registered it: it may introspect this app's tokens.
    pub parent: SfId,
    /// When, in seconds since the epoch (`client_id_issued_at`).
    pub issued_at: i64,
    /// Keyed digest of the registration access token (RFC 7592); `None` once deregistered.
    pub access_token: Option<Digest>,
    pub metadata: ClientMetadata,
}

impl Registration {
    /// As stored and exported: the parent's id, when, the registration access token's digest
    /// (hex) and the metadata.
    pub fn to_json(&self) -> Value {
        json!({
            "parent": self.parent.as15(),
            "issued_at": self.issued_at,
            "access_token": self.access_token.map(|d| crate::token::hex(&d)),
            "metadata": self.metadata,
        })
    }

    pub fn from_json(v: &Value) -> Option<Registration> {
        let access_token = match v.get("access_token").and_then(Value::as_str) {
            Some(h) => Some(unhex(h)?),
            None => None,
        };
        Some(Registration {
            parent: SfId::parse(v.get("parent")?.as_str()?).ok()?,
            issued_at: v.get("issued_at")?.as_i64()?,
            access_token,
            metadata: serde_json::from_value(v.get("metadata")?.clone()).ok()?,
        })
    }
}

fn unhex(h: &str) -> Option<Digest> {
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<_>>()?;
    Digest::try_from(bytes.as_slice()).ok()
}

/// The RFC 7591 metadata kept as registered; the rest (scope, keys) lives on the app itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub application_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

/// RFC 7591 §3.2.2's errors, answered with status 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRedirectUri(d)
            | RegistrationError::InvalidClientMetadata(d) => d,
        }
    }
}

fn metadata_error(why: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(why.into())
}

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const IMPLICIT: &str = "implicit";
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Grants a registered app may name. Client credentials and JWT bearer are left out: the one
/// runs as a user only an admin may choose, the other needs a certificate an admin uploads.
const GRANT_TYPES: &[&str] = &[
    AUTHORIZATION_CODE,
    IMPLICIT,
    "refresh_token",
    "password",
    DEVICE_CODE,
];
const ADMIN_ONLY_GRANTS: &[&str] = &[
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
];
const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// The most redirect URIs or contacts a registration may list.
const MAX_LIST: usize = 32;
const MAX_NAME: usize = 80;

/// A registration request, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    pub metadata: ClientMetadata,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Scopes,
    /// The JWK Set as registered (JSON text), checked to hold a usable key.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// What an update request (RFC 7592) says its client is; a registration names none.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl Requested {
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == "none"
    }

    /// Whether the client authenticates with a consumer secret (so one is minted for it).
    pub fn uses_secret(&self) -> bool {
        method_uses_secret(&self.metadata.token_endpoint_auth_method)
    }
}

/// `client_secret_basic` and `client_secret_post`: the methods a consumer secret serves.
pub fn method_uses_secret(method: &str) -> bool {
    method.starts_with("client_secret_")
}

/// Whether a registered app authenticates with `private_key_jwt` alone: it has no secret, and
/// its client id without an assertion proves nothing.
pub fn requires_client_assertion(app: &ConnectedApp) -> bool {
    app.registration
        .as_ref()
        .is_some_and(|r| r.metadata.token_endpoint_auth_method == "private_key_jwt")
}

fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, RegistrationError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(metadata_error(format!("{name} must be a string"))),
    }
}

fn list(body: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, RegistrationError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() > MAX_LIST => Err(metadata_error(format!(
            "{name} lists {} values (at most {MAX_LIST})",
            items.len()
        ))),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| metadata_error(format!("{name} must be an array of strings"))),
        Some(_) => Err(metadata_error(format!(
            "{name} must be an array of strings"
        ))),
    }
}

/// A URL shown to users or fetched by this server: absolute http(s), no spaces.
fn web_url(body: &Map<String, Value>, name: &str) -> Result<Option<String>, RegistrationError> {
    let url = text(body, name)?;
    if let Some(u) = &url {
        let web = (u.starts_with("https://") || u.starts_with("http://"))
            && crate::hosts::host_of_url(u).is_some()
            && !u.chars().any(char::is_whitespace);
        if !web {
            return Err(metadata_error(format!(
                "{name} {u:?} is not an http(s) URL"
            )));
        }
    }
    Ok(url)
}

/// Whether a `jwks_uri` may be fetched: https, or plain http to this machine (a development
/// set-up; the fetcher allows it only on a development server). A URL with user information
/// (`user@host`) is refused: parsers disagree on which host such a URL names.
pub fn is_fetchable_jwks_uri(uri: &str) -> bool {
    let (secure, rest) = match (uri.strip_prefix("https://"), uri.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.contains(['@', '\\', '%'])
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    if secure {
        return crate::hosts::host_of_url(uri).is_some();
    }
    is_loopback_http(uri)
}

/// A plain-http URL to this machine (`localhost`, `127.0.0.1`, `[::1]`).
pub fn is_loopback_http(uri: &str) -> bool {
    uri.strip_prefix("http://").is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return false;
        }
        let name = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.split(':').next().unwrap_or(""),
        };
        matches!(name, "localhost" | "127.0.0.1" | "::1")
    })
}

/// Reads a registration (or RFC 7592 update) request's JSON body. What the parent may hand on
/// bounds it: the registered app's scopes are the parent's unless the request asks for fewer,
/// and never more. Unknown metadata is ignored (RFC 7591 §2).
pub fn read(body: &Value, parent: &ConnectedApp) -> Result<Requested, RegistrationError> {
    let body = body
        .as_object()
        .ok_or_else(|| metadata_error("the request body must be a JSON object"))?;
    let grant_types = list(body, "grant_types")?.unwrap_or_else(|| vec![AUTHORIZATION_CODE.into()]);
    for g in &grant_types {
        if ADMIN_ONLY_GRANTS.contains(&g.as_str()) {
            return Err(metadata_error(format!(
                "grant type {g} cannot be registered: an admin enables it in Setup"
            )));
        }
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(metadata_error(format!("unsupported grant type {g}")));
        }
    }
    let redirecting = grant_types
        .iter()
        .any(|g| g == AUTHORIZATION_CODE || g == IMPLICIT);
    let response_types = list(body, "response_types")?.unwrap_or_else(|| {
        if grant_types.iter().any(|g| g == AUTHORIZATION_CODE) {
            vec!["code".into()]
        } else {
            Vec::new()
        }
    });
    for r in &response_types {
        let needs = match r.as_str() {
            "code" => AUTHORIZATION_CODE,
            "token" | "id_token" | "token id_token" | "id_token token" => IMPLICIT,
            other => return Err(metadata_error(format!("unsupported response type {other}"))),
        };
        if !grant_types.iter().any(|g| g == needs) {
            return Err(metadata_error(format!(
                "response type {r} needs the {needs} grant type"
            )));
        }
    }
    let redirect_uris = list(body, "redirect_uris")?.unwrap_or_default();
    if let Some(bad) = redirect_uris.iter().find(|u| !is_callback_url(u)) {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "{bad:?} is not an absolute URL without a fragment"
        )));
    }
    if redirecting && redirect_uris.is_empty() {
        return Err(RegistrationError::InvalidRedirectUri(
            "redirect_uris is required for the authorization_code and implicit grant types".into(),
        ));
    }
    let post_logout_redirect_uris = list(body, "post_logout_redirect_uris")?.unwrap_or_default();
    if let Some(bad) = post_logout_redirect_uris
        .iter()
        .find(|u| !is_callback_url(u))
    {
        return Err(metadata_error(format!(
            "post_logout_redirect_uris: {bad:?} is not an absolute URL without a fragment"
        )));
    }
    let method =
        text(body, "token_endpoint_auth_method")?.unwrap_or_else(|| "client_secret_basic".into());
    if !AUTH_METHODS.contains(&method.as_str()) {
        return Err(metadata_error(format!(
            "unsupported token_endpoint_auth_method {method}"
        )));
    }
    let jwks = match body.get("jwks") {
        None | Some(Value::Null) => None,
        Some(set) => {
            let keys = JwkSet::parse(set).map_err(|e| metadata_error(format!("jwks: {e}")))?;
            if !keys.has(crate::jwks::Alg::Rs256) {
                return Err(metadata_error(
                    "jwks: no RSA signing key (client assertions are signed with RS256)",
                ));
            }
            Some(set.to_string())
        }
    };
    let jwks_uri = web_url(body, "jwks_uri")?;
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(metadata_error("jwks and jwks_uri must not both be given"));
    }
    if let Some(uri) = &jwks_uri
        && !is_fetchable_jwks_uri(uri)
    {
        return Err(metadata_error(format!(
            "jwks_uri {uri:?} must be https (or http to localhost)"
        )));
    }
    if method == "private_key_jwt" && jwks.is_none() && jwks_uri.is_none() {
        return Err(metadata_error(
            "private_key_jwt needs the client's public keys: jwks or jwks_uri",
        ));
    }
    let scopes = match text(body, "scope")? {
        None => parent.scopes.clone(),
        Some(s) => {
            let asked = Scopes::parse(&s)
                .map_err(|_| metadata_error(format!("scope {s:?} names an unknown scope")))?;
            if let Some(beyond) = asked.iter().find(|s| !parent.scopes.allows(s)) {
                return Err(metadata_error(format!(
                    "scope {beyond} is not one the registering app may hand on"
                )));
            }
            asked
        }
    };
    let application_type = text(body, "application_type")?.unwrap_or_else(|| "web".into());
    if application_type != "web" && application_type != "native" {
        return Err(metadata_error(format!(
            "application_type {application_type} is neither web nor native"
        )));
    }
    let contacts = list(body, "contacts")?.unwrap_or_default();
    let client_name = text(body, "client_name")?.unwrap_or_else(|| "Registered client".into());
    if client_name.chars().count() > MAX_NAME {
        return Err(metadata_error(format!(
            "client_name is longer than {MAX_NAME} characters"
        )));
    }
    Ok(Requested {
        metadata: ClientMetadata {
            client_name,
            grant_types,
            response_types,
            token_endpoint_auth_method: method,
            application_type,
            contacts,
            client_uri: web_url(body, "client_uri")?,
            logo_uri: web_url(body, "logo_uri")?,
            tos_uri: web_url(body, "tos_uri")?,
            policy_uri: web_url(body, "policy_uri")?,
            software_id: text(body, "software_id")?,
            software_version: text(body, "software_version")?,
        },
        redirect_uris,
        post_logout_redirect_uris,
        scopes,
        jwks,
        jwks_uri,
        client_id: text(body, "client_id")?,
        client_secret: text(body, "client_secret")?,
    })
}

/// Gives `app` what the request registered: the settings Setup would show for it. A public
/// client (`none`) has no secret and must use PKCE; the device flow is on only when asked for.
pub fn apply(app: &mut ConnectedApp, req: &Requested) {
    app.callback_urls = req.redirect_uris.clone();
    app.post_logout_redirect_uris = req.post_logout_redirect_uris.clone();
    app.scopes = req.scopes.clone();
    app.jwks = req.jwks.clone();
    app.jwks_uri = req.jwks_uri.clone();
    app.device_flow = req.metadata.grant_types.iter().any(|g| g == DEVICE_CODE);
    app.require_pkce = req.is_public();
    app.contact_email = req
        .metadata
        .contacts
        .iter()
        .find(|c| c.contains('@') && !c.chars().any(char::is_whitespace))
        .cloned()
        .unwrap_or_default();
    if let Some(r) = &mut app.registration {
        r.metadata = req.metadata.clone();
    }
}

/// The registration as RFC 7591 §3.2.1 answers it (and RFC 7592's read and update do):
/// the registered metadata, with the credentials given when there are any to give.
pub fn answer(
    app: &ConnectedApp,
    registration: &Registration,
    client_secret: Option<&str>,
    registration_access_token: Option<&str>,
    registration_client_uri: &str,
) -> Value {
    let m = &registration.metadata;
    let mut out = json!({
        "client_id": app.client_id,
        "client_id_issued_at": registration.issued_at,
        "client_name": m.client_name,
        "redirect_uris": app.callback_urls,
        "grant_types": m.grant_types,
        "response_types": m.response_types,
        "token_endpoint_auth_method": m.token_endpoint_auth_method,
        "application_type": m.application_type,
        "scope": app.scopes.to_string(),
        "registration_client_uri": registration_client_uri,
    });
    let o = out.as_object_mut().expect("an object");
    if let Some(secret) = client_secret {
        o.insert("client_secret".into(), secret.into());
        // Consumer secrets do not expire.
        o.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(token) = registration_access_token {
        o.insert("registration_access_token".into(), token.into());
    }
    if !app.post_logout_redirect_uris.is_empty() {
        o.insert(
            "post_logout_redirect_uris".into(),
            json!(app.post_logout_redirect_uris),
        );
    }
    if let Some(set) = app
        .jwks
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        o.insert("jwks".into(), set);
    }
    if let Some(uri) = &app.jwks_uri {
        o.insert("jwks_uri".into(), uri.as_str().into());
    }
    if let Value::Object(extra) = serde_json::to_value(m).unwrap_or(Value::Null) {
        for (k, v) in extra {
            o.entry(k).or_insert(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfid::{SfId, prefix};

    fn parent() -> ConnectedApp {
        ConnectedApp::new(
            SfId::mint(prefix::CONNECTED_APP, 1),
            SfId::mint(prefix::ORG, 1),
            "Parent".into(),
            "parent".into(),
            Scopes::parse("api refresh_token openid").unwrap(),
        )
    }

    fn refused(body: Value) -> RegistrationError {
        read(&body, &parent()).unwrap_err()
    }

    #[test]
    fn defaults_follow_rfc_7591_and_the_parent() {
        let r = read(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &parent(),
        )
        .unwrap();
        assert_eq!(r.metadata.grant_types, ["authorization_code"]);
        assert_eq!(r.metadata.response_types, ["code"]);
        assert_eq!(r.metadata.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(r.scopes.to_string(), "api refresh_token openid");
        assert!(!r.is_public());
    }

    #[test]
    fn the_postman_collections_request_is_accepted() {
        let body = json!({
            "redirect_uris": ["http://localhost"],
            "response_types": ["code", "token", "id_token"],
            "grant_types": ["authorization_code", "implicit", "refresh_token"],
            "application_type": "web",
            "contacts": ["abc@sf.com", "ve7jtb@example.org"],
            "client_name": "Example Olivier"
        });
        let r = read(&body, &parent()).unwrap();
        let mut app = parent();
        apply(&mut app, &r);
        assert_eq!(app.contact_email, "abc@sf.com");
        assert_eq!(app.callback_urls, ["http://localhost"]);
    }

    #[test]
    fn refusals_name_rfc_7591_errors() {
        let cases = [
            (
                json!({"redirect_uris": ["https://a.example/cb#frag"]}),
                "invalid_redirect_uri",
            ),
            (json!({}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "response_types": ["code"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "scope": "full"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "scope": "nonsense"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "token_endpoint_auth_method": "private_key_jwt"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "jwks_uri": "http://keys.example/jwks"}),
                "invalid_client_metadata",
            ),
            (
                json!({"grant_types": ["password"], "token_endpoint_auth_method": "tls_client_auth"}),
                "invalid_client_metadata",
            ),
            (json!([1, 2]), "invalid_client_metadata"),
            (
                json!({"grant_types": ["password"], "token_endpoint_auth_method": "private_key_jwt",
                       "jwks": {"keys": [{"kty": "EC", "crv": "P-256",
                                          "x": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
                                          "y": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"}]}}),
                "invalid_client_metadata",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(refused(body.clone()).code(), code, "{body}");
        }
        // Control: a password-only client with a subset of the parent's scopes registers.
        let ok = read(
            &json!({"grant_types": ["password"], "scope": "api"}),
            &parent(),
        )
        .unwrap();
        assert_eq!(ok.scopes.to_string(), "api");
        assert!(ok.metadata.response_types.is_empty());
    }

    #[test]
    fn jwks_uri_must_be_https_or_loopback() {
        for good in [
            "https://keys.example/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/k",
            "http://[::1]:9/k",
        ] {
            assert!(is_fetchable_jwks_uri(good), "{good}");
        }
        for bad in [
            "http://keys.example/jwks",
            "http://127.0.0.1.example/k",
            "ftp://localhost/k",
            "https://",
        ] {
            assert!(!is_fetchable_jwks_uri(bad), "{bad}");
        }
    }

    #[test]
    fn a_public_client_must_use_pkce_and_device_flow_follows_its_grant() {
        let r = read(
            &json!({"grant_types": [DEVICE_CODE, "refresh_token"], "token_endpoint_auth_method": "none"}),
            &parent(),
        )
        .unwrap();
        let mut app = parent();
        app.device_flow = false;
        apply(&mut app, &r);
        assert!(app.require_pkce && app.device_flow);
    }
}
