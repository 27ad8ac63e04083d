//! Declarative seeding from the config file, and the demo data of an empty store.
//! Applied at every start: creates or updates what the file names, deletes nothing, and
//! keeps ids and secrets it generated on an earlier start.

use idforce_core::hosts;
use idforce_core::model::{
    ConnectedApp, Millis, Org, PermittedUsers, RefreshTokenPolicy, Site, User,
};
use idforce_core::ports::{StoreError, client_secret_purpose};
use idforce_core::scope::Scopes;
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token::{self, CredentialHasher};
use idforce_store::Backend;

use crate::config::{AppSpec, ConfigError, ConfigFile, OrgSpec, UserSpec, load_certificate};
use crate::passwords;
use crate::secrets::SystemSecret;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Credentials generated while seeding: shown once, since only their digests are stored.
#[derive(Debug, Default)]
pub struct Generated {
    pub lines: Vec<String>,
    /// Existing users whose config password is still to be compared with their stored hash
    /// (`settle_passwords` does it, in parallel, since Argon2 is slow on purpose).
    pub passwords: Vec<(SfId, String)>,
}

const DEFAULT_SCOPES: &[&str] = &["api", "web", "refresh_token", "openid"];

pub async fn apply(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
    cfg: &ConfigFile,
    now: Millis,
) -> Result<Generated, SeedError> {
    let mut generated = Generated::default();
    for org_spec in &cfg.org {
        let mut org = upsert_org(store, org_spec, now)
            .await
            .map_err(|e| e.located(cfg, "name", &org_spec.name))?;
        if !org_spec.token_exchange_handler.is_empty() {
            let mut seen = std::collections::HashSet::new();
            for h in &org_spec.token_exchange_handler {
                if !seen.insert(h.name.trim()) {
                    let why = format!("two token exchange handlers are named {:?}", h.name);
                    return Err(
                        SeedError::from(ConfigError::Invalid(why)).located(cfg, "name", &h.name)
                    );
                }
                let handler = read_handler(h, cfg).map_err(|e| e.located(cfg, "name", &h.name))?;
                match org
                    .token_exchange_handlers
                    .iter_mut()
                    .find(|old| old.name == handler.name)
                {
                    Some(old) => *old = handler,
                    None => org.token_exchange_handlers.push(handler),
                }
            }
            store.save_org(&org).await?;
        }
        for p in &org_spec.profile {
            let profile = crate::profiles::ensure(store, &org.id, &p.name, now).await?;
            crate::profiles::restrict(
                store,
                profile,
                p.login_ip_ranges.as_deref(),
                p.login_hours.as_ref(),
            )
            .await
            .map_err(|e| e.located(cfg, "name", &p.name))?;
        }
        for u in &org_spec.user {
            upsert_user(store, hasher, &org, u, now, &mut generated)
                .await
                .map_err(|e| e.located(cfg, "username", &u.username))?;
        }
        for a in &org_spec.app {
            upsert_app(store, hasher, secrets, &org, a, cfg, &mut generated)
                .await
                .map_err(|e| e.located(cfg, "name", &a.name))?;
        }
    }
    // The profiles its users and apps name.
    crate::profiles::backfill(store, now).await?;
    Ok(generated)
}

impl SeedError {
    /// A config mistake, said at the line of the org, user or app it is in.
    fn located(self, cfg: &ConfigFile, key: &str, value: &str) -> SeedError {
        match self {
            SeedError::Config(e) => SeedError::Config(cfg.locate(key, value, e)),
            other => other,
        }
    }
}

