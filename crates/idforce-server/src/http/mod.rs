//! HTTP: routes, and the middleware every request passes (request id, tracing, metrics).

mod browser;
mod device;
mod explain;
mod frontdoor;
mod identity;
mod oauth;
mod oidc;
mod pages;
mod register;
mod report;
pub mod request;
mod respond;
mod rest;
mod setup;
mod soap;

use std::borrow::Cow;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use idforce_core::OAuthError;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Every route path, in one place.
pub mod paths {
    pub const TOKEN: &str = "/services/oauth2/token";
    pub const INTROSPECT: &str = "/services/oauth2/introspect";
    pub const REVOKE: &str = "/services/oauth2/revoke";
    pub const REGISTER: &str = crate::operations::registration::REGISTER_PATH;
    pub const REGISTERED_CLIENT: &str = "/services/oauth2/register/{client_id}";
    pub const IDENTITY: &str = "/id/{org}/{user}";
    pub const DATA: &str = "/services/data";
    pub const DATA_VERSION: &str = "/services/data/{version}";
    pub const SOBJECT: &str = "/services/data/{version}/sobjects/{kind}/{id}";
    pub const HEALTH: &str = "/healthz";
    pub const READY: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    pub const AUTHORIZE: &str = "/services/oauth2/authorize";
    pub const LOGIN: &str = "/";
    pub const APPROVE: &str = "/setup/secur/RemoteAccessAuthorizationPage.apexp";
    pub const LOGOUT: &str = "/secur/logout.jsp";
    pub const SUCCESS: &str = "/services/oauth2/success";
    pub const DEVICE_VERIFICATION: &str = idforce_core::device::VERIFICATION_PATH;
    pub const SOAP_PARTNER: &str = "/services/Soap/u/{version}";
    pub const STYLESHEET: &str = "/assets/idforce.css";
    /// The `picture` and `photos` URLs of userinfo and the identity URL (`…/F`, `…/T`).
    pub const PROFILE_PHOTO: &str = "/profilephoto/{*photo}";
    pub const USERINFO: &str = "/services/oauth2/userinfo";
    pub const JWKS: &str = "/id/keys";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const AUTH_CONFIGURATION: &str = "/.well-known/auth-configuration";
    pub const OIDC_LOGOUT: &str = "/services/auth/idp/oidc/logout";
    pub const FRONTDOOR: &str = "/secur/frontdoor.jsp";
    pub const SINGLE_ACCESS: &str = "/services/oauth2/singleaccess";
}

/// How a request ended, for metrics: set by handlers as a response extension.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub grant: &'static str,
    pub outcome: Cow<'static, str>,
}

impl Outcome {
    pub fn ok(grant: &'static str) -> Outcome {
        Outcome {
            grant,
            outcome: Cow::Borrowed("ok"),
        }
    }
    pub fn err(grant: &'static str, e: &OAuthError) -> Outcome {
        Outcome {
            grant,
            outcome: Cow::Borrowed(e.code.as_str()),
        }
    }
    pub fn with(grant: &'static str, outcome: &str) -> Outcome {
        Outcome {
            grant,
            outcome: Cow::Owned(outcome.to_owned()),
        }
    }
    pub fn attach(self, mut r: Response) -> Response {
        r.extensions_mut().insert(self);
        r
    }

    /// The same, for a failure whose line `report::failure` wrote.
    pub fn attach_reported(self, r: Response, reported: report::Reported) -> Response {
        let mut r = reported.0.clone().attach(self.attach(r));
        r.extensions_mut().insert(reported);
        r
    }
}

