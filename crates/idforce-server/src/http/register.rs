//! `/services/oauth2/register` (RFC 7591) and each registered app's configuration endpoint
//! `/services/oauth2/register/{client_id}` (RFC 7592, an idforce extension): JSON in, JSON out,
//! bearer tokens that are not sessions. The work is `operations::registration`'s.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Outcome, Through, request, respond};
use crate::operations::registration::{Refused, Registrar};
use crate::state::AppState;

/// A registration request: the bearer token and the JSON body, or the answer refusing it.
struct Parsed {
    token: Option<String>,
    body: Value,
    entry: std::sync::Arc<idforce_core::hosts::Entry>,
}

async fn parse(s: &AppState, req: Request, needs_body: bool) -> Result<Parsed, Response> {
    let entry = Through::of(s, req.extensions());
    let (parts, body) = req.into_parts();
    let token = request::bearer(&parts.headers, None);
    let bytes = axum::body::to_bytes(Body::new(body), request::MAX_BODY)
        .await
        .map_err(|_| metadata_refusal("the request body is larger than 64 KiB"))?;
    let body = if needs_body {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Err(metadata_refusal(
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| metadata_refusal("the request body is not JSON"))?
    } else {
        Value::Null
    };
    Ok(Parsed { token, body, entry })
}

fn metadata_refusal(why: &str) -> Response {
    refusal(Refused::Metadata(
        idforce_core::registration::RegistrationError::InvalidClientMetadata(why.into()),
    ))
}

fn registrar<'a>(s: &'a AppState, entry: &'a idforce_core::hosts::Entry) -> Registrar<'a> {
    Registrar {
        store: s.store.as_ref(),
        hasher: &s.hasher,
        secrets: &s.secrets,
        now: s.clock.now(),
        entry,
        development: s.key_sets.development(),
    }
}

/// `POST /services/oauth2/register` with `Authorization: Bearer <initial access token>`.
pub async fn register(State(s): State<AppState>, req: Request) -> Response {
    let p = match parse(&s, req, true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(token) = p.token.as_deref() else {
        return refusal(Refused::Token("no initial access token".into()));
    };
    match registrar(&s, &p.entry).register(token, &p.body).await {
        Ok(answer) => answered(StatusCode::CREATED, &answer),
        Err(e) => refusal(e),
    }
}

/// `GET`, `PUT` and `DELETE /services/oauth2/register/{client_id}` with `Authorization:
/// Bearer <registration access token>`.
pub async fn client(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    // The router also sends HEAD here (with GET): nothing but these three is served.
    if ![Method::GET, Method::PUT, Method::DELETE].contains(&method) {
        let r = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, PUT, DELETE")],
        )
            .into_response();
        return Outcome::with("register", "method_not_allowed").attach(r);
    }
    let p = match parse(&s, req, method == Method::PUT).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(token) = p.token.as_deref() else {
        return refusal(Refused::Token("no registration access token".into()));
    };
    let registrar = registrar(&s, &p.entry);
    let result = match method {
        Method::GET => registrar.read(&client_id, token).await.map(Some),
        Method::PUT => registrar.update(&client_id, token, &p.body).await.map(Some),
        _ => registrar.delete(&client_id, token).await.map(|()| None),
    };
    match result {
        Ok(Some(answer)) => answered(StatusCode::OK, &answer),
        Ok(None) => Outcome::with("register", "ok")
            .attach(respond::no_store(StatusCode::NO_CONTENT.into_response())),
        Err(e) => refusal(e),
    }
}

fn answered(status: StatusCode, body: &Value) -> Response {
    let r = (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response();
    Outcome::with("register", "ok").attach(respond::no_store(r))
}

/// RFC 7591 §3.2.2's 400s; RFC 6750's 401 `invalid_token` (with its `WWW-Authenticate`) for a
/// token that is missing or not one; 503 when the store fails. The reason goes to the log.
fn refusal(e: Refused) -> Response {
    let (status, code, description) = match &e {
        Refused::Token(why) => {
            tracing::info!(request = "registration", cause = %why, "refused");
            (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is missing, invalid or revoked".to_owned(),
            )
        }
        Refused::Metadata(m) => {
            tracing::info!(request = "registration", cause = m.description(), "refused");
            (
                StatusCode::BAD_REQUEST,
                m.code(),
                m.description().to_owned(),
            )
        }
        Refused::Store(why) => {
            tracing::warn!(request = "registration", cause = %why, "store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the store is not available; try again".to_owned(),
            )
        }
    };
    let body = json!({"error": code, "error_description": description});
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    Outcome::with("register", code).attach(respond::no_store(r))
}