/// Creates or updates the org `spec` names with what it gives (the config file's rules, which
/// `idforce org update` applies too).
pub async fn upsert_org(
    store: &dyn Backend,
    spec: &OrgSpec,
    now: Millis,
) -> Result<Org, SeedError> {
    let wanted_id = spec
        .id
        .as_deref()
        .map(|s| {
            SfId::parse(s)
                .ok()
                .filter(|id| id.is(prefix::ORG))
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "org {:?}: id {s:?} is not an org id (00D…, 15 or 18 characters)",
                        spec.name
                    ))
                })
        })
        .transpose()?;
    let mut org = match store.org_by_name(&spec.name).await? {
        Some(org) => {
            if let Some(id) = wanted_id.filter(|id| *id != org.id) {
                return Err(ConfigError::Invalid(format!(
                    "org {:?} already exists with id {}, not {}",
                    spec.name, org.id, id
                ))
                .into());
            }
            org
        }
        None => Org {
            id: match wanted_id {
                Some(id) => id,
                None => store.next_id(prefix::ORG).await?,
            },
            name: spec.name.clone(),
            instance_url: None,
            created_at: now,
            my_domain: None,
            logout_url: None,
            sites: Vec::new(),
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        },
    };
    if spec.instance_url.is_some() {
        org.instance_url = spec
            .instance_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned());
    }
    let refuse = |key: &str, why: String| {
        SeedError::from(ConfigError::Invalid(format!(
            "org {:?}: {key} {why}",
            spec.name
        )))
    };
    if let Some(d) = &spec.my_domain {
        org.my_domain = match d.trim() {
            "" => None,
            d => Some(hosts::check_my_domain(d).map_err(|why| refuse("my_domain", why))?),
        };
    }
    if let Some(u) = &spec.logout_url {
        org.logout_url = match u.trim() {
            "" => None,
            u if is_web_url(u) => Some(u.to_owned()),
            u => {
                let why = format!("{u:?} is not an http(s) URL");
                return Err(refuse("logout_url", why));
            }
        };
    }
    if let Some(tz) = &spec.time_zone {
        if !idforce_core::login_policy::is_time_zone(tz) {
            return Err(refuse(
                "time_zone",
                format!("{tz:?} is not a time zone (an IANA name, e.g. \"Europe/Paris\")"),
            ));
        }
        org.time_zone = tz.clone();
    }
    let oauth = &mut org.oauth;
    for (given, setting) in [
        (
            spec.allow_username_password_flow,
            &mut oauth.allow_username_password_flow,
        ),
        (spec.allow_user_agent_flow, &mut oauth.allow_user_agent_flow),
        (
            spec.require_pkce_for_all_apps,
            &mut oauth.require_pkce_for_all_apps,
        ),
    ] {
        if let Some(v) = given {
            *setting = v;
        }
    }
    for s in &spec.site {
        let path = hosts::check_site_path(&s.path).map_err(|why| refuse("site path", why))?;
        if s.name.trim().is_empty() {
            return Err(refuse("site", format!("at {path:?} has no name")));
        }
        // A site is known by its name; a new name on a known path renames that site.
        let known = match org.sites.iter().position(|old| old.name == s.name) {
            Some(i) => Some(i),
            None => org.sites.iter().position(|old| old.path == path),
        };
        match known.map(|i| &mut org.sites[i]) {
            Some(old) => {
                old.name = s.name.clone();
                old.path = path;
            }
            None => org.sites.push(Site {
                id: store.next_id(prefix::SITE).await?,
                name: s.name.clone(),
                path,
            }),
        }
    }
    check_site_paths(store, &org).await?;
    match store.save_org(&org).await {
        Ok(()) => Ok(org),
        // A conflict is either the My Domain (a mistake in the file) or a node starting at the
        // same time having created this org first (the start retries against what it wrote).
        Err(StoreError::Conflict(why)) => match &org.my_domain {
            Some(d) if my_domain_is_taken(store, &org, d).await? => {
                Err(refuse("my_domain", format!("{d:?} is another org's")))
            }
            _ => Err(StoreError::Conflict(why).into()),
        },
        Err(other) => Err(other.into()),
    }
}

async fn my_domain_is_taken(
    store: &dyn Backend,
    org: &Org,
    domain: &str,
) -> Result<bool, SeedError> {
    Ok(store
        .orgs()
        .await?
        .iter()
        .any(|o| o.id != org.id && o.my_domain.as_deref() == Some(domain)))
}

