//! OpenID Connect endpoints: discovery (OIDC Discovery 1.0 and RFC 8414), the JWKS, userinfo.
//! Discovery is generated from `paths`, so a route and its advertised URL cannot drift apart.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::{oidc, scope, session};
use serde_json::{Value, json};

use super::paths;
use super::report::{self, Reason};
use super::request::{self, bearer};
use super::{Outcome, Through};
use crate::state::AppState;
use idforce_core::hosts::Entry;

fn json_response(v: &Value, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        v.to_string(),
    )
        .into_response()
}

const CLAIMS: &[&str] = &[
    "active",
    "address",
    "email",
    "email_verified",
    "family_name",
    "given_name",
    "is_app_installed",
    "language",
    "locale",
    "name",
    "nickname",
    "organization_id",
    "phone_number",
    "phone_number_verified",
    "photos",
    "picture",
    "preferred_username",
    "profile",
    "sub",
    "updated_at",
    "urls",
    "user_id",
    "user_type",
    "zoneinfo",
];

/// The endpoints both discovery documents share.
fn endpoints(base: &str) -> serde_json::Map<String, Value> {
    let at = |p: &str| Value::from(format!("{base}{p}"));
    let mut m = serde_json::Map::new();
    m.insert("issuer".into(), Value::from(base));
    m.insert("authorization_endpoint".into(), at(paths::AUTHORIZE));
    m.insert("token_endpoint".into(), at(paths::TOKEN));
    m.insert("revocation_endpoint".into(), at(paths::REVOKE));
    m.insert("userinfo_endpoint".into(), at(paths::USERINFO));
    m.insert("jwks_uri".into(), at(paths::JWKS));
    m.insert("introspection_endpoint".into(), at(paths::INTROSPECT));
    m.insert("registration_endpoint".into(), at(paths::REGISTER));
    m.insert("scopes_supported".into(), json!(scope::KNOWN));
    m.insert(
        "response_types_supported".into(),
        json!(["code", "token", "token id_token"]),
    );
    m.insert("subject_types_supported".into(), json!(["public"]));
    m.insert(
        "id_token_signing_alg_values_supported".into(),
        json!(["RS256"]),
    );
    m.insert(
        "display_values_supported".into(),
        json!(["page", "popup", "touch"]),
    );
    m.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!([
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt"
        ]),
    );
    m.insert("claims_supported".into(), json!(CLAIMS));
    m
}

/// The discovery document of the entry the request came through: the login host's, a My
/// Domain's or a site's, each its own issuer. A My Domain and a site advertise OIDC logout, as
/// Salesforce's do; the login host does not.
fn discovery(entry: &Entry) -> serde_json::Map<String, Value> {
    let mut m = endpoints(&entry.base_url);
    if entry.org.is_some() {
        m.insert(
            "end_session_endpoint".into(),
            Value::from(format!("{}{}", entry.base_url, paths::OIDC_LOGOUT)),
        );
        m.insert("frontchannel_logout_supported".into(), json!(true));
        m.insert("frontchannel_logout_session_supported".into(), json!(false));
    }
    m
}

pub async fn openid_configuration(State(s): State<AppState>, req: Request) -> Response {
    let entry = Through::of(&s, req.extensions());
    Outcome::ok("-").attach(json_response(
        &Value::Object(discovery(&entry)),
        "public, max-age=3600",
    ))
}

