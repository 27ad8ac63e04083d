//! Setup's connected app pages: Manage Connected Apps, New / Edit, and each app's Manage page
//! with Edit Policies, Manage Profiles and Manage Consumer Details.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use idforce_core::model::{ConnectedApp, Org, PermittedUsers, RefreshTokenPolicy, User};
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token;

use super::{
    CONNECTED_APP, CONNECTED_APPS, actor, admin, admin_session, csrf_token, not_found, posted,
    see_other, unavailable,
};
use crate::app_form::{AppForm, FieldError, SCOPE_OPTIONS};
use crate::config::{AppSpec, ConfigFile};
use crate::http::pages;
use crate::http::request;
use crate::operations::{self, app_view, changes};
use crate::seed;
use crate::state::AppState;

/// New Connected App (GET the form, POST it).
pub const NEW: &str = "/lightning/setup/ConnectedApplication/new";
/// Edit an app's settings (`?app=<id>`).
pub const EDIT: &str = "/lightning/setup/ConnectedApplication/edit";
/// Edit Policies (`?app=<id>`).
pub const POLICIES: &str = "/lightning/setup/ConnectedApplication/policies";
/// Manage Profiles (`?app=<id>`).
pub const PROFILES: &str = "/lightning/setup/ConnectedApplication/profiles";
/// Manage the pre-authorized users (`?app=<id>`).
pub const USERS: &str = "/lightning/setup/ConnectedApplication/users";
/// Manage Consumer Details (`?app=<id>`).
pub const CONSUMER: &str = "/lightning/setup/ConnectedApplication/consumer";
/// The audit trail's section for these pages.
const SECTION: &str = "Connected Apps";

pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

fn permitted_label(p: PermittedUsers) -> &'static str {
    match p {
        PermittedUsers::AllUsers => "All users may self-authorize",
        PermittedUsers::AdminApproved => "Admin approved users are pre-authorized",
    }
}

fn span(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0) as u64)).to_string()
}

/// Salesforce's words for a refresh token policy.
fn refresh_policy_label(p: RefreshTokenPolicy) -> String {
    match p {
        RefreshTokenPolicy::UntilRevoked => "Refresh token is valid until revoked".to_owned(),
        RefreshTokenPolicy::Immediately => "Immediately expire refresh token".to_owned(),
        RefreshTokenPolicy::ExpireIfUnused(s) => {
            format!("Expire refresh token if not used for {}", span(s))
        }
        RefreshTokenPolicy::ExpireAfter(s) => format!("Expire refresh token after {}", span(s)),
    }
}

fn href(page: &str, app: &ConnectedApp) -> String {
    format!("{page}?app={}", app.id.to18())
}

/// The app of the admin's org named by `app=<id>`, read fresh: a change saves the whole app,
/// and a copy from the directory cache could be a second old (a change made meanwhile by the
/// CLI or another node would be undone).
pub(super) async fn org_app(
    s: &AppState,
    org: &Org,
    id: Option<&str>,
) -> Result<Option<ConnectedApp>, Response> {
    let Some(id) = id.and_then(|a| SfId::parse(a).ok()) else {
        return Ok(None);
    };
    match s.store.apps(Some(&org.id)).await {
        Ok(apps) => Ok(apps.into_iter().find(|a| a.id == id && !a.is_builtin())),
        Err(_) => Err(unavailable()),
    }
}

/// The admin, their org and the app a page names, or the answer instead.
async fn admin_and_app(
    s: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    app: Option<&str>,
) -> Result<
    (
        String,
        std::sync::Arc<User>,
        std::sync::Arc<Org>,
        ConnectedApp,
    ),
    Response,
> {
    let (sid, user, org) = admin_session(s, headers, uri).await?;
    match org_app(s, &org, app).await? {
        Some(app) => Ok((sid, user, org, app)),
        None => Err(not_found(CONNECTED_APPS, "Manage Connected Apps")),
    }
}

struct AppRow {
    name: String,
    client_id: String,
    permitted: &'static str,
    status: &'static str,
    manage_href: String,
    edit_href: String,
}

#[derive(Template)]
#[template(path = "setup_apps.html")]
struct AppsPage<'a> {
    org_name: &'a str,
    username: &'a str,
    apps: Vec<AppRow>,
}

