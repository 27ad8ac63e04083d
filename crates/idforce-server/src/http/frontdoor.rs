//! From a token to the browser, and out again: `/secur/frontdoor.jsp` (a `web`- or
//! `full`-scoped access token, or a one-time URL, becomes a browser session),
//! `/services/oauth2/singleaccess` (a one-time frontdoor URL for an access token), and OIDC
//! logout (`/services/auth/idp/oidc/logout`). The rules are `idforce_core::frontdoor`'s.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::frontdoor::{self, Refusal};
use idforce_core::hosts::Entry;
use serde_json::json;

use super::Outcome;
use super::browser::{close_browser_session, open_browser_session, redirect, site_prefix};
use super::report::Reason;
use super::request::{self, bearer};
use crate::state::AppState;
use idforce_core::login_history::LoginSubtype;

/// `GET` or form-`POST` of `/secur/frontdoor.jsp` with `sid` (an access token) and an optional
/// `retURL`, or `otp` and `startURL` (a one-time URL from `singleaccess`). A refusal sends the
/// browser to the login page of the host, as Salesforce does; the reason goes to the log.
pub async fn frontdoor(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let entry = req.entry_or(&s);
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, Some(&*entry));
    let bridged = match (req.params.get("otp"), req.params.get("sid")) {
        (Some(otp), _) => frontdoor::spend_one_time_url(&ctx, otp).await,
        (None, Some(sid)) => match frontdoor::bridged_session(&ctx, sid).await {
            Ok(sess) => match s.store.user(&sess.user_id).await {
                Ok(Some(user)) => {
                    let back = req
                        .params
                        .get("retURL")
                        .and_then(|r| frontdoor::return_path(r, &entry))
                        .unwrap_or_else(|| "/".to_owned());
                    Ok((user, back))
                }
                _ => Err(Refusal::BadToken("the session's user is gone".into())),
            },
            Err(e) => Err(e),
        },
        (None, None) => Err(Refusal::BadToken("neither sid nor otp".into())),
    };
    let (user, back) = match bridged {
        Ok(found) => found,
        Err(refusal) => return to_login(&entry, &refusal),
    };
    // A browser session is held to the profile's Login IP Ranges and Hours as the login page's
    // is, whatever relaxation the app that issued the token had.
    if let Err(e) = idforce_core::login_policy::check(
        &ctx,
        &user,
        None,
        idforce_core::login_policy::Entry::Login,
    )
    .await
    {
        super::report::record_refusal(&s, &ctx, &e, LoginSubtype::UiLogin).await;
        let refusal = Refusal::BadToken(format!("{e}: the profile's login restrictions"));
        return to_login(&entry, &refusal);
    }
    let Ok(cookie) = open_browser_session(&s, &user, None).await else {
        let refusal = Refusal::BadToken("the store could not start the browser session".into());
        return to_login(&entry, &refusal);
    };
    tracing::info!(user = %user.id, "browser session through frontdoor");
    let mut r = Outcome::ok("frontdoor").attach(redirect(&back));
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

fn to_login(entry: &Entry, refusal: &Refusal) -> Response {
    tracing::info!(request = "frontdoor", cause = %refusal.reason(), "refused");
    let login = format!("{}/", site_prefix(entry));
    Reason::new(refusal.reason())
        .attach(Outcome::with("frontdoor", refusal.word()).attach(redirect(&login)))
}

/// `GET` or `POST /services/oauth2/singleaccess` with a Bearer token (and an optional
/// `redirect_uri`, a path on this host): `{"frontdoor_uri": …}`, a URL that works once, for a
/// minute. Refusals are Salesforce's: 403 and one word of plain text.
pub async fn single_access(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let Some(token) = bearer(&req.headers, None) else {
        return refused(&Refusal::BadToken(
            "no access token: expected an Authorization: Bearer header".into(),
        ));
    };
    let entry = req.entry_or(&s);
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, Some(&*entry));
    let sess = match frontdoor::bridged_session(&ctx, &token).await {
        Ok(sess) => sess,
        Err(refusal) => return refused(&refusal),
    };
    let start = match req.params.get("redirect_uri") {
        None => None,
        Some(given) => match frontdoor::return_path(given, &entry) {
            Some(path) => Some(path),
            None => {
                let why = format!("redirect_uri {given:?} is not a path on this host");
                tracing::info!(request = "singleaccess", cause = %why, "refused");
                let body = json!({
                    "error": "invalid_request",
                    "error_description": "redirect_uri must be a relative path",
                });
                return Reason::new(why).attach(
                    Outcome::with("singleaccess", "invalid_request").attach(
                        (
                            StatusCode::BAD_REQUEST,
                            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
                            body.to_string(),
                        )
                            .into_response(),
                    ),
                );
            }
        },
    };
    match frontdoor::one_time_url(&ctx, &sess, start.as_deref()).await {
        Ok(url) => Outcome::ok("singleaccess").attach(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json;charset=UTF-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                json!({ "frontdoor_uri": url }).to_string(),
            )
                .into_response(),
        ),
        Err(refusal) => refused(&refusal),
    }
}