/// A site's path names one site on the login host: no two sites, of any orgs, share one.
async fn check_site_paths(store: &dyn Backend, org: &Org) -> Result<(), SeedError> {
    let mut seen = std::collections::HashSet::new();
    for s in &org.sites {
        if !seen.insert(s.path.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "org {:?}: two sites have the path {:?}",
                org.name, s.path
            ))
            .into());
        }
    }
    for other in store.orgs().await?.iter().filter(|o| o.id != org.id) {
        if let Some(s) = other.sites.iter().find(|s| seen.contains(s.path.as_str())) {
            return Err(ConfigError::Invalid(format!(
                "org {:?}: the site path {:?} is org {:?}'s already",
                org.name, s.path, other.name
            ))
            .into());
        }
    }
    Ok(())
}

/// An absolute http(s) URL without spaces (a Logout URL).
pub fn is_web_url(u: &str) -> bool {
    hosts::host_of_url(u).is_some()
        && (u.starts_with("https://") || u.starts_with("http://"))
        && !u.chars().any(char::is_whitespace)
}

pub use idforce_core::authorize::is_callback_url;

fn random_password() -> String {
    // 16 characters from the token alphabet, with a prefix that satisfies common policies.
    let raw = token::mint_client_id();
    format!("Aa1!{}", &raw[5..17])
}

async fn upsert_user(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    org: &Org,
    spec: &UserSpec,
    now: Millis,
    generated: &mut Generated,
) -> Result<User, SeedError> {
    let existing = store.user_by_username(&spec.username).await?;
    if let Some(u) = existing.as_ref().filter(|u| u.org_id != org.id) {
        {
            return Err(ConfigError::Invalid(format!(
                "username {:?} already belongs to another org ({})",
                spec.username, u.org_id
            ))
            .into());
        }
    }
    let is_existing = existing.is_some();
    let mut user = match existing {
        Some(u) => std::sync::Arc::unwrap_or_clone(u),
        None => {
            let password = match &spec.password {
                Some(p) => p.clone(),
                None => {
                    let p = random_password();
                    generated
                        .lines
                        .push(format!("user {}: password {p}", spec.username));
                    p
                }
            };
            User {
                id: store.next_id(prefix::USER).await?,
                org_id: org.id,
                username: spec.username.clone(),
                email: spec.username.clone(),
                first_name: String::new(),
                last_name: String::new(),
                profile: "Standard User".to_owned(),
                active: true,
                password_hash: passwords::hash(&password),
                security_token: None,
                failed_logins: 0,
                locked_until: None,
                created_at: now,
                updated_at: now,
                frozen: false,
                federation_id: None,
            }
        }
    };
    if let (Some(p), true) = (&spec.password, is_existing) {
        generated.passwords.push((user.id, p.clone()));
    }
    if let Some(t) = &spec.security_token {
        user.security_token = Some((hasher.digest(t), t.chars().count()));
    }
    if let Some(v) = &spec.email {
        user.email = v.clone();
    }
    if let Some(v) = &spec.first_name {
        user.first_name = v.clone();
    }
    if let Some(v) = &spec.last_name {
        user.last_name = v.clone();
    }
    if let Some(v) = &spec.profile {
        user.profile = v.clone();
    }
    if let Some(v) = spec.active {
        user.active = v;
    }
    if let Some(v) = &spec.federation_id {
        let holder = crate::operations::users::federation_id_holder(store, &org.id, v).await?;
        if holder.is_some_and(|h| h != user.id) {
            return Err(ConfigError::Invalid(format!(
                "user {:?}: federation_id {v:?} is another user's of this org",
                spec.username
            ))
            .into());
        }
        user.federation_id = Some(v.trim().to_owned()).filter(|f| !f.is_empty());
    }
    user.updated_at = now;
    store.save_user(&user).await?;
    Ok(user)
}

/// Gives each user of `pending` the password the config names, if their stored hash is not
/// already of it. The comparisons (Argon2, slow on purpose) run in parallel on blocking
/// threads; the server runs this after it is ready, and logins wait for it (see
/// `passwords::Settling`), so a changed password is in force from the first login.
pub async fn settle_passwords(store: std::sync::Arc<dyn Backend>, pending: Vec<(SfId, String)>) {
    let checks: Vec<_> = pending
        .into_iter()
        .map(|(id, password)| tokio::spawn(settle_password(store.clone(), id, password)))
        .collect();
    for check in checks {
        let _ = check.await;
    }
}

