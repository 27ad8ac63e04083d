//! Setup's token pages: Connected Apps OAuth Usage (each app's User Count, Block / Unblock,
//! and each app's users with Revoke) and Session Management (the org's live sessions, Remove).

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use idforce_core::model::{ConnectedApp, Org, User};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use idforce_store::SessionFilter;

use super::{
    OAUTH_USAGE, actor, admin_session, csrf_token, not_found, org_app, posted, see_other,
    unavailable,
};
use crate::http::pages;
use crate::http::request;
use crate::login_history::time;
use crate::operations;
use crate::state::AppState;

/// One app's users holding tokens, with Revoke (`?app=<id>`).
pub const USAGE_APP: &str = "/lightning/setup/ConnectedAppsUsage/page";
pub const SESSIONS: &str = "/lightning/setup/SessionManagementPage/home";
/// Sessions Session Management lists at most.
const SESSION_ROWS: u32 = 200;

struct UsageRow {
    id: String,
    name: String,
    href: String,
    users: u64,
    blocked: bool,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "setup_oauth_usage.html")]
struct UsagePage<'a> {
    org_name: &'a str,
    username: &'a str,
    apps: Vec<UsageRow>,
    csrf: String,
    message: Option<String>,
}

/// Connected Apps OAuth Usage: each app's users holding tokens, and Block / Unblock.
pub async fn usage(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, user, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (Ok(mut apps), Ok(counts)) = (
        s.store.apps(Some(&org.id)).await,
        s.store.app_users(&org.id).await,
    ) else {
        return unavailable();
    };
    // The built-in SOAP app is idforce's own: not listed, not an admin's to block.
    apps.retain(|a| !a.is_builtin());
    apps.sort_by_key(|a| a.name.to_lowercase());
    // What the last action did, said once after its redirect.
    let done = request::query_param(uri.query(), "done");
    let acted_on = request::query_param(uri.query(), "app").and_then(|id| {
        apps.iter()
            .find(|a| a.id.to18() == id)
            .map(|a| a.name.clone())
    });
    let message = match (done.as_deref(), acted_on) {
        (Some("block"), Some(name)) => Some(format!(
            "Blocked {name}: its access and refresh tokens are ended."
        )),
        (Some("unblock"), Some(name)) => Some(format!("Unblocked {name}.")),
        _ => None,
    };
    let apps = apps
        .iter()
        .map(|a| UsageRow {
            id: a.id.to18(),
            name: a.name.clone(),
            href: format!("{USAGE_APP}?app={}", a.id.to18()),
            users: counts
                .iter()
                .find(|(id, _)| *id == a.id)
                .map_or(0, |(_, n)| *n),
            blocked: a.blocked,
            status: if a.blocked { "Blocked" } else { "Active" },
        })
        .collect();
    pages::html(
        StatusCode::OK,
        &UsagePage {
            org_name: &org.name,
            username: &user.username,
            apps,
            csrf: csrf_token(&s, &sid),
            message,
        },
    )
}

/// POST of OAuth Usage: `action=block|unblock` for `app`, then back to the page.
pub async fn usage_action(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (_, user, org) = match posted(&s, &req, OAUTH_USAGE).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let blocked = match req.params.get("action") {
        Some("block") => true,
        Some("unblock") => false,
        _ => return not_found(OAUTH_USAGE, "Connected Apps OAuth Usage"),
    };
    let mut app = match org_app(&s, &org, req.params.get("app")).await {
        Ok(Some(app)) => app,
        Ok(None) => return not_found(OAUTH_USAGE, "Connected Apps OAuth Usage"),
        Err(answer) => return answer,
    };
    let now = s.clock.now();
    let store = s.store.as_ref();
    if operations::set_app_blocked(store, &mut app, blocked, &actor(&user), now)
        .await
        .is_err()
    {
        return unavailable();
    }
    let action = if blocked { "block" } else { "unblock" };
    see_other(&format!(
        "{OAUTH_USAGE}?done={action}&app={}",
        app.id.to18()
    ))
}

struct HolderRow {
    id: String,
    username: String,
    refresh_tokens: usize,
    last_used: String,
}

#[derive(Template)]
#[template(path = "setup_oauth_usage_app.html")]
struct UsageAppPage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    holders: Vec<HolderRow>,
    csrf: String,
    action: String,
    message: Option<String>,
}

async fn usage_app_page(
    s: &AppState,
    (sid, me, org): (&str, &User, &Org),
    app: &ConnectedApp,
    message: Option<String>,
) -> Response {
    let Ok(tokens) = s
        .store
        .live_refresh_tokens(SessionFilter::App(app.id))
        .await
    else {
        return unavailable();
    };
    // Each holder once, with how many refresh tokens and when one was last used.
    let mut holders: Vec<HolderRow> = Vec::new();
    let mut seen: Vec<(SfId, usize, i64)> = Vec::new();
    for t in &tokens {
        match seen.iter_mut().find(|(u, _, _)| *u == t.user_id) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 = entry.2.max(t.last_used_at);
            }
            None => seen.push((t.user_id, 1, t.last_used_at)),
        }
    }
    // Each holder by id (they may be of any org): not every user of every org.
    for (id, n, last) in seen {
        let username = match s.store.user(&id).await {
            Ok(Some(u)) => u.username.clone(),
            Ok(None) => id.to18(),
            Err(_) => return unavailable(),
        };
        holders.push(HolderRow {
            id: id.to18(),
            username,
            refresh_tokens: n,
            last_used: time(last),
        });
    }
    holders.sort_by(|a, b| a.username.cmp(&b.username));
    pages::html(
        StatusCode::OK,
        &UsageAppPage {
            org_name: &org.name,
            username: &me.username,
            app,
            holders,
            csrf: csrf_token(s, sid),
            action: format!("{USAGE_APP}?app={}", app.id.to18()),
            message,
        },
    )
}

