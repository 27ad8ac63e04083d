//! Setup: the admin console, at Salesforce's paths. Every page needs a browser session of a
//! user whose profile is System Administrator: a visitor is sent to the login page and back, a
//! user of another profile gets "Insufficient Privileges" (403). An admin sees their own org.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use idforce_core::model::{Org, User};
use idforce_core::sfid::SfId;
use idforce_store::LoginHistoryQuery;

mod apps;
mod profiles;
mod sessions;
mod users;

use apps::org_app;
pub use apps::{
    CONSUMER, EDIT, NEW, POLICIES, PROFILES as APP_PROFILES, USERS as APP_USERS, consumer_action,
    consumer_form, edit_form, list as connected_apps, manage as connected_app, new_form,
    policies_form, policies_save, profiles_form, profiles_save, save as save_app,
    users_form as app_users_form, users_save as app_users_save,
};
pub use profiles::{
    NEW as PROFILE_NEW, PAGE as PROFILE_PAGE, create as create_profile, list as profiles,
    new_form as profile_new_form, page as profile_page, save_access as save_profile_access,
};
pub use sessions::{
    SESSIONS, USAGE_APP, remove_session, sessions, usage as oauth_usage,
    usage_action as oauth_usage_action, usage_app as oauth_usage_app,
    usage_revoke as oauth_usage_revoke,
};
pub use users::{
    EDIT as USER_EDIT, NEW as USER_NEW, PAGE as USER_PAGE, RESET_TOKEN, action as user_action,
    edit_form as user_edit_form, list as users, new_form as user_new_form, page as user_page,
    reset_token, reset_token_form, save as save_user,
};

use super::browser::{logged_in, redirect, same, session_csrf};
use super::pages;
use super::request::{self, OAuthRequest};
use crate::login_history;
use crate::state::AppState;

pub const HOME: &str = "/lightning/setup/SetupOneHome/home";
pub const LOGIN_HISTORY: &str = "/lightning/setup/OrgLoginHistory/home";
pub const CONNECTED_APPS: &str = "/lightning/setup/ConnectedApplication/home";
pub const USERS: &str = "/lightning/setup/ManageUsers/home";
pub const OAUTH_USAGE: &str = "/lightning/setup/ConnectedAppsUsage/home";
pub const PROFILES: &str = "/lightning/setup/EnhancedProfiles/home";
pub const AUDIT_TRAIL: &str = "/lightning/setup/SecurityEvents/home";
/// Changes the audit trail page lists.
const AUDIT_ROWS: u32 = 200;
/// A connected app's Manage page (`?app=<id>`).
pub const CONNECTED_APP: &str = "/lightning/setup/ConnectedApplication/page";
/// Where Setup's pages live: a login may resume to any of them.
pub const PREFIX: &str = "/lightning/setup/";
/// The profile that may open Setup.
pub const ADMIN_PROFILE: &str = crate::profiles::ADMIN;
/// Login History rows per page.
const PAGE: u32 = 50;
/// Login History rows in a download at most, newest first (`idforce login-history --csv`
/// writes every row).
const DOWNLOAD_ROWS: u32 = 20_000;

/// Whether `user` may open Setup.
pub fn is_admin(user: &User) -> bool {
    user.profile.eq_ignore_ascii_case(ADMIN_PROFILE)
}

/// The admin behind the request and their org, or the answer for anybody else.
pub(super) async fn admin(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Arc<User>, Arc<Org>), Response> {
    admin_session(s, headers, uri)
        .await
        .map(|(_, user, org)| (user, org))
}

/// The same, with the browser session's id (which Setup's forms' CSRF tokens are bound to).
pub(super) async fn admin_session(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, Arc<User>, Arc<Org>), Response> {
    let Some((sid, _, user)) = logged_in(s, headers).await else {
        return Err(to_login(uri));
    };
    if !is_admin(&user) {
        return Err(pages::insufficient_privileges());
    }
    match s.store.org(&user.org_id).await {
        Ok(Some(org)) => Ok((sid, user, org)),
        _ => Err(unavailable()),
    }
}

/// A visitor's answer: the login page, which brings them back to `uri` once they are in.
pub(super) fn to_login(uri: &Uri) -> Response {
    let back = uri.path_and_query().map_or(HOME, |p| p.as_str());
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("startURL", back)
        .finish();
    redirect(&format!("/?{query}"))
}

/// The CSRF token of Setup's forms: bound to the browser session, unguessable without it.
pub(super) fn csrf_token(s: &AppState, sid: &str) -> String {
    session_csrf(s, sid, "setup")
}