/// The whole HTTP service: the routes, wrapped once in the layers every request passes.
///
/// The layers wrap the router, not each route (`Router::layer`): a route's service is cloned
/// for every request, and a route wrapped in five boxed layers cost a dozen allocations a
/// request to clone (docs/performance.md).
pub fn service<B>(
    state: AppState,
) -> impl tower::Service<
    axum::http::Request<B>,
    Response = Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let x_request_id = HeaderName::from_static("x-request-id");
    let routes = routes().with_state(state.clone());
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .map_request(|req: axum::http::Request<B>| req.map(axum::body::Body::new))
        .layer(SetRequestIdLayer::new(x_request_id.clone(), NewRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The path only: query strings can carry tokens (`?oauth_token=`).
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(|r: &axum::http::Response<_>, latency: std::time::Duration, _span: &tracing::Span| {
                    // Refusals at info; successes at debug: a line per token at tens of
                    // thousands of tokens a second costs more than the token (see
                    // docs/performance.md), and /metrics already counts them.
                    // A failure reported with its cause has had its info line (report.rs).
                    let (status, ms) = (r.status().as_u16(), latency.as_secs_f64() * 1000.0);
                    let reported = r.extensions().get::<report::Reported>().is_some();
                    if status >= 400 && !reported {
                        tracing::info!(status, latency_ms = ms, "answered");
                    } else {
                        tracing::debug!(status, latency_ms = ms, "answered");
                    }
                }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(CatchPanicLayer::custom(|_| {
            // A panic is a bug; the client still gets an answer in the OAuth shape.
            let body = r#"{"error":"server_error","error_description":"internal error"}"#;
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), through))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .option_layer(state.explain.then(|| middleware::from_fn(explain::explain)))
        .service(routes)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::TOKEN, any(oauth::token))
        .route(paths::INTROSPECT, any(oauth::introspect))
        .route(paths::REVOKE, any(oauth::revoke))
        .route(paths::REGISTER, axum::routing::post(register::register))
        .route(
            paths::REGISTERED_CLIENT,
            get(register::client)
                .put(register::client)
                .delete(register::client),
        )
        .route(
            paths::IDENTITY,
            get(identity::identity).post(identity::identity),
        )
        .route(paths::DATA, get(rest::versions))
        .route(&format!("{}/", paths::DATA), get(rest::versions))
        .route(paths::DATA_VERSION, get(rest::resources))
        .route(&format!("{}/", paths::DATA_VERSION), get(rest::resources))
        .route(paths::SOBJECT, get(rest::sobject))
        .route(
            paths::AUTHORIZE,
            get(browser::authorize).post(browser::authorize),
        )
        .route(
            paths::LOGIN,
            get(browser::login_form).post(browser::login_submit),
        )
        .route(paths::APPROVE, axum::routing::post(browser::approve))
        .route(paths::LOGOUT, get(browser::logout))
        .route(paths::SUCCESS, get(browser::success))
        .route(paths::SOAP_PARTNER, axum::routing::post(soap::partner))
        .route(
            paths::DEVICE_VERIFICATION,
            get(device::verification_page).post(device::verification_submit),
        )
        .route(paths::STYLESHEET, get(browser::stylesheet))
        .route(paths::PROFILE_PHOTO, get(browser::profile_photo))
        .route(setup::HOME, get(setup::home))
        .route(setup::LOGIN_HISTORY, get(setup::login_history))
        .route(setup::CONNECTED_APPS, get(setup::connected_apps))
        .route(setup::CONNECTED_APP, get(setup::connected_app))
        .route(setup::NEW, get(setup::new_form).post(setup::save_app))
        .route(setup::EDIT, get(setup::edit_form).post(setup::save_app))
        .route(
            setup::POLICIES,
            get(setup::policies_form).post(setup::policies_save),
        )
        .route(
            setup::APP_PROFILES,
            get(setup::profiles_form).post(setup::profiles_save),
        )
        .route(
            setup::APP_USERS,
            get(setup::app_users_form).post(setup::app_users_save),
        )
        .route(
            setup::CONSUMER,
            get(setup::consumer_form).post(setup::consumer_action),
        )
        .route(setup::USERS, get(setup::users))
        .route(setup::AUDIT_TRAIL, get(setup::audit_trail))
        .route(
            setup::USAGE_APP,
            get(setup::oauth_usage_app).post(setup::oauth_usage_revoke),
        )
        .route(
            setup::SESSIONS,
            get(setup::sessions).post(setup::remove_session),
        )
        .route(
            setup::PROFILE_NEW,
            get(setup::profile_new_form).post(setup::create_profile),
        )
        .route(
            setup::PROFILE_PAGE,
            get(setup::profile_page).post(setup::save_profile_access),
        )
        .route(
            setup::USER_NEW,
            get(setup::user_new_form).post(setup::save_user),
        )
        .route(
            setup::USER_EDIT,
            get(setup::user_edit_form).post(setup::save_user),
        )
        .route(
            setup::USER_PAGE,
            get(setup::user_page).post(setup::user_action),
        )
        .route(
            setup::RESET_TOKEN,
            get(setup::reset_token_form).post(setup::reset_token),
        )
        .route(setup::PROFILES, get(setup::profiles))
        .route(
            setup::OAUTH_USAGE,
            get(setup::oauth_usage).post(setup::oauth_usage_action),
        )
        .route(paths::USERINFO, get(oidc::userinfo).post(oidc::userinfo))
        .route(paths::JWKS, get(oidc::jwks))
        .route(paths::OPENID_CONFIGURATION, get(oidc::openid_configuration))
        .route(paths::AUTHORIZATION_SERVER, get(oidc::authorization_server))
        .route(paths::AUTH_CONFIGURATION, get(oidc::auth_configuration))
        .route(
            paths::FRONTDOOR,
            get(frontdoor::frontdoor).post(frontdoor::frontdoor),
        )
        .route(
            paths::SINGLE_ACCESS,
            get(frontdoor::single_access).post(frontdoor::single_access),
        )
        .route(
            paths::OIDC_LOGOUT,
            get(frontdoor::oidc_logout).post(frontdoor::oidc_logout),
        )
        .route(paths::HEALTH, get(|| async { "ok" }))
        .route(paths::READY, get(ready))
        .route(paths::METRICS, get(metrics))
        .fallback(not_found)
}

#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = idforce_core::token::hex(&request_id_number().to_be_bytes());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// A request id only has to tell requests apart in the logs, not be secret: a counter
/// scrambled under a key drawn once per process (a bijection, so no two requests of a
/// process share one; the key keeps processes apart) instead of a `getrandom` call per
/// request.
fn request_id_number() -> u64 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| u64::from_le_bytes(idforce_core::token::random_bytes::<8>()));
    scramble(NEXT.fetch_add(1, Ordering::Relaxed) ^ key)
}