async fn settle_password(store: std::sync::Arc<dyn Backend>, id: SfId, password: String) {
    let result = async {
        let Some(user) = store.user(&id).await? else {
            return Ok(());
        };
        let (hash, p) = (user.password_hash.clone(), password.clone());
        let same = tokio::task::spawn_blocking(move || passwords::verify(&hash, &p))
            .await
            .unwrap_or(false);
        if same {
            return Ok(());
        }
        let new_hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
            .await
            .unwrap_or_default();
        if new_hash.is_empty() {
            return Ok(());
        }
        // Read again: only the hash is this function's to change.
        if let Some(user) = store.login_user(&user.username).await? {
            let user = User {
                password_hash: new_hash,
                ..std::sync::Arc::unwrap_or_clone(user)
            };
            store.save_user(&user).await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(user = %id.to18(), error = %e, "could not apply the config's password");
    }
}

async fn user_id(store: &dyn Backend, username: &str) -> Result<SfId, SeedError> {
    store
        .user_by_username(username)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| ConfigError::Invalid(format!("unknown user {username:?}")).into())
}

#[allow(clippy::too_many_arguments)]
async fn upsert_app(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
    org: &Org,
    spec: &AppSpec,
    cfg: &ConfigFile,
    generated: &mut Generated,
) -> Result<ConnectedApp, SeedError> {
    let invalid =
        |m: String| SeedError::Config(ConfigError::Invalid(format!("app {:?}: {m}", spec.name)));
    let mut app = match store.app_by_name(&org.id, &spec.name).await? {
        Some(app) => app,
        None => {
            let client_id = spec.client_id.clone().unwrap_or_else(token::mint_client_id);
            let secret = match &spec.client_secret {
                Some(s) => s.clone(),
                None => {
                    let s = token::mint_client_secret();
                    generated.lines.push(format!(
                        "app {:?}: client_id {client_id} client_secret {s}",
                        spec.name
                    ));
                    s
                }
            };
            let mut app = ConnectedApp::new(
                store.next_id(prefix::CONNECTED_APP).await?,
                org.id,
                spec.name.clone(),
                client_id,
                Scopes::from_list(DEFAULT_SCOPES).map_err(|e| invalid(e.to_string()))?,
            );
            set_client_secret(&mut app, &secret, hasher, secrets);
            app
        }
    };
    update_app(store, hasher, secrets, &mut app, spec, cfg).await?;
    store.save_app(&app).await?;
    Ok(app)
}

