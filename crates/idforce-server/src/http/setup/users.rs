//! Setup's Manage Users: the list, New User and Edit (Salesforce's form), each user's page
//! with Reset Password, Unlock and Freeze / Unfreeze; and every user's own Reset My Security
//! Token under personal settings.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use idforce_core::model::{Org, User};
use idforce_core::sfid::SfId;

use super::{
    LOGIN_HISTORY, USERS, actor, admin, admin_session, csrf_token, not_found, posted, see_other,
    unavailable,
};
use crate::app_form::FieldError;
use crate::http::browser::{logged_in, same, session_csrf};
use crate::http::pages;
use crate::http::request;
use crate::operations::users::{self as ops, NewUser};
use crate::state::AppState;
use crate::user_form::UserForm;

/// New User (GET the form, POST it).
pub const NEW: &str = "/lightning/setup/ManageUsers/new";
/// Edit a user (`?user=<id>`).
pub const EDIT: &str = "/lightning/setup/ManageUsers/edit";
/// A user's page and its actions (`?user=<id>`).
pub const PAGE: &str = "/lightning/setup/ManageUsers/page";
/// Personal settings: Reset My Security Token, for any logged-in user.
pub const RESET_TOKEN: &str = "/lightning/settings/personal/ResetApiToken/home";

fn href(page: &str, u: &User) -> String {
    format!("{page}?user={}", u.id.to18())
}

fn status_of(u: &User, now: i64) -> &'static str {
    if u.frozen {
        "Frozen"
    } else if u.is_locked(now) {
        "Locked out"
    } else {
        ""
    }
}

/// The user of the admin's org named by `user=<id>`, read fresh (a save writes the whole user).
async fn org_user(s: &AppState, org: &Org, id: Option<&str>) -> Result<Option<User>, Response> {
    match id.and_then(|u| SfId::parse(u).ok()) {
        Some(id) => org_user_by_id(s, &org.id, id).await,
        None => Ok(None),
    }
}

/// A user of `org`, read from the store itself (not the directory cache).
async fn org_user_by_id(s: &AppState, org: &SfId, id: SfId) -> Result<Option<User>, Response> {
    match s.store.users(Some(org)).await {
        Ok(users) => Ok(users.into_iter().find(|u| u.id == id)),
        Err(_) => Err(unavailable()),
    }
}

struct UserRow {
    name: String,
    username: String,
    email: String,
    profile: String,
    active: &'static str,
    status: &'static str,
    page_href: String,
    edit_href: String,
    history_href: String,
}

#[derive(Template)]
#[template(path = "setup_users.html")]
struct ListPage<'a> {
    org_name: &'a str,
    username: &'a str,
    users: Vec<UserRow>,
}

/// Users: the org's, by name, with their profile and whether they may log in.
pub async fn list(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(mut users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    users.sort_by_key(|u| (u.last_name.to_lowercase(), u.first_name.to_lowercase()));
    let now = s.clock.now();
    let users = users
        .iter()
        .map(|u| UserRow {
            name: u.display_name(),
            username: u.username.clone(),
            email: u.email.clone(),
            profile: u.profile.clone(),
            active: super::apps::yes_no(u.active),
            status: status_of(u, now),
            page_href: href(PAGE, u),
            edit_href: href(EDIT, u),
            history_href: format!("{LOGIN_HISTORY}?user={}", u.id.to18()),
        })
        .collect();
    pages::html(
        StatusCode::OK,
        &ListPage {
            org_name: &org.name,
            username: &user.username,
            users,
        },
    )
}

#[derive(Template)]
#[template(path = "setup_user_form.html")]
struct FormPage<'a> {
    org_name: &'a str,
    username: &'a str,
    title: &'static str,
    action: String,
    cancel_href: String,
    csrf: String,
    form: &'a UserForm,
    /// The org's profiles, each with whether it is chosen.
    profiles: Vec<(String, bool)>,
    errors: &'a [FieldError],
}

impl FormPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        crate::app_form::message_for(self.errors, field)
    }
}

async fn form_page(
    s: &AppState,
    (sid, me, org): (&str, &User, &Org),
    editing: Option<&User>,
    form: &UserForm,
    errors: &[FieldError],
) -> Response {
    let Ok(profiles) = s.store.profiles(Some(&org.id)).await else {
        return unavailable();
    };
    let mut profiles: Vec<(String, bool)> = profiles
        .iter()
        .map(|p| (p.name.clone(), p.name.eq_ignore_ascii_case(&form.profile)))
        .collect();
    profiles.sort_by_key(|(name, _)| name.to_lowercase());
    let (title, action, cancel_href) = match editing {
        Some(u) => ("Edit User", href(EDIT, u), href(PAGE, u)),
        None => ("New User", NEW.to_owned(), USERS.to_owned()),
    };
    let status = super::form_status(errors.is_empty());
    pages::html(
        status,
        &FormPage {
            org_name: &org.name,
            username: &me.username,
            title,
            action,
            cancel_href,
            csrf: csrf_token(s, sid),
            form,
            profiles,
            errors,
        },
    )
}

