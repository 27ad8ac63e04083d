//! The browser side: `/services/oauth2/authorize`, the login page (`/`), the approval page,
//! logout, and the built-in success page. Rules live in `idforce_core::authorize`; this
//! module moves them between requests, cookies and pages.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::authorize::{self, AuthorizeError, AuthorizeRequest, Next};
use idforce_core::device::VERIFICATION_PATH;
use idforce_core::grant::TokenContext;
use idforce_core::hosts::Entry;
use idforce_core::login_history::{self, LoginStatus, LoginSubtype};
use idforce_core::model::{LoginSession, Millis, User};
use idforce_core::token::random_bytes;
use idforce_core::wire::Params;
use subtle::ConstantTimeEq;

use super::Through;
use super::pages::{self, ConsentForm, LoginForm};
use super::report::Reason;
use super::request::{self, OAuthRequest};
use crate::state::AppState;

const SESSION_COOKIE: &str = "idforce_sid";
const CSRF_COOKIE: &str = "idforce_csrf";
/// A browser login lasts as long as an org's default session.
const LOGIN_LIFETIME_MS: Millis = 2 * 3600 * 1000;
const AUTHORIZE_PATH: &str = "/services/oauth2/authorize";
const LOGIN_FAILED: &str = "Please check your username and password. If you still can't log in, contact your administrator.";

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(s: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if s.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    pages::secure(r)
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The CSRF token of the approval form: bound to the login session.
fn consent_csrf(s: &AppState, sid: &str) -> String {
    session_csrf(s, sid, "consent")
}

/// A form's CSRF token bound to the login session `sid`, distinct per `purpose`: unguessable
/// without the session cookie, and no use on another kind of form.
pub(super) fn session_csrf(s: &AppState, sid: &str, purpose: &str) -> String {
    URL_SAFE_NO_PAD.encode(s.hasher.digest(&format!("{purpose}-csrf:{sid}")))
}

pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The path prefix of the site a request came through ("" elsewhere): pages put it before
/// the paths their forms and redirects name, so that the browser stays on the site.
pub(super) fn site_prefix(entry: &Entry) -> String {
    entry
        .site
        .as_ref()
        .map_or_else(String::new, |s| format!("/{}", s.path))
}

/// The logged-in user, if they may log in where the request came through: a session of
/// another org's user does not count on this org's My Domain or site.
pub(super) async fn logged_in_at(
    s: &AppState,
    headers: &HeaderMap,
    entry: &Entry,
) -> Option<(String, LoginSession, std::sync::Arc<User>)> {
    logged_in(s, headers)
        .await
        .filter(|(_, _, user)| entry.admits(&user.org_id))
}

/// The logged-in user behind the session cookie, if the session is live.
pub(super) async fn logged_in(
    s: &AppState,
    headers: &HeaderMap,
) -> Option<(String, LoginSession, std::sync::Arc<User>)> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    let session = s.store.login_session(&s.hasher.digest(&sid)).await.ok()??;
    if session.expires_at <= s.clock.now() {
        return None;
    }
    let user = s.store.user(&session.user_id).await.ok()??;
    // Frozen or deactivated since logging in: the session no longer counts.
    user.may_use_tokens().then_some((sid, session, user))
}

fn authorize_failure(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(e) => {
            Reason::of(&e).attach(pages::authorize_error(e.code.as_str(), &e.description))
        }
        AuthorizeError::Redirect {
            redirect_uri,
            response_type,
            state,
            error,
        } => Reason::of(&error).attach(redirect(&authorize::error_location(
            &redirect_uri,
            response_type,
            state.as_deref(),
            &error,
        ))),
    }
}

/// The login page, with the authorize request to resume afterwards; a site's shows its name
/// and posts to the site.
pub(super) fn login_page(
    s: &AppState,
    entry: &Entry,
    start_url: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = random_token();
    let action = format!("{}/", site_prefix(entry));
    let mut r = pages::login(&LoginForm {
        action: &action,
        site: entry.site.as_ref().map(|site| site.name.as_str()),
        start_url,
        username,
        csrf: &csrf,
        error,
    });
    *r.status_mut() = status;
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(s, CSRF_COOKIE, &csrf, 3600));
    r
}

/// `startURL` without `prompt=login`, so that logging in does not ask again.
fn start_url_of(params: &Params) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.pairs() {
        if k == "prompt" {
            let rest: Vec<&str> = v
                .split(' ')
                .filter(|p| *p != "login" && !p.is_empty())
                .collect();
            if !rest.is_empty() {
                ser.append_pair(k, &rest.join(" "));
            }
        } else {
            ser.append_pair(k, v);
        }
    }
    format!("{AUTHORIZE_PATH}?{}", ser.finish())
}