/// SplitMix64's finalizer: an invertible mixing of all 64 bits.
fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a request came through (`hosts.rs`), as a request extension.
#[derive(Clone)]
pub struct Through(pub std::sync::Arc<idforce_core::hosts::Entry>);

impl Through {
    /// The entry a handler was reached through: set by `through` for every request (the login
    /// host's if it was not, as for a service built without it).
    pub fn of(
        s: &AppState,
        extensions: &axum::http::Extensions,
    ) -> std::sync::Arc<idforce_core::hosts::Entry> {
        Through::or_login(extensions.get::<Through>(), s)
    }

    /// `found`'s entry, or the login host's.
    pub fn or_login(
        found: Option<&Through>,
        s: &AppState,
    ) -> std::sync::Arc<idforce_core::hosts::Entry> {
        found.map_or_else(|| s.hosts.login().clone(), |t| t.0.clone())
    }
}

/// Finds the request's entry and, for a site, takes the site's path off before routing: a
/// site answers every route of the login host under its own prefix — but Setup, which is
/// the org's, not a site's.
async fn through(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    // HTTP/2 names the host in the `:authority` pseudo-header, which hyper puts in the URI,
    // not in a `Host` header: give it one, so that every reader of `Host` sees it.
    if !req.headers().contains_key(header::HOST)
        && let Some(authority) = req.uri().authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(header::HOST, host);
    }
    let resolved = match s
        .hosts
        .resolve(
            s.store.as_ref(),
            request::host(req.headers()),
            req.uri().path(),
        )
        .await
    {
        Ok(resolved) => resolved,
        Err(crate::hosts::Unplaced(why)) => {
            tracing::warn!(database = %s.database, cause = %why, "request to another host than the public one, and no map of My Domains yet");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                "store unavailable",
            )
                .into_response();
        }
    };
    if let Some(path) = resolved.path {
        if path.starts_with("/lightning/") {
            return not_found(req).await;
        }
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = match path_and_query.parse() {
            Ok(pq) => Some(pq),
            Err(_) => return not_found(req).await,
        };
        match axum::http::Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return not_found(req).await,
        }
    }
    req.extensions_mut().insert(Through(resolved.entry));
    next.run(req).await
}