/// Applies what `spec` names to `app` (not saved): the config's `[[org.app]]` and `idforce app
/// update` share it, so a value is checked the same way wherever it is given. What `spec`
/// leaves out stays as it is: a change made elsewhere survives a config that does not name it.
pub async fn update_app(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
    app: &mut ConnectedApp,
    spec: &AppSpec,
    cfg: &ConfigFile,
) -> Result<(), SeedError> {
    let name = app.name.clone();
    let invalid = |m: String| SeedError::Config(ConfigError::Invalid(format!("app {name:?}: {m}")));
    if let Some(v) = &spec.client_id {
        app.client_id = v.clone();
    }
    if let Some(v) = &spec.client_secret {
        set_client_secret(app, v, hasher, secrets);
    }
    if let Some(v) = &spec.callback_urls {
        if let Some(bad) = v.iter().find(|u| !is_callback_url(u)) {
            return Err(invalid(format!(
                "callback_urls: {bad:?} is not an absolute URL without a fragment (e.g. \
                 \"https://app.example/callback\", \"http://localhost:1717/OauthRedirect\", \
                 \"myapp://callback\")"
            )));
        }
        app.callback_urls = v.clone();
    }
    if let Some(v) = &spec.scopes {
        app.scopes = Scopes::from_list(v).map_err(|e| invalid(e.description.into_owned()))?;
    }
    if let Some(der) = &spec.certificate_der {
        app.certificate_der = Some(der.clone());
    } else if let Some(v) = &spec.certificate {
        app.certificate_der = Some(load_certificate(v, &cfg.base_dir)?);
    } else if spec.remove_certificate {
        app.certificate_der = None;
    }
    if let Some(v) = &spec.permitted_users {
        app.permitted_users = PermittedUsers::parse(v).ok_or_else(|| {
            invalid(format!(
                "permitted_users must be all_users or admin_approved, not {v:?}"
            ))
        })?;
    }
    if let Some(v) = &spec.profiles {
        app.profiles = v.clone();
    }
    if let Some(v) = &spec.pre_authorized_users {
        let mut ids = Vec::new();
        for name in v {
            ids.push(user_id(store, name).await?);
        }
        app.pre_authorized_users = ids;
    }
    if let Some(v) = &spec.run_as {
        // Empty: "Enable Client Credentials Flow" off.
        app.run_as = if v.is_empty() {
            None
        } else {
            Some(user_id(store, v).await?)
        };
    }
    if let Some(v) = spec.require_secret_for_web_server_flow {
        app.require_secret_for_web_server_flow = v;
    }
    if let Some(v) = spec.require_secret_for_refresh_token_flow {
        app.require_secret_for_refresh_token_flow = v;
    }
    if let Some(v) = spec.require_pkce {
        app.require_pkce = v;
    }
    if let Some(v) = &spec.refresh_token_policy {
        app.refresh_token_policy = RefreshTokenPolicy::parse(v).ok_or_else(|| {
            invalid(format!("refresh_token_policy {v:?} is not until_revoked, immediately, expire_after:<duration> or expire_if_unused:<duration>"))
        })?;
    }
    if let Some(v) = spec.rotate_refresh_tokens {
        app.rotate_refresh_tokens = v;
    }
    if let Some(v) = &spec.session_timeout {
        app.session_timeout_secs = cfg.duration_secs("session_timeout", v)?;
    }
    if let Some(v) = spec.introspect_all_tokens {
        app.introspect_all_tokens = v;
    }
    if let Some(v) = &spec.id_token_lifetime {
        let secs = cfg.duration_secs("id_token_lifetime", v)?;
        if !(60..=720 * 60).contains(&secs) {
            return Err(invalid(format!(
                "id_token_lifetime must be 1 to 720 minutes, not {v:?}"
            )));
        }
        app.id_token_lifetime_secs = secs;
    }
    if let Some(v) = spec.jwt_access_tokens {
        app.jwt_access_tokens = v;
    }
    if let Some(v) = spec.enforce_certificate_validity {
        app.enforce_certificate_validity = v;
    }
    if let Some(v) = &spec.api_name {
        if !idforce_core::model::is_api_name(v) {
            return Err(invalid(format!(
                "api_name {v:?}: use letters, digits and single underscores, beginning with a \
                 letter and not ending with an underscore"
            )));
        }
        let taken = store
            .apps(Some(&app.org_id))
            .await?
            .iter()
            .any(|a| a.id != app.id && a.api_name.eq_ignore_ascii_case(v));
        if taken {
            return Err(invalid(format!(
                "api_name {v:?} is another app's in this org"
            )));
        }
        app.api_name = v.clone();
    }
    if let Some(v) = &spec.contact_email {
        if !v.is_empty() && !crate::app_form::is_email(v) {
            return Err(invalid(format!(
                "contact_email {v:?} is not an email address"
            )));
        }
        app.contact_email = v.clone();
    }
    if let Some(v) = spec.oauth_enabled {
        app.oauth_enabled = v;
    }
    if let Some(v) = spec.device_flow {
        app.device_flow = v;
    }
    if let Some(r) = &spec.ip_relaxation {
        app.ip_relaxation = idforce_core::login_policy::IpRelaxation::parse(r).ok_or_else(|| {
            invalid(format!(
                "ip_relaxation {r:?}: expected \"enforce\", \"bypass_2fa\", \"bypass\" or \"enforce_relax_refresh\""
            ))
        })?;
    }
    if let Some(n) = spec.max_approvals_per_user {
        if n == 0 {
            return Err(invalid(
                "max_approvals_per_user 0: a user needs at least one approval to hold a refresh token"
                    .to_owned(),
            ));
        }
        app.max_approvals_per_user = n;
    }
    if let Some(t) = &spec.initial_access_token {
        if t.is_empty() {
            app.initial_access_token = None;
        } else if t.len() < 16 || t.chars().any(char::is_whitespace) {
            return Err(invalid(
                "initial_access_token: at least 16 characters, without spaces (`idforce app \
                 generate-initial-access-token` makes one)"
                    .to_owned(),
            ));
        } else {
            let other = store
                .app_by_initial_access_token(&hasher.digest(t))
                .await?
                .is_some_and(|other| other.id != app.id);
            if other {
                return Err(invalid("initial_access_token is another app's".to_owned()));
            }
            crate::operations::registration::set_initial_access_token(app, t, hasher, secrets);
        }
    }
    if let Some(j) = &spec.jwks {
        if j.trim().is_empty() {
            app.jwks = None;
        } else {
            let keys = idforce_core::jwks::JwkSet::from_json(j)
                .map_err(|e| invalid(format!("jwks: {e}")))?;
            if !keys.has(idforce_core::jwks::Alg::Rs256) {
                return Err(invalid(
                    "jwks: no RSA key (client assertions are signed with RS256)".to_owned(),
                ));
            }
            app.jwks = Some(j.trim().to_owned());
        }
    }
    if let Some(u) = &spec.jwks_uri {
        if u.is_empty() {
            app.jwks_uri = None;
        } else if idforce_core::registration::is_fetchable_jwks_uri(u) {
            app.jwks_uri = Some(u.clone());
        } else {
            return Err(invalid(format!(
                "jwks_uri {u:?} must be https (or http to localhost)"
            )));
        }
    }
    if let Some(v) = &spec.post_logout_redirect_uris {
        if let Some(bad) = v.iter().find(|u| !is_callback_url(u)) {
            return Err(invalid(format!(
                "post_logout_redirect_uris: {bad:?} is not an absolute URL without a fragment"
            )));
        }
        app.post_logout_redirect_uris = v.clone();
    }
    if let Some(names) = &spec.token_exchange_handlers {
        let org = store.org(&app.org_id).await?;
        let known = |n: &String| {
            org.as_ref()
                .is_some_and(|o| o.token_exchange_handlers.iter().any(|h| &h.name == n))
        };
        if let Some(unknown) = names.iter().find(|n| !known(n)) {
            return Err(invalid(format!(
                "token_exchange_handlers: the org has no [[org.token_exchange_handler]] named {unknown:?}"
            )));
        }
        // Naming handlers anew switches the flow on (unless `token_exchange` says otherwise);
        // the same list at the next start leaves an admin's switch as it is.
        if spec.token_exchange.is_none()
            && !names.is_empty()
            && app.token_exchange.handlers != *names
        {
            app.token_exchange.enabled = true;
        }
        app.token_exchange.handlers = names.clone();
    }
    if let Some(v) = spec.token_exchange {
        app.token_exchange.enabled = v;
    }
    if let Some(v) = spec.require_secret_for_token_exchange {
        app.token_exchange.require_secret = v;
    }
    update_asset_tokens(app, spec, cfg, secrets).map_err(invalid)?;
    Ok(())
}