pub async fn authorize(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, req.entry());
    let areq = match authorize::validate(&ctx, &req.params).await {
        Ok(r) => r,
        Err(e) => return authorize_failure(e),
    };
    let session = logged_in_at(&s, &req.headers, ctx.entry).await;
    let Some((sid, login, user)) = session.filter(|_| !areq.prompt_login) else {
        if areq.immediate {
            return authorize_failure(areq.fail(authorize::immediate_unsuccessful()));
        }
        let hint = areq.login_hint.clone().unwrap_or_default();
        let start = start_url_of(&req.params);
        return login_page(&s, ctx.entry, &start, &hint, None, StatusCode::OK);
    };
    proceed(&s, &ctx, &req, &areq, &sid, &login, &user, false).await
}

/// After login and (if needed) approval: issue and redirect, or show the approval page.
#[allow(clippy::too_many_arguments)]
async fn proceed(
    s: &AppState,
    ctx: &TokenContext<'_>,
    req: &OAuthRequest,
    areq: &AuthorizeRequest,
    sid: &str,
    login: &LoginSession,
    user: &User,
    just_approved: bool,
) -> Response {
    let approval = match s.store.approval(&user.id, &areq.app.id).await {
        Ok(a) => a,
        Err(_) => return pages::authorize_error("server_error", "the store is unavailable"),
    };
    let step = if just_approved {
        Next::Issue
    } else {
        authorize::next_step(areq, user, approval.as_ref())
    };
    match step {
        Next::Refuse(e) => {
            super::report::record_refusal(s, ctx, &e, areq.login_subtype()).await;
            authorize_failure(areq.fail(e))
        }
        Next::Consent => {
            let hidden: Vec<(&str, String)> = req
                .params
                .pairs()
                .filter(|(k, _)| *k != "prompt" && *k != "csrf" && *k != "decision")
                .map(|(k, v)| (k, v.to_owned()))
                .collect();
            let csrf = consent_csrf(s, sid);
            let action = format!("{}{}", site_prefix(ctx.entry), super::paths::APPROVE);
            pages::consent(&ConsentForm {
                action: &action,
                app_name: &areq.app.name,
                username: &user.username,
                scopes: areq.scopes.iter().collect(),
                hidden,
                csrf: &csrf,
            })
        }
        Next::Issue => {
            let Ok(Some(org)) = s.store.org(&user.org_id).await else {
                return pages::authorize_error("server_error", "the store is unavailable");
            };
            match authorize::issue(ctx, areq, &org, user, login.auth_time).await {
                Ok(params) => redirect(&authorize::redirect_location(
                    &areq.redirect_uri,
                    areq.response_type,
                    &params,
                )),
                Err(e) => authorize_failure(areq.fail(e)),
            }
        }
    }
}