pub async fn new_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    match admin_session(&s, &headers, &uri).await {
        Ok((sid, me, org)) => {
            let mut form = UserForm::blank();
            form.profile = "Standard User".into();
            form_page(&s, (&sid, &me, &org), None, &form, &[]).await
        }
        Err(answer) => answer,
    }
}

pub async fn edit_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, me, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let wanted = request::query_param(uri.query(), "user");
    match org_user(&s, &org, wanted.as_deref()).await {
        Ok(Some(u)) => form_page(&s, (&sid, &me, &org), Some(&u), &UserForm::of(&u), &[]).await,
        Ok(None) => not_found(USERS, "Users"),
        Err(answer) => answer,
    }
}

/// Saves New or Edit: every field checked first, each error beside its field and the form as
/// typed; a new user's temporary password is shown once on their page.
pub async fn save(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let wanted = req.params.get("user").map(str::to_owned);
    let page = match &wanted {
        Some(id) => format!("{EDIT}?user={id}"),
        None => NEW.to_owned(),
    };
    let (sid, me, org) = match posted(&s, &req, &page).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let editing = match &wanted {
        Some(id) => match org_user(&s, &org, Some(id)).await {
            Ok(Some(u)) => Some(u),
            Ok(None) => return not_found(USERS, "Users"),
            Err(answer) => return answer,
        },
        None => None,
    };
    let form = UserForm::parse(&req.params);
    let (Ok(profiles), Ok(holder)) = (
        s.store.profiles(Some(&org.id)).await,
        s.store.user_by_username(&form.username).await,
    ) else {
        return unavailable();
    };
    let taken = holder.is_some_and(|h| editing.as_ref().is_none_or(|e| e.id != h.id));
    let federation_taken = match crate::operations::users::federation_id_holder(
        s.store.as_ref(),
        &org.id,
        &form.federation_id,
    )
    .await
    {
        Ok(holder) => holder.is_some_and(|h| editing.as_ref().is_none_or(|e| e.id != h)),
        Err(_) => return unavailable(),
    };
    let checked = form
        .check(editing.as_ref(), &me, &profiles, taken)
        .and_then(|change| match federation_taken {
            false => Ok(change),
            true => Err(Vec::new()),
        });
    let change = match checked {
        Ok(change) => change,
        Err(mut errors) => {
            if federation_taken {
                errors.push(crate::app_form::FieldError {
                    field: "federation_id",
                    message: "Another user of your org has this Federation ID.".into(),
                });
            }
            let who = (sid.as_str(), me.as_ref(), org.as_ref());
            return form_page(&s, who, editing.as_ref(), &form, &errors).await;
        }
    };
    let now = s.clock.now();
    let store = s.store.as_ref();
    let who = actor(&me);
    match editing {
        Some(mut u) => {
            if ops::update(store, &mut u, change, &who, now).await.is_err() {
                return unavailable();
            }
            see_other(&format!("{}&done=saved", href(PAGE, &u)))
        }
        None => {
            let new = NewUser {
                org: org.id,
                username: form.username.clone(),
                email: form.email.clone(),
                first_name: form.first_name.clone(),
                last_name: form.last_name.clone(),
                profile: change.profile.unwrap_or_default(),
                active: form.active,
                password: None,
                security_token: None,
                federation_id: change.federation_id.clone(),
            };
            match ops::create(store, &s.hasher, new, &who, now).await {
                Ok((u, password)) => {
                    let told = Told::Password(password.unwrap_or_default());
                    user_page(&s, (&sid, &me, &org), &u, Some(told))
                }
                Err(_) => unavailable(),
            }
        }
    }
}

/// What a user's page says once, after an action.
enum Told {
    Saved,
    /// A temporary password, shown this once.
    Password(String),
    Unlocked,
    Frozen(u64),
    Unfrozen,
}

#[derive(Template)]
#[template(path = "setup_user.html")]
struct UserPage<'a> {
    org_name: &'a str,
    username: &'a str,
    user: &'a User,
    is_me: bool,
    locked: bool,
    status: &'static str,
    message: Option<String>,
    password: Option<String>,
    csrf: String,
    action: String,
    edit_href: String,
    history_href: String,
}