/// Manage Connected Apps: the org's apps, by name.
pub async fn list(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (user, org) = match admin(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(mut apps) = s.store.apps(Some(&org.id)).await else {
        return unavailable();
    };
    // The org's built-in SOAP app is idforce's own, not the admin's to edit.
    apps.retain(|a| !a.is_builtin());
    apps.sort_by_key(|a| a.name.to_lowercase());
    let apps = apps
        .iter()
        .map(|a| AppRow {
            name: a.name.clone(),
            client_id: if a.oauth_enabled {
                a.client_id.clone()
            } else {
                String::new()
            },
            permitted: permitted_label(a.permitted_users),
            status: if a.blocked { "Blocked" } else { "Active" },
            manage_href: href(CONNECTED_APP, a),
            edit_href: href(EDIT, a),
        })
        .collect();
    pages::html(
        StatusCode::OK,
        &AppsPage {
            org_name: &org.name,
            username: &user.username,
            apps,
        },
    )
}

#[derive(Template)]
#[template(path = "setup_app.html")]
struct ManagePage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    message: Option<&'static str>,
    scopes: Vec<String>,
    certificate: String,
    client_credentials: String,
    permitted: &'static str,
    refresh_policy: String,
    timeout: String,
    users: Vec<String>,
    edit_href: String,
    policies_href: String,
    profiles_href: String,
    users_href: String,
    consumer_href: String,
    /// The app that registered this one (RFC 7591), by name, and its page.
    registered_by: Option<(String, String)>,
    /// Keys registered for `private_key_jwt`, as Setup says it.
    client_keys: String,
    /// "Enable Token Exchange Flow", as Setup says it (with the handlers).
    token_exchange: String,
    /// "Enable Asset Tokens", as Setup says it (with the lifetime, audiences and signer).
    asset_tokens: String,
}

impl ManagePage<'_> {
    fn yes_no(&self, b: &bool) -> &'static str {
        yes_no(*b)
    }
}

/// A connected app's Manage page. An app of another org is as unknown as a missing one.
pub async fn manage(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (_, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    let username = |id: &SfId| {
        users
            .iter()
            .find(|u| u.id == *id)
            .map(|u| u.username.clone())
    };
    let certificate = match &app.certificate_der {
        Some(der) => format!(
            "Yes (SHA-256 {})",
            idforce_core::certificate::fingerprint(der)
        ),
        None => "No".to_owned(),
    };
    let client_credentials = match app.run_as.as_ref().and_then(username) {
        Some(run_as) => format!("Yes, run as {run_as}"),
        None => "No".to_owned(),
    };
    let registered_by = match &app.registration {
        Some(r) => {
            let parent = s.store.app(&r.parent).await.ok().flatten();
            Some(match parent {
                Some(p) => (p.name.clone(), href(CONNECTED_APP, &p)),
                None => (r.parent.to18(), String::new()),
            })
        }
        None => None,
    };
    let client_keys = match (&app.jwks, &app.jwks_uri) {
        (Some(_), _) => "A JWK Set registered with the app".to_owned(),
        (None, Some(uri)) => format!("The JWK Set at {uri}"),
        (None, None) => "None".to_owned(),
    };
    let (token_exchange, asset_tokens) = exchange_labels(&app);
    let message = match request::query_param(uri.query(), "done").as_deref() {
        Some("created") => Some(
            "Your connected app is saved. Its consumer key and secret are under Manage \
             Consumer Details.",
        ),
        Some("saved") => Some("Your changes are saved and in force."),
        _ => None,
    };
    pages::html(
        StatusCode::OK,
        &ManagePage {
            org_name: &org.name,
            username: &user.username,
            message,
            scopes: app.scopes.iter().map(pages::scope_label).collect(),
            certificate,
            client_credentials,
            permitted: permitted_label(app.permitted_users),
            refresh_policy: refresh_policy_label(app.refresh_token_policy),
            timeout: span(app.session_timeout_secs),
            users: app
                .pre_authorized_users
                .iter()
                .filter_map(username)
                .collect(),
            edit_href: href(EDIT, &app),
            policies_href: href(POLICIES, &app),
            profiles_href: href(PROFILES, &app),
            users_href: href(USERS, &app),
            consumer_href: href(CONSUMER, &app),
            registered_by,
            client_keys,
            token_exchange,
            asset_tokens,
            app: &app,
        },
    )
}

/// How the Manage page says an app's token exchange and asset token settings.
fn exchange_labels(app: &ConnectedApp) -> (String, String) {
    let t = &app.token_exchange;
    let exchange = match (t.enabled, t.handlers.as_slice()) {
        (false, _) => "No".to_owned(),
        (true, []) => "Yes, for this org's own tokens (no handler)".to_owned(),
        (true, [only]) => format!("Yes, handler {only}"),
        (true, [default, rest @ ..]) => {
            format!("Yes, handlers {default} (default), {}", rest.join(", "))
        }
    };
    let assets = match &t.asset_tokens {
        None => "No".to_owned(),
        Some(a) => {
            let audiences = match a.audiences.as_slice() {
                [] => "this server".to_owned(),
                list => list.join(", "),
            };
            let signer = match &a.certificate_der {
                Some(der) => format!(
                    "the app's certificate (SHA-256 {})",
                    idforce_core::certificate::fingerprint(der)
                ),
                None => "the org's keys (/id/keys)".to_owned(),
            };
            format!(
                "Yes: valid for {}, for {audiences}, signed with {signer}",
                span(a.lifetime_secs)
            )
        }
    };
    (exchange, assets)
}

struct ScopeChoice {
    key: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "setup_app_form.html")]