async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = endpoint(req.uri().path());
    let start = Instant::now();
    let response = next.run(req).await;
    let (grant, outcome) = match response.extensions().get::<Outcome>() {
        Some(o) => (o.grant, o.outcome.clone()),
        None => ("-", Cow::Owned(response.status().as_u16().to_string())),
    };
    s.metrics
        .observe(endpoint, grant, outcome, start.elapsed().as_secs_f64());
    response
}

/// The metrics' name for the endpoint of `path` (the layers run outside the router, so
/// this is read from the path, in the shape of the routes above).
fn endpoint(path: &str) -> &'static str {
    match path {
        paths::TOKEN => "token",
        paths::INTROSPECT => "introspect",
        paths::REVOKE => "revoke",
        paths::HEALTH | paths::READY => "health",
        paths::METRICS => "metrics",
        paths::AUTHORIZE => "authorize",
        paths::USERINFO => "userinfo",
        paths::JWKS
        | paths::OPENID_CONFIGURATION
        | paths::AUTHORIZATION_SERVER
        | paths::AUTH_CONFIGURATION => "discovery",
        paths::LOGIN
        | paths::APPROVE
        | paths::LOGOUT
        | paths::DEVICE_VERIFICATION
        | paths::FRONTDOOR
        | paths::OIDC_LOGOUT => "pages",
        paths::SINGLE_ACCESS => "singleaccess",
        _ if path.starts_with(paths::DATA) => "rest",
        _ if path.starts_with("/services/Soap/u/") => "soap",
        _ => match path
            .strip_prefix("/id/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((org, user)) if !org.is_empty() && !user.is_empty() && !user.contains('/') => {
                "identity"
            }
            _ => "other",
        },
    }
}

async fn ready(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with(paths::DATA) {
        return rest::not_found_rest(req).await;
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "Not Found",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{endpoint, request_id_number, scramble};

    #[test]
    fn request_ids_do_not_repeat_and_do_not_count_up_visibly() {
        let ids: Vec<u64> = (0..10_000).map(|_| request_id_number()).collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Neighbouring counter values land far apart.
        let close = ids
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 1 << 40)
            .count();
        assert!(close < 10, "{close} consecutive ids were close");
        // A bijection: distinct inputs, distinct outputs, over a stretch of inputs.
        let outs: std::collections::HashSet<_> = (0..100_000u64).map(scramble).collect();
        assert_eq!(outs.len(), 100_000);
    }

    #[test]
    fn endpoints_are_named_from_the_path_as_the_routes_match_it() {
        for (path, name) in [
            ("/services/oauth2/token", "token"),
            ("/services/oauth2/introspect", "introspect"),
            ("/services/oauth2/revoke", "revoke"),
            ("/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS", "identity"),
            ("/id/keys", "discovery"),
            ("/id/00Dxx0000001gPL", "other"),
            ("/id/a/b/c", "other"),
            ("/services/data/v62.0/sobjects/User/005", "rest"),
            ("/services/Soap/u/62.0", "soap"),
            ("/.well-known/openid-configuration", "discovery"),
            ("/", "pages"),
            ("/setup/connect", "pages"),
            ("/readyz", "health"),
            ("/metrics", "metrics"),
            ("/nowhere", "other"),
            ("/services/oauth2/singleaccess", "singleaccess"),
            ("/secur/frontdoor.jsp", "pages"),
            ("/services/auth/idp/oidc/logout", "pages"),
            ("/.well-known/auth-configuration", "discovery"),
        ] {
            assert_eq!(endpoint(path), name, "{path}");
        }
    }
}
