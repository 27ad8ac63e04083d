//! Setup's Profiles: the list, New Profile (by cloning an existing one, as Salesforce's form
//! does), and each profile's page with its Connected App Access.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use idforce_core::model::{ConnectedApp, Org, Profile, User};
use idforce_core::sfid::SfId;

use super::{
    PROFILES, actor, admin, admin_session, csrf_token, not_found, posted, see_other, unavailable,
};
use crate::app_form::FieldError;
use crate::http::pages;
use crate::http::request;
use crate::operations::profiles as ops;
use crate::state::AppState;

/// New Profile (GET the form, POST it).
pub const NEW: &str = "/lightning/setup/EnhancedProfiles/new";
/// A profile's page and its Connected App Access (`?profile=<id>`).
pub const PAGE: &str = "/lightning/setup/EnhancedProfiles/page";

fn href(p: &Profile) -> String {
    format!("{PAGE}?profile={}", p.id.to18())
}

struct ProfileRow {
    name: String,
    href: String,
    users: usize,
    /// The apps that admit the profile, by name.
    apps: String,
}

#[derive(Template)]
#[template(path = "setup_profiles.html")]
struct ListPage<'a> {
    org_name: &'a str,
    username: &'a str,
    profiles: Vec<ProfileRow>,
}

/// Profiles: the org's, with how many users each has and the apps that admit it.
pub async fn list(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (Ok(mut profiles), Ok(users), Ok(apps)) = (
        s.store.profiles(Some(&org.id)).await,
        s.store.users(Some(&org.id)).await,
        s.store.apps(Some(&org.id)).await,
    ) else {
        return unavailable();
    };
    profiles.sort_by_key(|p| p.name.to_lowercase());
    let profiles = profiles
        .iter()
        .map(|p| {
            let mut admitted: Vec<&str> = apps
                .iter()
                .filter(|a| a.admits_profile(&p.name))
                .map(|a| a.name.as_str())
                .collect();
            admitted.sort_unstable();
            ProfileRow {
                name: p.name.clone(),
                href: href(p),
                users: users
                    .iter()
                    .filter(|u| u.profile.eq_ignore_ascii_case(&p.name))
                    .count(),
                apps: admitted.join(", "),
            }
        })
        .collect();
    pages::html(
        StatusCode::OK,
        &ListPage {
            org_name: &org.name,
            username: &user.username,
            profiles,
        },
    )
}

#[derive(Template)]
#[template(path = "setup_profile_new.html")]
struct NewPage<'a> {
    org_name: &'a str,
    username: &'a str,
    csrf: String,
    /// The org's profiles, each with whether it is the one to clone.
    existing: Vec<(String, bool)>,
    name: &'a str,
    errors: &'a [FieldError],
}

impl NewPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        crate::app_form::message_for(self.errors, field)
    }
}

async fn new_page(
    s: &AppState,
    (sid, me, org): (&str, &User, &Org),
    clone: &str,
    name: &str,
    errors: &[FieldError],
) -> Response {
    let Ok(mut profiles) = s.store.profiles(Some(&org.id)).await else {
        return unavailable();
    };
    profiles.sort_by_key(|p| p.name.to_lowercase());
    let existing = profiles
        .iter()
        .map(|p| (p.name.clone(), p.name.eq_ignore_ascii_case(clone)))
        .collect();
    let status = super::form_status(errors.is_empty());
    pages::html(
        status,
        &NewPage {
            org_name: &org.name,
            username: &me.username,
            csrf: csrf_token(s, sid),
            existing,
            name,
            errors,
        },
    )
}

pub async fn new_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    match admin_session(&s, &headers, &uri).await {
        Ok((sid, me, org)) => new_page(&s, (&sid, &me, &org), "Standard User", "", &[]).await,
        Err(answer) => answer,
    }
}

/// Creates the profile, cloned from the existing one chosen, and opens its page.
pub async fn create(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (sid, me, org) = match posted(&s, &req, NEW).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let clone = req
        .params
        .get("clone")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let name = req.params.get("name").unwrap_or_default().trim().to_owned();
    let Ok(profiles) = s.store.profiles(Some(&org.id)).await else {
        return unavailable();
    };
    let source = profiles
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(&clone));
    let mut errors = Vec::new();
    if source.is_none() {
        errors.push(FieldError {
            field: "clone",
            message: "Choose the profile to clone.".into(),
        });
    }
    let message = if name.is_empty() {
        Some("You must enter a value.")
    } else if name.chars().count() > 80 {
        Some("Use 80 characters or fewer.")
    } else if profiles.iter().any(|p| p.name.eq_ignore_ascii_case(&name)) {
        Some("Your org has a profile with this name.")
    } else {
        None
    };
    if let Some(m) = message {
        errors.push(FieldError {
            field: "name",
            message: m.into(),
        });
    }
    if !errors.is_empty() {
        return new_page(&s, (&sid, &me, &org), &clone, &name, &errors).await;
    }
    let now = s.clock.now();
    match ops::create(s.store.as_ref(), &org, &name, source, &actor(&me), now).await {
        Ok(p) => see_other(&format!("{}&done=created", href(&p))),
        Err(_) => unavailable(),
    }
}

