//! Setup: the admin console, at Salesforce's paths. Every page needs a browser session of a
//! user whose profile is System Administrator: a visitor is sent to the login page and back, a
//! user of another profile gets "Insufficient Privileges" (403). An admin sees their own org.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use idforce_core::model::{Org, User};
use idforce_store::LoginHistoryQuery;

use super::browser::{logged_in, redirect};
use super::pages;
use super::request;
use crate::login_history;
use crate::state::AppState;

pub const HOME: &str = "/lightning/setup/SetupOneHome/home";
pub const LOGIN_HISTORY: &str = "/lightning/setup/OrgLoginHistory/home";
/// Where Setup's pages live: a login may resume to any of them.
pub const PREFIX: &str = "/lightning/setup/";
/// The profile that may open Setup.
pub const ADMIN_PROFILE: &str = "System Administrator";
/// Login History rows per page.
const PAGE: u32 = 50;
/// Login History rows in a download at most, newest first (`idforce login-history --csv` has
/// no such bound).
const DOWNLOAD_ROWS: u32 = 20_000;

/// Whether `user` may open Setup.
pub fn is_admin(user: &User) -> bool {
    user.profile.eq_ignore_ascii_case(ADMIN_PROFILE)
}

/// The admin behind the request and their org, or the answer for anybody else.
async fn admin(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Arc<User>, Arc<Org>), Response> {
    let Some((_, _, user)) = logged_in(s, headers).await else {
        let back = uri.path_and_query().map_or(HOME, |p| p.as_str()).to_owned();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("startURL", &back)
            .finish();
        return Err(redirect(&format!("/?{query}")));
    };
    if !is_admin(&user) {
        return Err(pages::insufficient_privileges());
    }
    match s.store.org(&user.org_id).await {
        Ok(Some(org)) => Ok((user, org)),
        _ => Err(unavailable()),
    }
}

fn unavailable() -> Response {
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

/// Login History: the org's logins, newest first, a page at a time (`?before=<time>.<id>`),
/// or all of the page's filter as CSV (`?download=csv`).
pub async fn login_history(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let query = uri.query();
    let before = request::query_param(query, "before").and_then(|b| {
        let (at, id) = b.split_once('.')?;
        Some((at.parse().ok()?, id.parse().ok()?))
    });
    let download = request::query_param(query, "download").as_deref() == Some("csv");
    let wanted = LoginHistoryQuery {
        org: Some(org.id),
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
        .map(|last| format!("{LOGIN_HISTORY}?before={}.{}", last.event.at, last.id));
    pages::setup_login_history(&pages::SetupLoginHistory {
        org_name: &org.name,
        username: &user.username,
        columns: &login_history::COLUMNS,
        rows: records.iter().map(login_history::cells).collect(),
        older,
    })
}