/// The app's asset token settings as `spec` changes them.
fn update_asset_tokens(
    app: &mut ConnectedApp,
    spec: &AppSpec,
    cfg: &ConfigFile,
    secrets: &SystemSecret,
) -> Result<(), String> {
    use idforce_core::token_exchange::{AssetTokens, DEFAULT_ASSET_TOKEN_LIFETIME_SECS};
    match spec.asset_tokens {
        Some(false) => app.token_exchange.asset_tokens = None,
        Some(true) if app.token_exchange.asset_tokens.is_none() => {
            app.token_exchange.asset_tokens = Some(AssetTokens {
                lifetime_secs: DEFAULT_ASSET_TOKEN_LIFETIME_SECS,
                audiences: Vec::new(),
                certificate_der: None,
                key_sealed: None,
            })
        }
        _ => {}
    }
    let given = spec.asset_token_lifetime.is_some()
        || spec.asset_token_audiences.is_some()
        || spec.asset_token_certificate.is_some()
        || spec.asset_token_key.is_some();
    let Some(settings) = app.token_exchange.asset_tokens.as_mut() else {
        return match given {
            true => Err("asset_token_* settings need asset_tokens = true".into()),
            false => Ok(()),
        };
    };
    if let Some(v) = &spec.asset_token_lifetime {
        let secs = crate::config::parse_duration_secs(v).map_err(|e| e.to_string())?;
        if !(1..=86_400).contains(&secs) {
            return Err(format!(
                "asset_token_lifetime must be 1 second to 1 day, not {v:?}"
            ));
        }
        settings.lifetime_secs = secs;
    }
    if let Some(v) = &spec.asset_token_audiences {
        if let Some(bad) = v.iter().find(|a| a.trim().is_empty()) {
            return Err(format!("asset_token_audiences: {bad:?} is empty"));
        }
        settings.audiences = v.clone();
    }
    match (&spec.asset_token_certificate, &spec.asset_token_key) {
        (None, None) => {}
        (Some(c), Some(k)) if c.is_empty() && k.is_empty() => {
            settings.certificate_der = None;
            settings.key_sealed = None;
        }
        (Some(c), Some(k)) => {
            let certificate = load_certificate(c, &cfg.base_dir).map_err(|e| e.to_string())?;
            let key = crate::config::load_rsa_key(k, &cfg.base_dir).map_err(|e| e.to_string())?;
            if !key_matches_certificate(&key, &certificate) {
                return Err("asset_token_key is not the key of asset_token_certificate".into());
            }
            let purpose = idforce_core::token_exchange::asset_key_purpose(&app.id);
            settings.key_sealed = Some(idforce_core::ports::SecretBox::seal(
                secrets, &purpose, &key,
            ));
            settings.certificate_der = Some(certificate);
        }
        _ => {
            return Err("asset_token_certificate and asset_token_key are given together".into());
        }
    }
    Ok(())
}