#[derive(Template)]
#[template(path = "setup_profile.html")]
struct ProfilePage<'a> {
    org_name: &'a str,
    username: &'a str,
    profile: &'a Profile,
    message: Option<&'static str>,
    users: usize,
    csrf: String,
    action: String,
    /// The org's apps (id, name), each with whether it admits the profile.
    apps: Vec<(String, String, bool)>,
    /// Login IP Ranges, one per line, as the form shows them.
    ip_ranges: String,
    /// Whether login hours restrict the profile, and each weekday's (label, field, window).
    restrict_hours: bool,
    days: Vec<(&'static str, &'static str, String)>,
    time_zone: &'a str,
    /// Why the login restrictions were not saved.
    restrictions_error: Option<String>,
}

/// The page's weekday labels, in Salesforce's order on the Login Hours page.
const DAY_LABELS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// What the Login Restrictions form shows: the profile's, or what was submitted.
struct RestrictionsForm {
    ip_ranges: String,
    restrict_hours: bool,
    windows: [String; 7],
}

impl RestrictionsForm {
    fn of(p: &Profile) -> RestrictionsForm {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        RestrictionsForm {
            ip_ranges: p
                .login_ip_ranges
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            restrict_hours: p.login_hours.is_some(),
            windows: std::array::from_fn(|i| {
                p.login_hours
                    .and_then(|h| h.days[i])
                    .map(|(a, b)| format!("{}-{}", hm(a), hm(b)))
                    .unwrap_or_default()
            }),
        }
    }

    fn parse(params: &idforce_core::wire::Params) -> RestrictionsForm {
        RestrictionsForm {
            ip_ranges: params.get("login_ip_ranges").unwrap_or_default().to_owned(),
            restrict_hours: params.get("restrict_hours").is_some(),
            windows: std::array::from_fn(|i| {
                let field = format!("hours_{}", idforce_core::login_policy::WEEKDAYS[i]);
                params.get(&field).unwrap_or_default().trim().to_owned()
            }),
        }
    }
}

/// The profile of the admin's org named by `profile=<id>`.
async fn org_profile(
    s: &AppState,
    org: &Org,
    id: Option<&str>,
) -> Result<Option<Profile>, Response> {
    let Some(id) = id.and_then(|p| SfId::parse(p).ok()) else {
        return Ok(None);
    };
    match s.store.profiles(Some(&org.id)).await {
        Ok(profiles) => Ok(profiles.into_iter().find(|p| p.id == id)),
        Err(_) => Err(unavailable()),
    }
}

/// A profile's page: its users and the connected apps it may use.
pub async fn page(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, me, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let wanted = request::query_param(uri.query(), "profile");
    let profile = match org_profile(&s, &org, wanted.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(PROFILES, "Profiles"),
        Err(answer) => return answer,
    };
    let (Ok(mut apps), Ok(users)) = (
        s.store.apps(Some(&org.id)).await,
        s.store.users(Some(&org.id)).await,
    ) else {
        return unavailable();
    };
    apps.retain(|a| !a.is_builtin());
    apps.sort_by_key(|a| a.name.to_lowercase());
    let message = match request::query_param(uri.query(), "done").as_deref() {
        Some("created") => Some("The profile is created."),
        Some("saved") => Some("Your changes are saved and in force."),
        _ => None,
    };
    let form = RestrictionsForm::of(&profile);
    let shown = Shown {
        message,
        error: None,
        form: &form,
    };
    profile_page(&s, &sid, (&me, &org), &profile, (&apps, &users), shown)
}

/// What a profile page says beside the profile itself.
struct Shown<'f> {
    message: Option<&'static str>,
    error: Option<String>,
    form: &'f RestrictionsForm,
}