fn refused(refusal: &Refusal) -> Response {
    tracing::info!(request = "singleaccess", cause = %refusal.reason(), "refused");
    Reason::new(refusal.reason()).attach(
        Outcome::with("singleaccess", refusal.word()).attach(
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
                refusal.word(),
            )
                .into_response(),
        ),
    )
}

/// `GET` or `POST /services/auth/idp/oidc/logout`: ends the browser session and sends the
/// browser to the org's Logout URL (the login page when it has none). Salesforce ignores
/// `post_logout_redirect_uri`; idforce honours it, with `state`, when it is exactly one of the
/// `post_logout_redirect_uris` of the app an `id_token_hint` it signed names — an extension.
pub async fn oidc_logout(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let entry = req.entry_or(&s);
    let user_org = super::browser::logged_in(&s, &req.headers)
        .await
        .map(|(_, _, user)| user.org_id);
    let cleared = close_browser_session(&s, &req.headers).await;
    let target = match back_to_client(&s, &req.params, &entry).await {
        Ok(Some(url)) => url,
        Ok(None) => logout_url(&s, &entry, user_org).await,
        Err(why) => {
            tracing::info!(request = "oidc logout", cause = %why, "post_logout_redirect_uri ignored");
            logout_url(&s, &entry, user_org).await
        }
    };
    let mut r = Outcome::ok("logout").attach(redirect(&target));
    r.headers_mut().append(header::SET_COOKIE, cleared);
    r
}

/// The client's own post-logout page, when the request names one the app allows.
async fn back_to_client(
    s: &AppState,
    params: &idforce_core::wire::Params,
    entry: &Entry,
) -> Result<Option<String>, String> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let hint = params
        .get("id_token_hint")
        .ok_or("no id_token_hint names the app")?;
    let ring = s.keys.current(s.clock.now()).await;
    let claims = ring
        .verify(hint, "JWT")
        .ok_or("id_token_hint is not an id_token this server signed")?;
    let audiences: Vec<&str> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    // With `client_id` too, the hint must have been issued to that client (RP-Initiated
    // Logout §2).
    let named = params.get("client_id");
    for client_id in audiences
        .into_iter()
        .filter(|a| named.is_none_or(|n| n == *a))
    {
        let Ok(Some(app)) = s.store.app_by_client_id(client_id).await else {
            continue;
        };
        // Issued to this app at one of its org's hosts, and the URI one the app lists.
        let issued_here = match s.store.org(&app.org_id).await {
            Ok(Some(org)) => s
                .settings
                .issuers(&org)
                .iter()
                .any(|i| claims["iss"] == i.as_str()),
            _ => false,
        };
        if issued_here
            && entry.admits(&app.org_id)
            && app.oauth_enabled
            && app.post_logout_redirect_uris.iter().any(|u| u == uri)
        {
            let mut url = uri.to_owned();
            if let Some(state) = params.get("state") {
                let sep = if url.contains('?') { '&' } else { '?' };
                url.push(sep);
                url.push_str(
                    &form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", state)
                        .finish(),
                );
            }
            return Ok(Some(url));
        }
    }
    Err(format!(
        "post_logout_redirect_uri {uri:?} is not one of the hinted app's post_logout_redirect_uris"
    ))
}

/// The Logout URL of the org the request came through (or, on the login host, of the user
/// who was logged in); else the login page of this host or site.
async fn logout_url(s: &AppState, entry: &Entry, user_org: Option<idforce_core::SfId>) -> String {
    let org = match (&entry.org, user_org) {
        (Some(org), _) => Some(org.clone()),
        (None, Some(id)) => s.store.org(&id).await.ok().flatten(),
        (None, None) => None,
    };
    org.and_then(|o| o.logout_url.clone())
        .unwrap_or_else(|| format!("{}/", entry.base_url))
}