/// Whether `pkcs8` is the private half of the certificate's key: a probe it signs verifies
/// with the certificate.
fn key_matches_certificate(pkcs8: &[u8], certificate: &[u8]) -> bool {
    let Ok(pair) = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8) else {
        return false;
    };
    let probe = idforce_core::token::sign_rs256(
        &pair,
        &serde_json::json!({"alg": "RS256"}),
        &serde_json::json!({}),
    );
    probe.is_some_and(|probe| {
        idforce_core::external_jwt::parse(&probe)
            .is_ok_and(|jwt| jwt.signed_by_certificate(certificate))
    })
}

/// A handler as the config file declares it, checked: its keys loaded (a certificate) or
/// their address checked (a `jwks_uri`), the claim and the field to match it on known.
fn read_handler(
    spec: &crate::config::HandlerSpec,
    cfg: &ConfigFile,
) -> Result<idforce_core::token_exchange::Handler, SeedError> {
    use idforce_core::token_exchange::{self as exchange, MatchOn};
    let invalid = |m: String| {
        SeedError::Config(ConfigError::Invalid(format!(
            "token_exchange_handler {:?}: {m}",
            spec.name
        )))
    };
    let match_on = match spec.match_on.as_deref() {
        None => MatchOn::Username,
        Some(m) => MatchOn::parse(m).ok_or_else(|| {
            invalid(format!(
                "match_on {m:?}: expected \"username\", \"email\" or \"federation_id\""
            ))
        })?,
    };
    if let Some(u) = &spec.jwks_uri
        && !idforce_core::registration::is_fetchable_jwks_uri(u)
    {
        return Err(invalid(format!(
            "jwks_uri {u:?} must be https (or http to localhost)"
        )));
    }
    let handler = exchange::Handler {
        name: spec.name.trim().to_owned(),
        issuer: spec.issuer.clone(),
        audience: spec.audience.clone(),
        certificate_der: spec
            .certificate
            .as_deref()
            .map(|c| load_certificate(c, &cfg.base_dir))
            .transpose()?,
        jwks_uri: spec.jwks_uri.clone(),
        user_claim: spec
            .user_claim
            .clone()
            .unwrap_or_else(|| exchange::DEFAULT_USER_CLAIM.to_owned()),
        match_on,
    };
    exchange::check_handler(&handler).map_err(|why| {
        SeedError::Config(ConfigError::Invalid(format!(
            "token_exchange_handler {why}"
        )))
    })?;
    Ok(handler)
}