/// One app's users holding refresh tokens, each with Revoke.
pub async fn usage_app(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, me, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let wanted = request::query_param(uri.query(), "app");
    match org_app(&s, &org, wanted.as_deref()).await {
        Ok(Some(app)) => usage_app_page(&s, (&sid, &me, &org), &app, None).await,
        Ok(None) => not_found(OAUTH_USAGE, "Connected Apps OAuth Usage"),
        Err(answer) => answer,
    }
}

/// Revoke: one user's access and refresh tokens of the app end (they may approve it again).
pub async fn usage_revoke(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let wanted = req.params.get("app").map(str::to_owned);
    let page = format!("{USAGE_APP}?app={}", wanted.as_deref().unwrap_or_default());
    let (sid, me, org) = match posted(&s, &req, &page).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let app = match org_app(&s, &org, wanted.as_deref()).await {
        Ok(Some(app)) => app,
        Ok(None) => return not_found(OAUTH_USAGE, "Connected Apps OAuth Usage"),
        Err(answer) => return answer,
    };
    // A holder may be of any org (an app can be used across orgs), so the user is found by
    // their tokens of this app: anybody else is as unknown as a missing user (an admin must
    // not learn other orgs' usernames by trying ids).
    let Some(user) = req.params.get("user").and_then(|u| SfId::parse(u).ok()) else {
        return not_found(OAUTH_USAGE, "Connected Apps OAuth Usage");
    };
    let filter = SessionFilter::UserApp(user, app.id);
    let now = s.clock.now();
    let holds = match (
        s.store.live_refresh_tokens(filter).await,
        s.store.live_sessions(filter, now).await,
    ) {
        (Ok(refresh), Ok(sessions)) => !refresh.is_empty() || !sessions.is_empty(),
        _ => return unavailable(),
    };
    let holder = match s.store.user(&user).await {
        Ok(Some(u)) if holds => u,
        Ok(_) => return not_found(OAUTH_USAGE, "Connected Apps OAuth Usage"),
        Err(_) => return unavailable(),
    };
    let store = s.store.as_ref();
    match operations::revoke_user_app(store, &holder, &app, &actor(&me), now).await {
        Ok((sessions, refresh)) => {
            let message = format!(
                "Revoked {}'s tokens of {}: {sessions} access, {refresh} refresh.",
                holder.username, app.name
            );
            usage_app_page(&s, (&sid, &me, &org), &app, Some(message)).await
        }
        Err(_) => unavailable(),
    }
}

struct SessionRow {
    key: String,
    username: String,
    app: String,
    created: String,
    last_used: String,
    source_ip: String,
}

#[derive(Template)]
#[template(path = "setup_sessions.html")]
struct SessionsPage<'a> {
    org_name: &'a str,
    username: &'a str,
    limit: u32,
    sessions: Vec<SessionRow>,
    csrf: String,
    message: Option<&'static str>,
}

/// Session Management: the org's live sessions, most recently used first, each with Remove.
pub async fn sessions(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, me, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let now = s.clock.now();
    let (Ok(live), Ok(users), Ok(apps)) = (
        s.store.org_sessions(&org.id, now, SESSION_ROWS).await,
        s.store.users(Some(&org.id)).await,
        s.store.apps(Some(&org.id)).await,
    ) else {
        return unavailable();
    };
    let sessions = live
        .iter()
        .map(|x| SessionRow {
            key: idforce_core::token::hex(&x.digest),
            username: users
                .iter()
                .find(|u| u.id == x.user_id)
                .map_or_else(|| x.user_id.to18(), |u| u.username.clone()),
            app: apps
                .iter()
                .find(|a| a.id == x.app_id)
                .map_or_else(|| x.app_id.to18(), |a| a.name.clone()),
            created: time(x.issued_at),
            last_used: time(x.last_used_at),
            source_ip: x.source_ip.clone().unwrap_or_default(),
        })
        .collect();
    let message = (request::query_param(uri.query(), "done").as_deref() == Some("removed"))
        .then_some("The session is removed: its access token no longer works.");
    pages::html(
        StatusCode::OK,
        &SessionsPage {
            org_name: &org.name,
            username: &me.username,
            limit: SESSION_ROWS,
            sessions,
            csrf: csrf_token(&s, &sid),
            message,
        },
    )
}

/// Remove: one session of the org ends.
pub async fn remove_session(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (_, me, org) = match posted(&s, &req, SESSIONS).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let digest: Option<Digest> = req
        .params
        .get("session")
        .and_then(decode_hex)
        .and_then(|b| b.try_into().ok());
    let Some(digest) = digest else {
        return not_found(SESSIONS, "Session Management");
    };
    let session = match s.store.session(&digest).await {
        Ok(Some(x)) if x.org_id == org.id => x,
        Ok(_) => return not_found(SESSIONS, "Session Management"),
        Err(_) => return unavailable(),
    };
    let now = s.clock.now();
    match operations::remove_session(s.store.as_ref(), &session, &actor(&me), now).await {
        Ok(_) => see_other(&format!("{SESSIONS}?done=removed")),
        Err(_) => unavailable(),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