fn user_page(
    s: &AppState,
    (sid, me, org): (&str, &User, &Org),
    u: &User,
    told: Option<Told>,
) -> Response {
    let now = s.clock.now();
    let (message, password) = match told {
        None => (None, None),
        Some(Told::Saved) => (
            Some("Your changes are saved and in force.".to_owned()),
            None,
        ),
        Some(Told::Password(p)) => (
            Some(
                "The temporary password is shown this once: give it to the user, who can \
                 then log in with it."
                    .to_owned(),
            ),
            Some(p),
        ),
        Some(Told::Unlocked) => (Some(format!("{} can log in again.", u.username)), None),
        Some(Told::Frozen(n)) => (
            Some(format!(
                "{} is frozen: they cannot log in, and {n} of their sessions ended.",
                u.username
            )),
            None,
        ),
        Some(Told::Unfrozen) => (Some(format!("{} is unfrozen.", u.username)), None),
    };
    pages::html(
        StatusCode::OK,
        &UserPage {
            org_name: &org.name,
            username: &me.username,
            user: u,
            is_me: u.id == me.id,
            locked: u.is_locked(now),
            status: status_of(u, now),
            message,
            password,
            csrf: csrf_token(s, sid),
            action: href(PAGE, u),
            edit_href: href(EDIT, u),
            history_href: format!("{LOGIN_HISTORY}?user={}", u.id.to18()),
        },
    )
}

/// A user's page: their details and what an admin can do to them.
pub async fn page(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, me, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let wanted = request::query_param(uri.query(), "user");
    let told = (request::query_param(uri.query(), "done").as_deref() == Some("saved"))
        .then_some(Told::Saved);
    match org_user(&s, &org, wanted.as_deref()).await {
        Ok(Some(u)) => user_page(&s, (&sid, &me, &org), &u, told),
        Ok(None) => not_found(USERS, "Users"),
        Err(answer) => answer,
    }
}

/// `action=reset_password | unlock | freeze | unfreeze` for `user`. A reset password's page is
/// the answer itself (the password must not travel in a redirect's URL).
pub async fn action(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let wanted = req.params.get("user").map(str::to_owned);
    let page = format!("{PAGE}?user={}", wanted.as_deref().unwrap_or_default());
    let (sid, me, org) = match posted(&s, &req, &page).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let mut u = match org_user(&s, &org, wanted.as_deref()).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found(USERS, "Users"),
        Err(answer) => return answer,
    };
    let (store, now, who) = (s.store.as_ref(), s.clock.now(), actor(&me));
    let told = match req.params.get("action") {
        Some("reset_password") => ops::set_password(store, &mut u, None, &who, now)
            .await
            .map(|p| Told::Password(p.unwrap_or_default())),
        Some("unlock") => ops::unlock(store, &mut u, &who, now)
            .await
            .map(|()| Told::Unlocked),
        // Freezing yourself would end the session doing it.
        Some("freeze") if u.id != me.id => ops::set_frozen(store, &mut u, true, &who, now)
            .await
            .map(Told::Frozen),
        Some("unfreeze") => ops::set_frozen(store, &mut u, false, &who, now)
            .await
            .map(|_| Told::Unfrozen),
        _ => return not_found(USERS, "Users"),
    };
    match told {
        Ok(told) => user_page(&s, (&sid, &me, &org), &u, Some(told)),
        Err(_) => unavailable(),
    }
}

#[derive(Template)]
#[template(path = "reset_token.html")]
struct ResetTokenPage<'a> {
    username: &'a str,
    csrf: String,
    token: Option<String>,
}

const RESET_PURPOSE: &str = "reset-security-token";

/// Reset My Security Token: any logged-in user's own (Salesforce emails the new token; idforce
/// has no mail yet and shows it once).
pub async fn reset_token_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let Some((sid, _, user)) = logged_in(&s, &headers).await else {
        return super::to_login(&uri);
    };
    pages::html(
        StatusCode::OK,
        &ResetTokenPage {
            username: &user.username,
            csrf: session_csrf(&s, &sid, RESET_PURPOSE),
            token: None,
        },
    )
}

pub async fn reset_token(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let Some((sid, _, user)) = logged_in(&s, &req.headers).await else {
        return super::to_login(&Uri::from_static(RESET_TOKEN));
    };
    let csrf = session_csrf(&s, &sid, RESET_PURPOSE);
    if !req.params.get("csrf").is_some_and(|c| same(c, &csrf)) {
        return super::expired(RESET_TOKEN);
    }
    // Read fresh: the whole user is saved, and the session's copy may be a second old (an
    // admin's freeze or password reset made meanwhile would be undone).
    let mut user = match org_user_by_id(&s, &user.org_id, user.id).await {
        Ok(Some(u)) => u,
        Ok(None) => return super::to_login(&Uri::from_static(RESET_TOKEN)),
        Err(answer) => return answer,
    };
    let actor = user.username.clone();
    let now = s.clock.now();
    match ops::reset_security_token(s.store.as_ref(), &s.hasher, &mut user, &actor, now).await {
        Ok(token) => pages::html(
            StatusCode::OK,
            &ResetTokenPage {
                username: &user.username,
                csrf,
                token: Some(token),
            },
        ),
        Err(_) => unavailable(),
    }
}