/// What the demo seeding created, for the start-up banner.
pub struct Demo {
    pub username: String,
    pub password: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Gives an app its consumer secret: the keyed digest requests are checked against, and the
/// sealed copy that signs responses and can be shown again. An unchanged secret already
/// sealed under the newest system secret is left as it is (no write at every start).
pub fn set_client_secret(
    app: &mut ConnectedApp,
    secret: &str,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
) {
    app.secret_digest = Some(hasher.digest(secret));
    let purpose = client_secret_purpose(&app.id);
    if let Some(sealed) =
        secrets.seal_unless_kept(&purpose, app.secret_sealed.as_deref(), secret.as_bytes())
    {
        app.secret_sealed = Some(sealed);
    }
}

pub const DEMO_USERNAME: &str = "admin@demo.idforce.test";

/// Seeds an empty store: org "Demo", an administrator, an integration app (password,
/// client-credentials) and Salesforce CLI's public `PlatformCLI` app.
pub async fn demo(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
    now: Millis,
) -> Result<Demo, SeedError> {
    let password = random_password();
    let client_secret = token::mint_client_secret();
    let client_id = token::mint_client_id();
    let cfg = ConfigFile {
        org: vec![OrgSpec {
            name: "Demo".to_owned(),
            id: None,
            instance_url: None,
            my_domain: None,
            logout_url: None,
            site: Vec::new(),
            allow_username_password_flow: None,
            allow_user_agent_flow: None,
            require_pkce_for_all_apps: None,
            time_zone: None,
            profile: Vec::new(),
            token_exchange_handler: Vec::new(),
            user: vec![UserSpec {
                username: DEMO_USERNAME.to_owned(),
                password: Some(password.clone()),
                security_token: None,
                email: Some(DEMO_USERNAME.to_owned()),
                first_name: Some("Ada".to_owned()),
                last_name: Some("Admin".to_owned()),
                profile: Some("System Administrator".to_owned()),
                active: Some(true),
                federation_id: None,
            }],
            app: vec![
                AppSpec {
                    name: "Demo Integration".to_owned(),
                    client_id: Some(client_id.clone()),
                    client_secret: Some(client_secret.clone()),
                    callback_urls: Some(vec!["http://localhost:1717/OauthRedirect".to_owned()]),
                    scopes: Some(
                        ["api", "web", "full", "refresh_token", "openid", "id"]
                            .map(String::from)
                            .to_vec(),
                    ),
                    permitted_users: Some("admin_approved".to_owned()),
                    profiles: Some(vec!["System Administrator".to_owned()]),
                    run_as: Some(DEMO_USERNAME.to_owned()),
                    ..AppSpec::default()
                },
                AppSpec {
                    name: "Salesforce CLI".to_owned(),
                    client_id: Some("PlatformCLI".to_owned()),
                    client_secret: Some(token::mint_client_secret()),
                    callback_urls: Some(vec!["http://localhost:1717/OauthRedirect".to_owned()]),
                    scopes: Some(
                        ["api", "web", "refresh_token", "openid", "id"]
                            .map(String::from)
                            .to_vec(),
                    ),
                    require_secret_for_web_server_flow: Some(false),
                    require_secret_for_refresh_token_flow: Some(false),
                    ..AppSpec::default()
                },
            ],
        }],
        ..ConfigFile::default()
    };
    apply(store, hasher, secrets, &cfg, now).await?;
    Ok(Demo {
        username: DEMO_USERNAME.to_owned(),
        password,
        client_id,
        client_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_are_absolute_without_fragments() {
        for good in [
            "https://app.example/callback",
            "http://localhost:1717/OauthRedirect",
            "myapp://callback",
            "com.example.app:/oauth2redirect",
            "sfdc://success",
        ] {
            assert!(is_callback_url(good), "{good}");
        }
        for bad in [
            "not a url",
            "app.example/callback",
            "https://",
            "https:///path",
            "https://app.example/cb#frag",
            "127.0.0.1:1717/cb",
            "localhost:1717/OauthRedirect",
            "javascript:alert(1)",
            "data:text/html,x",
            "://x",
        ] {
            assert!(!is_callback_url(bad), "{bad}");
        }
    }
}