struct FormPage<'a> {
    org_name: &'a str,
    username: &'a str,
    title: &'static str,
    action: String,
    cancel_href: String,
    csrf: String,
    form: &'a AppForm,
    scopes: Vec<ScopeChoice>,
    /// Usernames a client-credentials app may run as, each with whether it is chosen.
    run_as: Vec<(String, bool)>,
    has_certificate: bool,
    errors: &'a [FieldError],
    failure: Option<String>,
}

impl FormPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        crate::app_form::message_for(self.errors, field)
    }
}

struct FormContext<'a> {
    s: &'a AppState,
    sid: &'a str,
    user: &'a User,
    org: &'a Org,
    editing: Option<&'a ConnectedApp>,
}

fn form_page(
    c: &FormContext<'_>,
    users: &[User],
    form: &AppForm,
    errors: &[FieldError],
    failure: Option<String>,
) -> Response {
    let status = super::form_status(errors.is_empty() && failure.is_none());
    let (title, action, cancel_href) = match c.editing {
        Some(app) => (
            "Edit Connected App",
            href(EDIT, app),
            href(CONNECTED_APP, app),
        ),
        None => (
            "New Connected App",
            NEW.to_owned(),
            CONNECTED_APPS.to_owned(),
        ),
    };
    let mut run_as: Vec<(String, bool)> = users
        .iter()
        .filter(|u| u.active)
        .map(|u| {
            let chosen = u.username.eq_ignore_ascii_case(&form.run_as);
            (u.username.clone(), chosen)
        })
        .collect();
    run_as.sort();
    pages::html(
        status,
        &FormPage {
            org_name: &c.org.name,
            username: &c.user.username,
            title,
            action,
            cancel_href,
            csrf: csrf_token(c.s, c.sid),
            form,
            scopes: SCOPE_OPTIONS
                .iter()
                .map(|o| ScopeChoice {
                    key: o.key,
                    label: o.label,
                    checked: form.scopes.iter().any(|k| k == o.key),
                })
                .collect(),
            run_as,
            has_certificate: c.editing.is_some_and(|a| a.certificate_der.is_some()),
            errors,
            failure,
        },
    )
}

/// New Connected App: the empty form, with Salesforce's defaults ticked.
pub async fn new_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (sid, user, org) = match admin_session(&s, &headers, &uri).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    let c = FormContext {
        s: &s,
        sid: &sid,
        user: &user,
        org: &org,
        editing: None,
    };
    form_page(&c, &users, &AppForm::blank(), &[], None)
}

/// Edit: the form filled in from the app.
pub async fn edit_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (sid, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    let run_as = app
        .run_as
        .and_then(|id| users.iter().find(|u| u.id == id))
        .map(|u| u.username.as_str());
    let form = AppForm::of(&app, run_as);
    let c = FormContext {
        s: &s,
        sid: &sid,
        user: &user,
        org: &org,
        editing: Some(&app),
    };
    form_page(&c, &users, &form, &[], None)
}