/// POST of the approval page: Allow records the approval and issues; Deny redirects with
/// `access_denied`.
pub async fn approve(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, req.entry());
    let Some((sid, login, user)) = logged_in_at(&s, &req.headers, ctx.entry).await else {
        return login_page(
            &s,
            ctx.entry,
            AUTHORIZE_PATH,
            "",
            Some("Your session has ended. Log in again."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let csrf_ok = req
        .params
        .get("csrf")
        .is_some_and(|c| same(c, &consent_csrf(&s, &sid)));
    if !csrf_ok {
        return pages::form_expired("This form has expired. Go back and try again.", None);
    }
    let areq = match authorize::validate(&ctx, &req.params).await {
        Ok(r) => r,
        Err(e) => return authorize_failure(e),
    };
    if req.params.get("decision") != Some("allow") {
        return authorize_failure(areq.fail(authorize::access_denied()));
    }
    if let Some(refused) = user.login_refusal() {
        let refused = refused.through(&areq.app);
        super::report::record_refusal(&s, &ctx, &refused, areq.login_subtype()).await;
        return authorize_failure(areq.fail(refused));
    }
    if s.store
        .approve(&user.id, &areq.app.id, &areq.scopes, ctx.now)
        .await
        .is_err()
    {
        return pages::authorize_error("server_error", "the store is unavailable");
    }
    proceed(&s, &ctx, &req, &areq, &sid, &login, &user, true).await
}

/// Only authorize requests, the device verification page, Setup's pages (and the root) may be
/// resumed after login: never another host.
/// On a site, not Setup: it is the org's, not a site's.
fn safe_start_url(u: Option<&str>, entry: &Entry) -> String {
    match u {
        Some(u)
            if (u.starts_with(AUTHORIZE_PATH)
                || u == VERIFICATION_PATH
                || u.starts_with(&format!("{VERIFICATION_PATH}?"))
                || (u.starts_with(super::setup::PREFIX) && entry.site.is_none()))
                && !u.starts_with("//") =>
        {
            u.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub async fn login_form(State(s): State<AppState>, req: Request) -> Response {
    let entry = Through::of(&s, req.extensions());
    let start = request::query_param(req.uri().query(), "startURL");
    let current = match start {
        None => logged_in_at(&s, req.headers(), &entry).await,
        Some(_) => None,
    };
    if let Some((_, _, user)) = current {
        return pages::home(&pages::Home {
            username: &user.username,
            // Setup is the org's, not a site's.
            setup: super::setup::is_admin(&user) && entry.site.is_none(),
            setup_href: super::setup::HOME,
        });
    }
    login_page(
        &s,
        &entry,
        &safe_start_url(start.as_deref(), &entry),
        "",
        None,
        StatusCode::OK,
    )
}

/// POST of the login page. Failures count toward the same lockout as the password grant.
pub async fn login_submit(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let entry = req.entry_or(&s);
    let start = safe_start_url(req.params.get("startURL"), &entry);
    let username = req.params.get("username").unwrap_or_default().to_owned();
    let csrf_ok = match (cookie(&req.headers, CSRF_COOKIE), req.params.get("csrf")) {
        (Some(c), Some(f)) => same(&c, f),
        _ => false,
    };
    if !csrf_ok {
        return login_page(
            &s,
            &entry,
            &start,
            &username,
            Some("This form has expired. Please log in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, Some(&*entry));
    let password = req.params.get("pw").unwrap_or_default();
    let checked = match idforce_core::grant::check_login(&ctx, &username, password).await {
        Ok(u) => idforce_core::grant::admit_login(
            &ctx,
            &u,
            None,
            idforce_core::login_policy::Entry::Login,
        )
        .await
        .map(|()| u),
        Err(e) => Err(e),
    };
    let user = match checked {
        Ok(u) => u,
        Err(e) if e.code == idforce_core::ErrorCode::TemporarilyUnavailable => {
            let reported = super::report::failure("login page", &e, &s.database);
            let mut page = reported.0.attach(login_page(
                &s,
                &entry,
                &start,
                &username,
                Some("Too many logins are in progress. Wait a moment, then try again."),
                StatusCode::SERVICE_UNAVAILABLE,
            ));
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return page;
        }
        Err(e) => {
            super::report::record_refusal(&s, &ctx, &e, LoginSubtype::UiLogin).await;
            let reported = super::report::failure("login page", &e, &s.database);
            let page = login_page(
                &s,
                &entry,
                &start,
                &username,
                Some(LOGIN_FAILED),
                StatusCode::OK,
            );
            return reported.0.attach(page);
        }
    };
    let login = login_history::recorded(
        &ctx,
        &user,
        None,
        LoginSubtype::UiLogin,
        LoginStatus::Success,
    );
    let Ok(cookie) = open_browser_session(&s, &user, login.as_ref()).await else {
        return login_page(
            &s,
            &entry,
            &start,
            &username,
            Some("The service is unavailable; try again shortly."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    tracing::info!(user = %user.id, "browser login");
    let mut r = redirect(&format!("{}{start}", site_prefix(&entry)));
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&s, CSRF_COOKIE, "", 0));
    r
}

/// Starts a browser session for `user` (with its Login History record, if any): the cookie
/// that carries it.
pub(super) async fn open_browser_session(
    s: &AppState,
    user: &User,
    login: Option<&login_history::LoginEvent>,
) -> Result<HeaderValue, idforce_core::ports::StoreError> {
    let sid = random_token();
    let now = s.clock.now();
    let session = LoginSession {
        digest: s.hasher.digest(&sid),
        user_id: user.id,
        auth_time: now,
        expires_at: now + LOGIN_LIFETIME_MS,
    };
    s.store.insert_login_session(&session, login).await?;
    Ok(set_cookie(
        s,
        SESSION_COOKIE,
        &sid,
        LOGIN_LIFETIME_MS / 1000,
    ))
}

/// Ends the browser session behind the request's cookie, if any: the cookie that clears it.
pub(super) async fn close_browser_session(s: &AppState, headers: &HeaderMap) -> HeaderValue {
    if let Some(sid) = cookie(headers, SESSION_COOKIE) {
        let _ = s.store.delete_login_session(&s.hasher.digest(&sid)).await;
    }
    set_cookie(s, SESSION_COOKIE, "", 0)
}

pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let cleared = close_browser_session(&s, &headers).await;
    let mut r = pages::logged_out();
    r.headers_mut().append(header::SET_COOKIE, cleared);
    r
}

pub async fn success() -> Response {
    pages::success()
}

/// The image every `picture` / `photos` URL answers with: Salesforce's users without a photo
/// of their own get a silhouette too (idforce keeps no photos).
pub async fn profile_photo() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        &include_bytes!("../../assets/profilephoto.png")[..],
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
        .into_response()
}
