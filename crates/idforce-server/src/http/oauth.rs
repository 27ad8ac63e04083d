//! `/services/oauth2/token`, `/introspect` and `/revoke`: thin handlers over
//! `idforce_core`'s grants, introspection and revocation.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::grant::{self, GrantType};
use idforce_core::login_history::LoginSubtype;
use idforce_core::wire::ClientCredentials;
use idforce_core::{OAuthError, device, introspect, revoke};

use super::request;
use super::respond::{self, Format};
use super::{Outcome, report};
use crate::state::AppState;

pub async fn token(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let ring = s.keys.current(s.clock.now()).await;
    let format = Format::of(&req.params, &req.headers);
    let grant_label = if is_device_authorization(&req.params) {
        "device"
    } else {
        grant_type(&req.params).map_or("other", GrantType::label)
    };
    // A GET is usually a POST that an http→https redirect turned into one (spec §2).
    let result = if req.method != Method::POST {
        Err(OAuthError::unsupported_grant_type())
    } else {
        match ClientCredentials::from_request(&req.params, req.basic()) {
            Ok(client) => {
                let ctx = s.token_context(&req.headers, req.peer, &ring, req.entry());
                if is_device_authorization(&req.params) {
                    if let Err(response) = device_throttle(&s, &ctx, &client, format).await {
                        return response;
                    }
                    device::authorize(&ctx, &req.params, &client)
                        .await
                        .map(|d| (GrantType::Device, Issued::DeviceCodes(d)))
                } else {
                    let result = grant::exchange(&ctx, &req.params, &client).await;
                    if let (Err(e), Some(g)) = (&result, grant_type(&req.params)) {
                        report::record_refusal(&s, &ctx, e, LoginSubtype::of_grant(g)).await;
                    }
                    result.map(|(g, t)| (g, Issued::Granted(t)))
                }
            }
            Err(e) => Err(e),
        }
    };
    let basic = req.basic().is_some();
    match result {
        Ok((grant, body)) => Outcome::ok(grant.label()).attach(respond::ok(format, &body)),
        Err(e) => {
            let reported = report::failure("token", &e, &s.database);
            Outcome::err(grant_label, &e)
                .attach_reported(respond::error(format, &e, basic), reported)
        }
    }
}

/// A device authorization request takes a token from its source address's bucket, then — once
/// the client has authenticated, so that nobody can empty another app's bucket with its
/// client id alone — from its client's. Either empty: 429.
async fn device_throttle(
    s: &AppState,
    ctx: &idforce_core::grant::TokenContext<'_>,
    client: &ClientCredentials,
    format: Format,
) -> Result<(), Response> {
    let peer = ctx.caller.ip;
    let refuse = |wait_ms: i64, by: &str| {
        let secs = crate::throttle::retry_after_secs(wait_ms);
        tracing::info!(
            ?peer,
            by,
            retry_after = secs,
            "device authorization throttled"
        );
        Outcome::with("device", "throttled").attach(respond::throttled(format, secs))
    };
    let now = s.clock.now();
    if let Some(peer) = peer {
        let address = crate::throttle::address_key(peer);
        s.throttles
            .device_per_address
            .take(&address, now)
            .map_err(|wait| refuse(wait, "address"))?;
    }
    // A client that fails to authenticate is answered by `device::authorize` as usual.
    if let Ok(app) = device::authenticate(ctx, client).await {
        s.throttles
            .device_per_client
            .take(&app.client_id, now)
            .map_err(|wait| refuse(wait, "client"))?;
    }
    Ok(())
}

/// What a successful token-endpoint request answers: either shape, as it is.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Issued {
    Granted(idforce_core::wire::Granted),
    DeviceCodes(device::DeviceAuthorization),
}

fn grant_type(params: &idforce_core::wire::Params) -> Option<GrantType> {
    params.get("grant_type").and_then(GrantType::parse)
}

/// The device authorization request shares the token endpoint (spec §3.8): it names a
/// `response_type` and no `grant_type`.
fn is_device_authorization(params: &idforce_core::wire::Params) -> bool {
    params.get("grant_type").is_none() && params.get("response_type") == Some("device_code")
}

pub async fn introspect(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let ring = s.keys.current(s.clock.now()).await;
    let format = Format::of(&req.params, &req.headers);
    let result = if req.method != Method::POST {
        Err(OAuthError::must_use_post())
    } else {
        match ClientCredentials::from_request(&req.params, req.basic()) {
            Ok(client) => {
                introspect::introspect(
                    &s.token_context(&req.headers, req.peer, &ring, req.entry()),
                    &req.params,
                    &client,
                )
                .await
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(body) => Outcome::ok("-").attach(respond::ok(format, &body)),
        Err(e) => {
            let reported = report::failure("introspection", &e, &s.database);
            let response = respond::error(format, &e, req.basic().is_some());
            Outcome::err("-", &e).attach_reported(response, reported)
        }
    }
}

/// Revocation answers 200 with an empty body, or 400 with a *form-encoded* error that jsforce
/// parses as such (spec §6.3, §12.16). With `callback=` (GET) it answers JSONP.
pub async fn revoke(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let callback = req
        .params
        .get("callback")
        .filter(|c| {
            c.len() <= 128
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b))
        })
        .map(str::to_owned);
    let result = match req.params.get("token") {
        _ if req.params.duplicate().is_some() => Err(OAuthError::duplicated(
            req.params.duplicate().unwrap_or("token"),
        )),
        None => Err(OAuthError::missing("token")),
        Some(token) => revoke::revoke(s.store.as_ref(), &s.hasher, token, s.clock.now()).await,
    };
    let (outcome, reported) = match &result {
        Ok(()) => (Outcome::ok("-"), None),
        Err(e) => (
            Outcome::err("-", e),
            Some(report::failure("revocation", e, &s.database)),
        ),
    };
    let response = match (callback, result) {
        (Some(cb), r) => {
            let body = match r {
                Ok(()) => "{}".to_owned(),
                Err(e) => format!("{{\"error\":\"{}\"}}", e.code.as_str()),
            };
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/javascript"),
                )],
                format!("{cb}({body})"),
            )
                .into_response()
        }
        (None, Ok(())) => StatusCode::OK.into_response(),
        (None, Err(e)) => respond::error(Format::UrlEncoded, &e, false),
    };
    let response = respond::no_store(response);
    match reported {
        Some(reported) => outcome.attach_reported(response, reported),
        None => outcome.attach(response),
    }
}