/// Saves New or Edit: every field checked first (each error beside its field, the form as
/// typed), then the same update the config file and `idforce app update` make.
pub async fn save(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let wanted = req.params.get("app").map(str::to_owned);
    let page = match &wanted {
        Some(id) => format!("{EDIT}?app={id}"),
        None => NEW.to_owned(),
    };
    let (sid, user, org) = match posted(&s, &req, &page).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (Ok(apps), Ok(users)) = (
        s.store.apps(Some(&org.id)).await,
        s.store.users(Some(&org.id)).await,
    ) else {
        return unavailable();
    };
    let editing = match &wanted {
        Some(id) => match apps
            .iter()
            .find(|a| (a.id.to18() == *id || a.id.as15() == id) && !a.is_builtin())
        {
            Some(app) => Some(app.clone()),
            None => return not_found(CONNECTED_APPS, "Manage Connected Apps"),
        },
        None => None,
    };
    let others: Vec<ConnectedApp> = apps
        .into_iter()
        .filter(|a| editing.as_ref().is_none_or(|e| e.id != a.id))
        .collect();
    let form = AppForm::parse(&req.params);
    let c = FormContext {
        s: &s,
        sid: &sid,
        user: &user,
        org: &org,
        editing: editing.as_ref(),
    };
    let spec = match form.check(editing.as_ref(), &others, &users) {
        Ok(spec) => spec,
        Err(errors) => return form_page(&c, &users, &form, &errors, None),
    };
    let created = editing.is_none();
    let (mut app, before) = match editing.clone() {
        Some(app) => {
            let before = app_view(&app);
            (app, Some(before))
        }
        None => match new_app(&s, &org, &form).await {
            Ok(app) => (app, None),
            Err(answer) => return answer,
        },
    };
    app.name = form.name.clone();
    if let Err(e) = apply(&s, &mut app, &spec).await {
        tracing::info!(cause = %e, "Setup could not save a connected app");
        return form_page(&c, &users, &form, &[], Some(e));
    }
    if s.store.save_app(&app).await.is_err() {
        return unavailable();
    }
    let now = s.clock.now();
    if let Err(e) = crate::profiles::backfill(s.store.as_ref(), now).await {
        tracing::warn!(error = %e, "the app's profiles are not all listed yet");
    }
    let action = match before {
        None => format!("Created connected app {:?}", app.name),
        Some(before) => format!(
            "Changed connected app {:?}: {}",
            app.name,
            changes(&before, &app_view(&app))
        ),
    };
    operations::audit(
        s.store.as_ref(),
        Some(app.org_id),
        &actor(&user),
        SECTION,
        action,
        now,
    )
    .await;
    let done = if created { "created" } else { "saved" };
    see_other(&format!("{}&done={done}", href(CONNECTED_APP, &app)))
}

/// A new app of the org with a fresh consumer key and secret (the secret is shown under
/// Manage Consumer Details, after the admin's password).
async fn new_app(s: &AppState, org: &Org, form: &AppForm) -> Result<ConnectedApp, Response> {
    let Ok(id) = s.store.next_id(prefix::CONNECTED_APP).await else {
        return Err(unavailable());
    };
    let scopes = idforce_core::scope::Scopes::parse("api").map_err(|_| unavailable())?;
    let mut app = ConnectedApp::new(
        id,
        org.id,
        form.name.clone(),
        token::mint_client_id(),
        scopes,
    );
    seed::set_client_secret(
        &mut app,
        &token::mint_client_secret(),
        &s.hasher,
        &s.secrets,
    );
    Ok(app)
}

/// Applies a checked change with the rules the config file and the CLI use.
async fn apply(s: &AppState, app: &mut ConnectedApp, spec: &AppSpec) -> Result<(), String> {
    let here = ConfigFile {
        base_dir: ".".into(),
        ..Default::default()
    };
    seed::update_app(s.store.as_ref(), &s.hasher, &s.secrets, app, spec, &here)
        .await
        .map_err(|e| e.to_string())
}

/// Timeout Value choices (Salesforce's list), in seconds.
const TIMEOUTS: &[(i64, &str)] = &[
    (15 * 60, "15 minutes"),
    (30 * 60, "30 minutes"),
    (3600, "1 hour"),
    (2 * 3600, "2 hours"),
    (4 * 3600, "4 hours"),
    (8 * 3600, "8 hours"),
    (12 * 3600, "12 hours"),
    (24 * 3600, "24 hours"),
];

/// Units of the refresh token policy's spans, as `humantime` reads them (minutes beyond
/// Salesforce's three, for spans the config file gives in minutes).
const UNITS: &[(&str, &str, i64)] = &[
    ("minutes", "Minute(s)", 60),
    ("hours", "Hour(s)", 3600),
    ("days", "Day(s)", 86_400),
    ("months", "Month(s)", 2_630_016),
];

/// A span as a count of the largest unit that divides it.
fn count_and_unit(secs: i64) -> (i64, &'static str) {
    UNITS
        .iter()
        .rev()
        .find(|(_, _, n)| secs > 0 && secs % n == 0)
        .map_or((secs.max(0) / 60, "minutes"), |(u, _, n)| (secs / n, *u))
}

