//! The device flow's verification page (`/setup/connect`, spec §1, §3.8): a logged-in user
//! enters the code their device shows, sees what the app asks for, and allows or denies.
//! The rules are in `idforce_core::device`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use idforce_core::device::{self, CodeProblem, VERIFICATION_PATH};

use super::browser::{logged_in_at, login_page, same};
use super::pages::{self, ConsentForm, DeviceCodeForm};
use super::request;
use crate::state::AppState;

const NOT_VALID: &str =
    "That code is not valid or has expired. Check the code on your device and try again.";
const NOT_ADMITTED: &str =
    "You are not allowed to use this app. Ask your administrator to give you access.";
const UNAVAILABLE: &str = "The service is unavailable; try again shortly.";

/// The CSRF token of the device forms: bound to the login session.
fn device_csrf(s: &AppState, sid: &str) -> String {
    super::browser::session_csrf(s, sid, "device")
}

/// GET: the code form (after login), prefilled from `?user_code=` when given.
pub async fn verification_page(State(s): State<AppState>, req: Request) -> Response {
    let typed = request::query_param(req.uri().query(), "user_code").unwrap_or_default();
    let entry = super::Through::of(&s, req.extensions());
    let Some((sid, _, user)) = logged_in_at(&s, req.headers(), &entry).await else {
        let start = match typed.is_empty() {
            true => VERIFICATION_PATH.to_owned(),
            false => format!(
                "{VERIFICATION_PATH}?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &typed)
                    .finish()
            ),
        };
        return login_page(&s, &entry, &start, "", None, StatusCode::OK);
    };
    let action = format!("{}{VERIFICATION_PATH}", super::browser::site_prefix(&entry));
    pages::device_code(
        &DeviceCodeForm {
            action: &action,
            username: &user.username,
            user_code: &typed,
            csrf: &device_csrf(&s, &sid),
            error: None,
        },
        StatusCode::OK,
    )
}

/// POST: a code (shows the approval page) or a code and a decision (records it).
pub async fn verification_submit(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let entry = req.entry_or(&s);
    let Some((sid, login, user)) = logged_in_at(&s, &req.headers, &entry).await else {
        return login_page(
            &s,
            &entry,
            VERIFICATION_PATH,
            "",
            Some("Your session has ended. Log in again."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let csrf = device_csrf(&s, &sid);
    let typed = req.params.get("user_code").unwrap_or_default();
    let action = format!("{}{VERIFICATION_PATH}", super::browser::site_prefix(&entry));
    let form = |error: &str, status: StatusCode| {
        pages::device_code(
            &DeviceCodeForm {
                action: &action,
                username: &user.username,
                user_code: typed,
                csrf: &csrf,
                error: Some(error),
            },
            status,
        )
    };
    if !req.params.get("csrf").is_some_and(|c| same(c, &csrf)) {
        return form("This form has expired. Try again.", StatusCode::FORBIDDEN);
    }
    // Codes sent by this user (typed, or with a decision), in any browser session — logging
    // in again does not start a new count: a person sends a few; a guesser, thousands.
    let throttle = &s.throttles.user_codes_per_user;
    if let Err(wait_ms) = throttle.take(user.id.as15(), s.clock.now()) {
        let secs = crate::throttle::retry_after_secs(wait_ms);
        tracing::info!(user = %user.id, retry_after = secs, "user codes throttled");
        let mut page = form(
            &format!("Too many codes tried. Wait {secs} seconds, then try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
        page.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
        return page;
    }
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, Some(&*entry));
    let problem = |p: CodeProblem| match p {
        CodeProblem::NotValid => form(NOT_VALID, StatusCode::OK),
        CodeProblem::NotAdmitted => form(NOT_ADMITTED, StatusCode::FORBIDDEN),
        CodeProblem::Unavailable => form(UNAVAILABLE, StatusCode::SERVICE_UNAVAILABLE),
    };
    if !user.may_use_tokens() {
        return problem(CodeProblem::NotAdmitted);
    }
    let pending = match device::pending(&ctx, typed, &user).await {
        Ok(p) => p,
        Err(p) => return problem(p),
    };
    let allow = match req.params.get("decision") {
        None => {
            return pages::consent(&ConsentForm {
                action: &action,
                app_name: &pending.app.name,
                username: &user.username,
                scopes: pending.scopes.iter().collect(),
                hidden: vec![("user_code", typed.to_owned())],
                csrf: &csrf,
            });
        }
        Some(d) => d == "allow",
    };
    match device::decide(&ctx, &pending, &user, login.auth_time, allow).await {
        Ok(()) => {
            tracing::info!(user = %user.id, app = %pending.app.id, allow, "device authorization decided");
            pages::device_done(allow)
        }
        Err(p) => problem(p),
    }
}