/// After a POST: the browser fetches the next page with GET.
pub(super) fn see_other(to: &str) -> Response {
    let mut r = redirect(to);
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// A form page's status: 200, or 422 when it comes back with errors.
pub(super) fn form_status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

pub(super) fn expired(back: &str) -> Response {
    pages::form_expired(
        "This form has expired. Go back, reload the page and try again.",
        Some((back, "Back")),
    )
}

/// A form POST of Setup: the admin and their org, once its CSRF token is checked.
pub(super) async fn posted(
    s: &AppState,
    req: &OAuthRequest,
    page: &str,
) -> Result<(String, std::sync::Arc<User>, std::sync::Arc<Org>), Response> {
    let uri: Uri = page
        .parse()
        .unwrap_or_else(|_| Uri::from_static(CONNECTED_APPS));
    let (sid, user, org) = admin_session(s, &req.headers, &uri).await?;
    let ok = req
        .params
        .get("csrf")
        .is_some_and(|c| same(c, &csrf_token(s, &sid)));
    if ok {
        Ok((sid, user, org))
    } else {
        Err(expired(page))
    }
}

pub(super) fn actor(user: &User) -> String {
    format!("{} (Setup)", user.username)
}

pub(super) fn not_found(back: &'static str, label: &'static str) -> Response {
    pages::notice(
        StatusCode::NOT_FOUND,
        &pages::Notice {
            title: "Data Not Available",
            heading: "Data Not Available",
            text: "The data you were trying to access could not be found.",
            alert: true,
            link: Some((back, label)),
        },
    )
}

pub(super) fn unavailable() -> Response {
    pages::notice(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        &pages::Notice {
            title: "Unavailable",
            heading: "Setup is unavailable",
            text: "The store did not answer. Try again shortly.",
            alert: true,
            link: Some((HOME, "Setup")),
        },
    )
}

pub async fn home(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    match admin(&s, &headers, &uri).await {
        Ok((user, org)) => pages::setup_home(&pages::SetupHome {
            org_name: &org.name,
            username: &user.username,
        }),
        Err(answer) => answer,
    }
}

/// Login History: the org's logins, newest first, a page at a time (`?before=<id>`),
/// or all of the page's filter as CSV (`?download=csv`).
pub async fn login_history(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let query = uri.query();
    let before = request::query_param(query, "before").and_then(|b| b.parse().ok());
    let download = request::query_param(query, "download").as_deref() == Some("csv");
    // One user's logins (`?user=<id>`, linked from Users), if the user is of this org.
    let subject = match request::query_param(query, "user") {
        None => None,
        Some(id) => {
            let found = match SfId::parse(&id) {
                Ok(id) => match s.store.user(&id).await {
                    Ok(found) => found.filter(|u| u.org_id == org.id),
                    Err(_) => return unavailable(),
                },
                Err(_) => None,
            };
            match found {
                Some(u) => Some(u),
                None => return not_found(USERS, "Users"),
            }
        }
    };
    // What every link of the page keeps: the user filter.
    let filter = subject
        .as_ref()
        .map_or_else(String::new, |u| format!("user={}&", u.id.to18()));
    let wanted = LoginHistoryQuery {
        org: Some(org.id),
        user: subject.as_ref().map(|u| u.id),
        before,
        limit: if download { DOWNLOAD_ROWS } else { PAGE },
        ..Default::default()
    };
    let records = match s.store.login_history(&wanted).await {
        Ok(r) => r,
        Err(_) => return unavailable(),
    };
    if download {
        let mut r = login_history::csv(&records).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"LoginHistory.csv\""),
        );
        return pages::secure(r);
    }
    let older = (records.len() == PAGE as usize)
        .then(|| records.last())
        .flatten()
        .map(|last| format!("{LOGIN_HISTORY}?{filter}before={}", last.id));
    pages::setup_login_history(&pages::SetupLoginHistory {
        org_name: &org.name,
        username: &user.username,
        subject: subject.as_ref().map(|u| u.username.clone()),
        download_href: format!("{LOGIN_HISTORY}?{filter}download=csv"),
        columns: &login_history::COLUMNS,
        rows: records.iter().map(login_history::cells).collect(),
        older,
    })
}

#[derive(askama::Template)]
#[template(path = "setup_audit_trail.html")]
struct AuditTrailPage<'a> {
    org_name: &'a str,
    username: &'a str,
    limit: u32,
    /// Date, User, Action, Section.
    rows: Vec<(String, String, String, String)>,
}

/// View Setup Audit Trail: the org's newest changes, by Setup or by admin commands.
pub async fn audit_trail(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(records) = s.store.audit_trail(Some(&org.id), AUDIT_ROWS).await else {
        return unavailable();
    };
    let rows = records
        .into_iter()
        .map(|r| (login_history::time(r.at), r.actor, r.action, r.section))
        .collect();
    pages::html(
        StatusCode::OK,
        &AuditTrailPage {
            org_name: &org.name,
            username: &user.username,
            limit: AUDIT_ROWS,
            rows,
        },
    )
}