/// Timeout Value's choices: Salesforce's, and the app's own if it is none of them.
fn timeouts(app: &ConnectedApp) -> Vec<(String, String)> {
    let mut choices: Vec<(i64, String)> = TIMEOUTS
        .iter()
        .map(|(secs, label)| (*secs, (*label).to_owned()))
        .collect();
    if !TIMEOUTS.iter().any(|(s, _)| *s == app.session_timeout_secs) {
        choices.push((app.session_timeout_secs, span(app.session_timeout_secs)));
        choices.sort_by_key(|(s, _)| *s);
    }
    choices
        .into_iter()
        .map(|(s, label)| (s.to_string(), label))
        .collect()
}

/// Edit Policies as typed.
#[derive(Default)]
struct PoliciesForm {
    permitted: String,
    refresh: String,
    unused_count: String,
    unused_unit: String,
    after_count: String,
    after_unit: String,
    timeout: String,
    ip_relaxation: String,
}

impl PoliciesForm {
    fn of(app: &ConnectedApp) -> PoliciesForm {
        let (refresh, unused, after) = match app.refresh_token_policy {
            RefreshTokenPolicy::UntilRevoked => ("until_revoked", None, None),
            RefreshTokenPolicy::Immediately => ("immediately", None, None),
            RefreshTokenPolicy::ExpireIfUnused(s) => ("expire_if_unused", Some(s), None),
            RefreshTokenPolicy::ExpireAfter(s) => ("expire_after", None, Some(s)),
        };
        let split = |s: Option<i64>| {
            s.map_or((String::new(), "days".to_owned()), |s| {
                let (n, u) = count_and_unit(s);
                (n.to_string(), u.to_owned())
            })
        };
        let (unused_count, unused_unit) = split(unused);
        let (after_count, after_unit) = split(after);
        PoliciesForm {
            permitted: app.permitted_users.as_str().to_owned(),
            refresh: refresh.to_owned(),
            unused_count,
            unused_unit,
            after_count,
            after_unit,
            timeout: app.session_timeout_secs.to_string(),
            ip_relaxation: app.ip_relaxation.as_str().to_owned(),
        }
    }

    fn parse(p: &idforce_core::wire::Params) -> PoliciesForm {
        let text = |k: &str| p.get(k).unwrap_or_default().trim().to_owned();
        PoliciesForm {
            permitted: text("permitted_users"),
            refresh: text("refresh_token_policy"),
            unused_count: text("unused_count"),
            unused_unit: text("unused_unit"),
            after_count: text("after_count"),
            after_unit: text("after_unit"),
            timeout: text("timeout"),
            ip_relaxation: text("ip_relaxation"),
        }
    }

    /// The change to make, or each field's error. What is submitted as the page showed it
    /// keeps the app's exact value (a config file's `90s` timeout or `5400s` span, which the
    /// form's lists cannot name, is not rounded by a save that did not touch it).
    fn check(&self, app: &ConnectedApp) -> Result<AppSpec, Vec<FieldError>> {
        let shown = PoliciesForm::of(app);
        let mut errors = Vec::new();
        let err = |field, message: &str| FieldError {
            field,
            message: message.to_owned(),
        };
        if PermittedUsers::parse(&self.permitted).is_none() {
            errors.push(err("permitted_users", "Choose who may use the app."));
        }
        let span = |count: &str, unit: &str, field: &'static str| match (
            count.parse::<u32>(),
            UNITS.iter().find(|(u, _, _)| *u == unit),
        ) {
            (Ok(n), Some((u, _, _))) if (1..=999).contains(&n) => Ok(format!("{n}{u}")),
            _ => Err(err(field, "Enter a whole number from 1 to 999.")),
        };
        let unchanged = self.refresh == shown.refresh
            && match self.refresh.as_str() {
                "expire_if_unused" => {
                    (&self.unused_count, &self.unused_unit)
                        == (&shown.unused_count, &shown.unused_unit)
                }
                "expire_after" => {
                    (&self.after_count, &self.after_unit) == (&shown.after_count, &shown.after_unit)
                }
                _ => true,
            };
        let policy = match self.refresh.as_str() {
            _ if unchanged => Some(app.refresh_token_policy.to_string()),
            "until_revoked" | "immediately" => Some(self.refresh.clone()),
            "expire_if_unused" => span(&self.unused_count, &self.unused_unit, "unused_count")
                .map_err(|e| errors.push(e))
                .ok()
                .map(|s| format!("expire_if_unused:{s}")),
            "expire_after" => span(&self.after_count, &self.after_unit, "after_count")
                .map_err(|e| errors.push(e))
                .ok()
                .map(|s| format!("expire_after:{s}")),
            _ => {
                errors.push(err(
                    "refresh_token_policy",
                    "Choose a refresh token policy.",
                ));
                None
            }
        };
        let timeout = self
            .timeout
            .parse::<i64>()
            .ok()
            .filter(|t| *t == app.session_timeout_secs || TIMEOUTS.iter().any(|(s, _)| s == t));
        if timeout.is_none() {
            errors.push(err("timeout", "Choose a timeout value."));
        }
        // A form without the field (a script posting the older form) leaves it as it is.
        let relaxation = Some(self.ip_relaxation.clone()).filter(|r| !r.is_empty());
        if relaxation
            .as_deref()
            .is_some_and(|r| idforce_core::login_policy::IpRelaxation::parse(r).is_none())
        {
            errors.push(err("ip_relaxation", "Choose an IP relaxation."));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AppSpec {
            permitted_users: Some(self.permitted.clone()),
            refresh_token_policy: policy,
            session_timeout: timeout.map(|t| format!("{t}s")),
            ip_relaxation: relaxation,
            ..AppSpec::default()
        })
    }
}