fn profile_page(
    s: &AppState,
    sid: &str,
    (me, org): (&User, &Org),
    profile: &Profile,
    (apps, users): (&[ConnectedApp], &[User]),
    shown: Shown<'_>,
) -> Response {
    let status = if shown.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    pages::html(
        status,
        &ProfilePage {
            org_name: &org.name,
            username: &me.username,
            message: shown.message,
            users: users
                .iter()
                .filter(|u| u.profile.eq_ignore_ascii_case(&profile.name))
                .count(),
            csrf: csrf_token(s, sid),
            action: href(profile),
            apps: apps
                .iter()
                .map(|a| {
                    let admits = a.admits_profile(&profile.name);
                    (a.id.to18(), a.name.clone(), admits)
                })
                .collect(),
            ip_ranges: shown.form.ip_ranges.clone(),
            restrict_hours: shown.form.restrict_hours,
            days: DAY_LABELS
                .iter()
                .zip(idforce_core::login_policy::WEEKDAYS)
                .zip(shown.form.windows.iter())
                .map(|((label, day), w)| (*label, day, w.clone()))
                .collect(),
            time_zone: &org.time_zone,
            restrictions_error: shown.error,
            profile,
        },
    )
}

/// Saves the profile's Connected App Access: exactly the apps ticked admit it.
pub async fn save_access(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let wanted = req.params.get("profile").map(str::to_owned);
    let page = format!("{PAGE}?profile={}", wanted.as_deref().unwrap_or_default());
    let (sid, me, org) = match posted(&s, &req, &page).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let profile = match org_profile(&s, &org, wanted.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(PROFILES, "Profiles"),
        Err(answer) => return answer,
    };
    if req.params.get("section") == Some("restrictions") {
        return save_restrictions(&s, &req, &sid, (&me, &org), profile).await;
    }
    let allowed: Vec<SfId> = req
        .params
        .pairs()
        .filter(|(k, _)| *k == "app")
        .filter_map(|(_, v)| SfId::parse(v).ok())
        .collect();
    let now = s.clock.now();
    match ops::set_app_access(s.store.as_ref(), &profile, &allowed, &actor(&me), now).await {
        Ok(_) => see_other(&format!("{}&done=saved", href(&profile))),
        Err(_) => unavailable(),
    }
}

/// Saves the profile's Login IP Ranges and Login Hours (the config's rules, `profiles::restrict`);
/// a mistake shows the form again as it was submitted, with what is wrong.
async fn save_restrictions(
    s: &AppState,
    req: &request::OAuthRequest,
    sid: &str,
    (me, org): (&User, &Org),
    profile: Profile,
) -> Response {
    let form = RestrictionsForm::parse(&req.params);
    let ranges: Vec<String> = form
        .ip_ranges
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut days = std::collections::BTreeMap::new();
    if form.restrict_hours {
        for (day, w) in idforce_core::login_policy::WEEKDAYS
            .iter()
            .zip(&form.windows)
        {
            if !w.is_empty() {
                days.insert((*day).to_owned(), w.clone());
            }
        }
    }
    let before = RestrictionsForm::of(&profile);
    // Restricting hours with no day filled in would lock everyone out for good: refused.
    let restricted = if form.restrict_hours && days.is_empty() {
        Err("Give at least one day login hours, or untick Restrict login hours.".to_owned())
    } else {
        let restricted = crate::profiles::restrict(
            s.store.as_ref(),
            profile.clone(),
            Some(&ranges),
            Some(&days),
        )
        .await;
        match restricted {
            Ok(p) => Ok(p),
            Err(crate::seed::SeedError::Store(_)) => return unavailable(),
            Err(e) => Err(e.to_string()),
        }
    };
    let (Ok(mut apps), Ok(users)) = (
        s.store.apps(Some(&org.id)).await,
        s.store.users(Some(&org.id)).await,
    ) else {
        return unavailable();
    };
    apps.retain(|a| !a.is_builtin());
    apps.sort_by_key(|a| a.name.to_lowercase());
    match restricted {
        Ok(saved) => {
            let after = RestrictionsForm::of(&saved);
            let action = format!(
                "Changed the login restrictions of profile {:?}: IP ranges [{}], login hours [{}]",
                saved.name,
                after.ip_ranges.replace('\n', ", "),
                saved.login_hours.map(|h| h.describe()).unwrap_or_default()
            );
            if after.ip_ranges != before.ip_ranges
                || after.windows != before.windows
                || after.restrict_hours != before.restrict_hours
            {
                crate::operations::audit(
                    s.store.as_ref(),
                    Some(org.id),
                    &actor(me),
                    ops::SECTION,
                    action,
                    s.clock.now(),
                )
                .await;
            }
            see_other(&format!("{}&done=saved", href(&saved)))
        }
        Err(why) => {
            let shown = Shown {
                message: None,
                error: Some(why),
                form: &form,
            };
            profile_page(s, sid, (me, org), &profile, (&apps, &users), shown)
        }
    }
}
