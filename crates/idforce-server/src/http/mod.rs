//! HTTP: routes, and the middleware every request passes (request id, tracing, metrics).

mod browser;
mod device;
mod identity;
mod oauth;
mod oidc;
mod pages;
pub mod request;
mod respond;
mod rest;
mod soap;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use idforce_core::OAuthError;
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
    pub const USERINFO: &str = "/services/oauth2/userinfo";
    pub const JWKS: &str = "/id/keys";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
}

/// How a request ended, for metrics: set by handlers as a response extension.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub grant: &'static str,
    pub outcome: String,
}

impl Outcome {
    pub fn ok(grant: &'static str) -> Outcome {
        Outcome {
            grant,
            outcome: "ok".into(),
        }
    }
    pub fn err(grant: &'static str, e: &OAuthError) -> Outcome {
        Outcome {
            grant,
            outcome: e.code.as_str().into(),
        }
    }
    pub fn with(grant: &'static str, outcome: &str) -> Outcome {
        Outcome {
            grant,
            outcome: outcome.into(),
        }
    }
    pub fn attach(self, mut r: Response) -> Response {
        r.extensions_mut().insert(self);
        r
    }
}

pub fn router(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route(paths::TOKEN, any(oauth::token))
        .route(paths::INTROSPECT, any(oauth::introspect))
        .route(paths::REVOKE, any(oauth::revoke))
        .route(paths::IDENTITY, get(identity::identity).post(identity::identity))
        .route(paths::DATA, get(rest::versions))
        .route(&format!("{}/", paths::DATA), get(rest::versions))
        .route(paths::DATA_VERSION, get(rest::resources))
        .route(&format!("{}/", paths::DATA_VERSION), get(rest::resources))
        .route(paths::SOBJECT, get(rest::sobject))
        .route(paths::AUTHORIZE, get(browser::authorize).post(browser::authorize))
        .route(paths::LOGIN, get(browser::login_form).post(browser::login_submit))
        .route(paths::APPROVE, axum::routing::post(browser::approve))
        .route(paths::LOGOUT, get(browser::logout))
        .route(paths::SUCCESS, get(browser::success))
        .route(paths::SOAP_PARTNER, axum::routing::post(soap::partner))
        .route(
            paths::DEVICE_VERIFICATION,
            get(device::verification_page).post(device::verification_submit),
        )
        .route(paths::STYLESHEET, get(browser::stylesheet))
        .route(paths::USERINFO, get(oidc::userinfo).post(oidc::userinfo))
        .route(paths::JWKS, get(oidc::jwks))
        .route(paths::OPENID_CONFIGURATION, get(oidc::openid_configuration))
        .route(paths::AUTHORIZATION_SERVER, get(oidc::authorization_server))
        .route(paths::HEALTH, get(|| async { "ok" }))
        .route(paths::READY, get(ready))
        .route(paths::METRICS, get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(CatchPanicLayer::custom(|_| {
            // A panic is a bug; the client still gets an answer in the OAuth shape.
            let body = r#"{"error":"server_error","error_description":"internal error"}"#;
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The path only: query strings can carry tokens (`?oauth_token=`).
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_request(())
                .on_response(|r: &Response, latency: std::time::Duration, _span: &tracing::Span| {
                    // Refusals at info; successes at debug: a line per token at tens of
                    // thousands of tokens a second costs more than the token (see
                    // docs/performance.md), and /metrics already counts them.
                    let (status, ms) = (r.status().as_u16(), latency.as_secs_f64() * 1000.0);
                    if status >= 400 {
                        tracing::info!(status, latency_ms = ms, "answered");
                    } else {
                        tracing::debug!(status, latency_ms = ms, "answered");
                    }
                }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, NewRequestId))
        .with_state(state)
}

#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let bytes = idforce_core::token::random_bytes::<8>();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        HeaderValue::from_str(&hex).ok().map(RequestId::new)
    }
}

async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(paths::TOKEN) => "token",
        Some(paths::INTROSPECT) => "introspect",
        Some(paths::REVOKE) => "revoke",
        Some(paths::IDENTITY) => "identity",
        Some(p) if p.starts_with(paths::DATA) => "rest",
        Some(paths::HEALTH) | Some(paths::READY) => "health",
        Some(paths::METRICS) => "metrics",
        Some(paths::AUTHORIZE) => "authorize",
        Some(paths::USERINFO) => "userinfo",
        Some(paths::SOAP_PARTNER) => "soap",
        Some(paths::JWKS)
        | Some(paths::OPENID_CONFIGURATION)
        | Some(paths::AUTHORIZATION_SERVER) => "discovery",
        Some(paths::LOGIN)
        | Some(paths::APPROVE)
        | Some(paths::LOGOUT)
        | Some(paths::DEVICE_VERIFICATION) => "pages",
        _ => "other",
    };
    let start = Instant::now();
    let response = next.run(req).await;
    let (grant, outcome) = match response.extensions().get::<Outcome>() {
        Some(o) => (o.grant, o.outcome.clone()),
        None => ("-", response.status().as_u16().to_string()),
    };
    s.metrics
        .observe(endpoint, grant, &outcome, start.elapsed().as_secs_f64());
    response
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