#[derive(Template)]
#[template(path = "setup_app_policies.html")]
struct PoliciesPage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    action: String,
    cancel_href: String,
    csrf: String,
    form: &'a PoliciesForm,
    timeouts: Vec<(String, String)>,
    units: &'static [(&'static str, &'static str, i64)],
    /// IP Relaxation's values and Salesforce's words for them.
    relaxations: Vec<(&'static str, &'static str)>,
    errors: &'a [FieldError],
}

impl PoliciesPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        crate::app_form::message_for(self.errors, field)
    }
}

fn policies_page(
    s: &AppState,
    sid: &str,
    (user, org): (&User, &Org),
    app: &ConnectedApp,
    form: &PoliciesForm,
    errors: &[FieldError],
) -> Response {
    let status = super::form_status(errors.is_empty());
    pages::html(
        status,
        &PoliciesPage {
            org_name: &org.name,
            username: &user.username,
            app,
            action: href(POLICIES, app),
            cancel_href: href(CONNECTED_APP, app),
            csrf: csrf_token(s, sid),
            form,
            timeouts: timeouts(app),
            units: UNITS,
            relaxations: {
                use idforce_core::login_policy::IpRelaxation::*;
                [Enforce, Bypass2fa, Bypass, EnforceRelaxRefresh]
                    .iter()
                    .map(|r| (r.as_str(), r.label()))
                    .collect()
            },
            errors,
        },
    )
}

/// Edit Policies: Permitted Users, Refresh Token Policy, Timeout Value.
pub async fn policies_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (sid, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let form = PoliciesForm::of(&app);
    policies_page(&s, &sid, (&user, &org), &app, &form, &[])
}

pub async fn policies_save(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (sid, user, org, mut app) = match posted_app(&s, &req, POLICIES).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let form = PoliciesForm::parse(&req.params);
    let spec = match form.check(&app) {
        Ok(spec) => spec,
        Err(errors) => return policies_page(&s, &sid, (&user, &org), &app, &form, &errors),
    };
    save_change(&s, &user, &mut app, &spec).await
}

/// A POST of one of an app's Manage forms at `page` (`app=<id>` in the form or query): the
/// admin, their org and the app (read fresh), once the CSRF token is checked.
async fn posted_app(
    s: &AppState,
    req: &request::OAuthRequest,
    page: &str,
) -> Result<
    (
        String,
        std::sync::Arc<User>,
        std::sync::Arc<Org>,
        ConnectedApp,
    ),
    Response,
> {
    let wanted = req.params.get("app");
    let back = format!("{page}?app={}", wanted.unwrap_or_default());
    let (sid, user, org) = posted(s, req, &back).await?;
    match org_app(s, &org, wanted).await? {
        Some(app) => Ok((sid, user, org, app)),
        None => Err(not_found(CONNECTED_APPS, "Manage Connected Apps")),
    }
}