/// `/.well-known/auth-configuration`: how to log in here, in Salesforce's shape (read by the
/// Mobile SDK and Salesforce's login widget). Every key is always present, as Salesforce's
/// are; a plain My Domain has no `LoginPage`, a site and the login host have theirs. The login
/// host, shared by every org, has no `OrgId` (Salesforce's serves none of this: an
/// extension).
pub async fn auth_configuration(State(s): State<AppState>, req: Request) -> Response {
    let entry = Through::of(&s, req.extensions());
    let login_page = if entry.org.is_none() || entry.site.is_some() {
        json!({
            "LoginPageUrl": format!("{}/", entry.base_url),
            "LogoUrl": null,
            "BackgroundColor": "#B1BAC1",
            "PrimaryColor": "#0070D2",
            "UsernamePasswordEnabled": true,
            "SelfRegistrationEnabled": false,
            "SelfRegistrationUrl": null,
            "ForgotPasswordUrl": null,
        })
    } else {
        Value::Null
    };
    let doc = json!({
        "OrgId": entry.org.as_ref().map(|o| o.id.as15().to_owned()),
        "Url": entry.base_url,
        "MobileSDK": {
            "UseiOSNativeBrowserForAuthentication": false,
            "UseAndroidNativeBrowserForAuthentication": false,
            "shareBrowserSessionIOS": false,
            "shareBrowserSessionAndroid": false,
        },
        "LoginPage": login_page,
        "SamlProviders": [],
        "AuthProviders": [],
        "CertificateLogin": null,
        "LoginPageType": "standard",
        "LoginPageTypeConfigs": {},
    });
    Outcome::ok("-").attach(json_response(&doc, "public, max-age=300"))
}

/// RFC 8414 metadata: the same, plus what an OAuth-only client looks for.
pub async fn authorization_server(State(s): State<AppState>, req: Request) -> Response {
    let mut m = discovery(&Through::of(&s, req.extensions()));
    m.insert(
        "grant_types_supported".into(),
        json!([
            "authorization_code",
            "implicit",
            "refresh_token",
            "password",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:device_code",
            "device",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ]),
    );
    m.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    m.insert(
        "introspection_endpoint_auth_methods_supported".into(),
        json!([
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt"
        ]),
    );
    m.insert(
        "revocation_endpoint_auth_methods_supported".into(),
        json!(["none"]),
    );
    Outcome::ok("-").attach(json_response(&Value::Object(m), "public, max-age=3600"))
}

/// The JWKS. Cached for five minutes: after a rotation the new key is published at once and
/// the old one stays until its tokens have expired, so a cached copy never lacks a key in use
/// for longer than that.
pub async fn jwks(State(s): State<AppState>) -> Response {
    let ring = s.keys.current(s.clock.now()).await;
    Outcome::ok("-").attach(json_response(&ring.jwks(), "public, max-age=300"))
}

fn bad_token() -> Response {
    Outcome::with("-", "Bad_OAuth_Token").attach(
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
            "Bad_OAuth_Token",
        )
            .into_response(),
    )
}

/// `GET`/`POST /services/oauth2/userinfo` with a Bearer header, `oauth_token` or (POST) a
/// form `access_token`.
pub async fn userinfo(State(s): State<AppState>, req: Request) -> Response {
    let query = req.uri().query().map(str::to_owned);
    let headers = req.headers().clone();
    let form = request::read(req).await;
    let token = bearer(&headers, query.as_deref())
        .or_else(|| form.params.get("access_token").map(str::to_owned));
    let Some(token) = token else {
        return report::refused_bearer(&s, None, bad_token()).await;
    };
    let now = s.clock.now();
    let Ok(Some(sess)) = session::use_access_token(s.store.as_ref(), &s.hasher, &token, now).await
    else {
        return report::refused_bearer(&s, Some(&token), bad_token()).await;
    };
    if !session::still_allowed(s.store.as_ref(), &sess)
        .await
        .unwrap_or(false)
    {
        let why = "the session's user is frozen or deactivated, or its app blocked";
        return Reason::new(why).attach(bad_token());
    }
    if let Some(entry) = form.entry()
        && !entry.admits(&sess.org_id)
    {
        let why = format!(
            "the token is org {}'s, not {}'s",
            sess.org_id, entry.base_url
        );
        return Reason::new(why).attach(bad_token());
    }
    let (Ok(Some(org)), Ok(Some(user))) = (
        s.store.org(&sess.org_id).await,
        s.store.user(&sess.user_id).await,
    ) else {
        return Reason::new("the session's org or user is gone, or the store failed")
            .attach(bad_token());
    };
    if !user.may_use_tokens() {
        return Reason::new(format!("user {} is deactivated or frozen", user.id))
            .attach(bad_token());
    }
    let doc = oidc::userinfo(&s.settings, &org, &user, &sess.scopes);
    Outcome::ok("-").attach(super::rest::json(StatusCode::OK, &doc, &headers))
}