/// Saves a checked change of an existing app, records it, and goes back to its Manage page.
async fn save_change(
    s: &AppState,
    user: &User,
    app: &mut ConnectedApp,
    spec: &AppSpec,
) -> Response {
    let before = app_view(app);
    if let Err(e) = apply(s, app, spec).await {
        // The pages check every value first: what is left is the store's.
        tracing::warn!(cause = %e, "Setup could not apply a checked change");
        return unavailable();
    }
    if s.store.save_app(app).await.is_err() {
        return unavailable();
    }
    let action = format!(
        "Changed connected app {:?}: {}",
        app.name,
        changes(&before, &app_view(app))
    );
    operations::audit(
        s.store.as_ref(),
        Some(app.org_id),
        &actor(user),
        SECTION,
        action,
        s.clock.now(),
    )
    .await;
    see_other(&format!("{}&done=saved", href(CONNECTED_APP, app)))
}

#[derive(Template)]
#[template(path = "setup_app_profiles.html")]
struct ProfilesPage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    action: String,
    cancel_href: String,
    csrf: String,
    /// Each profile of the org with whether the app admits it.
    profiles: Vec<(String, bool)>,
}

/// Manage Profiles: which of the org's profiles the app admits (pre-authorizes, for an
/// admin-approved app).
pub async fn profiles_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (sid, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(profiles) = s.store.profiles(Some(&org.id)).await else {
        return unavailable();
    };
    let mut profiles: Vec<(String, bool)> = profiles
        .iter()
        .map(|p| (p.name.clone(), app.admits_profile(&p.name)))
        .collect();
    profiles.sort_by_key(|(name, _)| name.to_lowercase());
    pages::html(
        StatusCode::OK,
        &ProfilesPage {
            org_name: &org.name,
            username: &user.username,
            action: href(PROFILES, &app),
            cancel_href: href(CONNECTED_APP, &app),
            csrf: csrf_token(&s, &sid),
            profiles,
            app: &app,
        },
    )
}

pub async fn profiles_save(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (_, user, org, mut app) = match posted_app(&s, &req, PROFILES).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(profiles) = s.store.profiles(Some(&org.id)).await else {
        return unavailable();
    };
    // Only the org's profiles: a name that is not one is ignored, not created.
    let chosen: Vec<String> = profiles
        .iter()
        .filter(|p| {
            req.params
                .pairs()
                .any(|(k, v)| k == "profile" && v.eq_ignore_ascii_case(&p.name))
        })
        .map(|p| p.name.clone())
        .collect();
    let spec = AppSpec {
        profiles: Some(chosen),
        ..AppSpec::default()
    };
    save_change(&s, &user, &mut app, &spec).await
}

#[derive(Template)]
#[template(path = "setup_app_users.html")]
struct UsersPage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    action: String,
    cancel_href: String,
    csrf: String,
    /// Each active user of the org (id, username, name) with whether the app pre-authorizes them.
    users: Vec<(String, String, String, bool)>,
}

/// The users an app pre-authorizes by name (besides its profiles'), as checkboxes.
pub async fn users_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (sid, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(mut users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    users.retain(|u| u.active || app.pre_authorized_users.contains(&u.id));
    users.sort_by_key(|u| u.username.to_lowercase());
    pages::html(
        StatusCode::OK,
        &UsersPage {
            org_name: &org.name,
            username: &user.username,
            action: href(USERS, &app),
            cancel_href: href(CONNECTED_APP, &app),
            csrf: csrf_token(&s, &sid),
            users: users
                .iter()
                .map(|u| {
                    let chosen = app.pre_authorized_users.contains(&u.id);
                    (u.id.to18(), u.username.clone(), u.display_name(), chosen)
                })
                .collect(),
            app: &app,
        },
    )
}

pub async fn users_save(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (_, user, org, mut app) = match posted_app(&s, &req, USERS).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(users) = s.store.users(Some(&org.id)).await else {
        return unavailable();
    };
    // Only the org's users: an id that is not one is ignored.
    let chosen: Vec<String> = users
        .iter()
        .filter(|u| {
            req.params
                .pairs()
                .any(|(k, v)| k == "user" && SfId::parse(v).is_ok_and(|id| id == u.id))
        })
        .map(|u| u.username.clone())
        .collect();
    let spec = AppSpec {
        pre_authorized_users: Some(chosen),
        ..AppSpec::default()
    };
    save_change(&s, &user, &mut app, &spec).await
}

#[derive(Template)]
#[template(path = "setup_consumer.html")]
struct ConsumerPage<'a> {
    org_name: &'a str,
    username: &'a str,
    app: &'a ConnectedApp,
    action: String,
    back_href: String,
    csrf: String,
    /// The secret, once the admin's password is checked.
    secret: Option<String>,
    /// The initial access token, shown with the secret.
    initial_access_token: Option<String>,
    /// What was just generated, said above what is shown.
    generated: Option<&'static str>,
    password_error: Option<&'static str>,
    failure: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn consumer_page(
    s: &AppState,
    sid: &str,
    (user, org): (&User, &Org),
    app: &ConnectedApp,
    secret: Option<String>,
    generated: Option<&'static str>,
    password_error: Option<&'static str>,
    failure: Option<String>,
) -> Response {
    let initial_access_token = secret.as_ref().and_then(|_| {
        crate::operations::registration::reveal_initial_access_token(&s.secrets, app)
    });
    let status = super::form_status(password_error.is_none());
    pages::html(
        status,
        &ConsumerPage {
            org_name: &org.name,
            username: &user.username,
            action: href(CONSUMER, app),
            back_href: href(CONNECTED_APP, app),
            csrf: csrf_token(s, sid),
            app,
            secret,
            initial_access_token,
            generated,
            password_error,
            failure,
        },
    )
}

/// Manage Consumer Details: the consumer key, and the secret once the admin's password is
/// given again (Salesforce emails a verification code; idforce has no mail yet).
pub async fn consumer_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let wanted = request::query_param(uri.query(), "app");
    let (sid, user, org, app) = match admin_and_app(&s, &headers, &uri, wanted.as_deref()).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    consumer_page(&s, &sid, (&user, &org), &app, None, None, None, None)
}

/// `action=reveal` shows the secret, `action=generate` replaces it (and shows the new one);
/// both after the admin's password, checked as a login is (failures count toward lockout).
pub async fn consumer_action(State(s): State<AppState>, req: Request) -> Response {
    let req = request::read(req).await;
    let (sid, user, org, mut app) = match posted_app(&s, &req, CONSUMER).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let who = (user.as_ref(), org.as_ref());
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(&req.headers, req.peer, &ring, req.entry());
    let password = req.params.get("password").unwrap_or_default();
    match idforce_core::grant::check_login(&ctx, &user.username, password).await {
        Ok(_) => {}
        Err(e) => {
            tracing::info!(cause = ?e.cause(), "Manage Consumer Details: the password was refused");
            let said = "Your password is incorrect, or you are locked out.";
            return consumer_page(&s, &sid, who, &app, None, None, Some(said), None);
        }
    }
    if req.params.get("action") == Some("generate_initial_access_token") {
        let t = token::mint_client_secret();
        crate::operations::registration::set_initial_access_token(
            &mut app, &t, &s.hasher, &s.secrets,
        );
        let action = format!(
            "Generated an initial access token for connected app {:?}",
            app.name
        );
        if !save_and_audit(&s, &user, &app, action).await {
            return unavailable();
        }
        let said = "A new initial access token is generated: the old one no longer registers \
                    apps. Copy this one now.";
        let secret = operations::reveal_secret(&s.secrets, &app).unwrap_or_default();
        return consumer_page(&s, &sid, who, &app, Some(secret), Some(said), None, None);
    }
    let generate = req.params.get("action") == Some("generate");
    if generate {
        let secret = token::mint_client_secret();
        seed::set_client_secret(&mut app, &secret, &s.hasher, &s.secrets);
        let action = format!(
            "Generated a new consumer secret for connected app {:?}",
            app.name
        );
        if !save_and_audit(&s, &user, &app, action).await {
            return unavailable();
        }
        let said = "A new consumer secret is generated: the old one no longer works. Copy this \
                    one now.";
        return consumer_page(&s, &sid, who, &app, Some(secret), Some(said), None, None);
    }
    match operations::reveal_secret(&s.secrets, &app) {
        Ok(secret) => consumer_page(&s, &sid, who, &app, Some(secret), None, None, None),
        // A public app has no secret to show, but may have an initial access token.
        Err(_) if app.secret_digest.is_none() && app.initial_access_token.is_some() => {
            consumer_page(&s, &sid, who, &app, Some(String::new()), None, None, None)
        }
        Err(why) => consumer_page(&s, &sid, who, &app, None, None, None, Some(why)),
    }
}

/// Saves a credential change to the app and records it in the audit trail; false when the
/// store failed (nothing recorded).
async fn save_and_audit(s: &AppState, user: &User, app: &ConnectedApp, action: String) -> bool {
    if s.store.save_app(app).await.is_err() {
        return false;
    }
    operations::audit(
        s.store.as_ref(),
        Some(app.org_id),
        &actor(user),
        SECTION,
        action,
        s.clock.now(),
    )
    .await;
    true
}
