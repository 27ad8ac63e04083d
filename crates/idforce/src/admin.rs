//! Administrative commands: they open the store directly, change it, and print the result.

use std::path::Path;
use std::sync::Arc;

use idforce_core::model::{
    ConnectedApp, DEFAULT_SESSION_TIMEOUT_SECS, Org, PermittedUsers, Profile, RefreshToken,
    Session, User,
};
use idforce_core::scope::Scopes;
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token::{self, CredentialHasher};
use idforce_server::clock::{Clock, SystemClock};
use idforce_server::config::{load_certificate, parse_duration_secs};
use idforce_server::operations::{self, app_view, changes, users};
use idforce_store::{Backend, SessionFilter};
use serde_json::{Value, json};

use idforce_server::operations::registration::{
    reveal_initial_access_token, set_initial_access_token,
};
use idforce_server::secrets::SystemSecret;
use idforce_server::seed::set_client_secret;

use crate::cli::{
    AppCommand, KeysCommand, OrgCommand, ProfileCommand, SecretsCommand, TokenCommand, UserCommand,
};

mod history;
pub use history::LoginFilter;

pub type Result<T> = std::result::Result<T, String>;

pub struct Admin {
    pub store: Arc<dyn Backend>,
    pub hasher: CredentialHasher,
    pub secrets: SystemSecret,
    pub json: bool,
}

pub(crate) fn now() -> i64 {
    SystemClock.now()
}

/// Who an admin command's changes are by: the OS user it runs as.
fn actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "admin".into());
    format!("{who} (idforce CLI)")
}

/// What `org update` changes (`None` and empty lists leave a field as it is).
#[derive(Default)]
struct OrgChange {
    my_domain: Option<String>,
    logout_url: Option<String>,
    sites: Vec<String>,
    remove_sites: Vec<String>,
    allow_username_password_flow: Option<bool>,
    allow_user_agent_flow: Option<bool>,
    require_pkce_for_all_apps: Option<bool>,
    time_zone: Option<String>,
    remove_token_exchange_handlers: Vec<String>,
}

fn org_view(o: &Org) -> Value {
    let sites: Vec<Value> = o
        .sites
        .iter()
        .map(|s| json!({ "id": s.id.to18(), "name": s.name, "path": s.path }))
        .collect();
    json!({
        "id": o.id.to18(), "id15": o.id.as15(), "name": o.name, "instance_url": o.instance_url,
        "my_domain": o.my_domain, "logout_url": o.logout_url, "sites": sites,
        "allow_username_password_flow": o.oauth.allow_username_password_flow,
        "allow_user_agent_flow": o.oauth.allow_user_agent_flow,
        "require_pkce_for_all_apps": o.oauth.require_pkce_for_all_apps,
        "time_zone": o.time_zone,
        "token_exchange_handlers": o.token_exchange_handlers.iter().map(|h| json!({
            "name": h.name, "issuer": h.issuer, "audience": h.audience,
            "certificate_sha256": h.certificate_der.as_deref().map(idforce_core::certificate::fingerprint),
            "jwks_uri": h.jwks_uri, "user_claim": h.user_claim, "match_on": h.match_on.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// A profile with how many users have it and which apps admit it.
fn profile_view(p: &Profile, users: &[User], apps: &[ConnectedApp]) -> Value {
    let users = users
        .iter()
        .filter(|u| u.org_id == p.org_id && u.profile.eq_ignore_ascii_case(&p.name))
        .count();
    let apps: Vec<&str> = apps
        .iter()
        .filter(|a| a.org_id == p.org_id && a.admits_profile(&p.name))
        .map(|a| a.name.as_str())
        .collect();
    json!({
        "id": p.id.to18(), "org_id": p.org_id.to18(), "name": p.name, "users": users,
        "apps": apps, "created_at": p.created_at,
        "login_ip_ranges": p.login_ip_ranges.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "login_hours": p.login_hours.map(|h| h.describe()),
    })
}

fn user_view(u: &User) -> Value {
    users::user_view(u, now())
}

fn hex_prefix(d: &[u8]) -> String {
    idforce_core::token::hex(&d[..6])
}

fn refresh_view(r: &RefreshToken) -> Value {
    json!({
        "kind": "refresh_token", "user_id": r.user_id.to18(), "app_id": r.app_id.to18(), "scope": r.scopes.to_string(),
        "issued_at": r.issued_at, "last_used_at": r.last_used_at, "digest_prefix": hex_prefix(&r.digest),
    })
}

fn session_view(s: &Session) -> Value {
    json!({
        "kind": "access_token",
        "user_id": s.user_id.to18(), "app_id": s.app_id.to18(), "scope": s.scopes.to_string(),
        "issued_at": s.issued_at, "last_used_at": s.last_used_at, "expires_at": s.expires_at(),
        // A prefix of the stored digest identifies a session without revealing the token.
        "digest_prefix": hex_prefix(&s.digest),
    })
}

impl Admin {
    /// An app's consumer secret, opened from its sealed copy.
    fn reveal(&self, app: &ConnectedApp) -> Result<String> {
        operations::reveal_secret(&self.secrets, app)
    }

    pub async fn run_secrets(&self, cmd: SecretsCommand) -> Result<()> {
        let SecretsCommand::Reseal = cmd;
        let store = self.store.as_ref();
        let hash_key = idforce_server::app::reseal_hash_key(store, &self.secrets)
            .await
            .map_err(|e| e.to_string())?;
        let keys = idforce_server::keys::reseal(store, &self.secrets)
            .await
            .map_err(|e| e.to_string())?;
        let mut apps = 0;
        for mut app in store.apps(None).await.map_err(|e| e.to_string())? {
            let Some(sealed) = app.secret_sealed.clone() else {
                continue;
            };
            if self.secrets.is_current(&sealed) {
                continue;
            }
            let secret = self.reveal(&app)?;
            set_client_secret(&mut app, &secret, &self.hasher, &self.secrets);
            store.save_app(&app).await.map_err(|e| e.to_string())?;
            apps += 1;
        }
        self.audit(
            None,
            "Certificate and Key Management",
            format!(
                "Resealed the store under system secret {} ({keys} signing keys, {apps} consumer secrets)",
                self.secrets.fingerprint()
            ),
        )
        .await?;
        self.print(&json!({
            "sealed_with": self.secrets.fingerprint(),
            "credential_hash_key_resealed": hash_key,
            "signing_keys_resealed": keys,
            "client_secrets_resealed": apps,
        }));
        Ok(())
    }

    pub async fn run_keys(&self, cmd: KeysCommand) -> Result<()> {
        if let KeysCommand::Rotate = cmd {
            let key = idforce_server::keys::rotate(self.store.as_ref(), &self.secrets, now())
                .await
                .map_err(|e| e.to_string())?;
            self.audit(
                None,
                "Certificate and Key Management",
                format!("Rotated the signing key: key {} signs from now on", key.kid),
            )
            .await?;
            self.print(&json!({ "rotated": true, "kid": key.kid }));
            return Ok(());
        }
        let keys = self.store.signing_keys().await.map_err(|e| e.to_string())?;
        let t = now();
        let active = keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| (k.created_at, k.kid.clone()))
            .map(|k| k.kid.clone());
        let rows: Vec<Value> = keys
            .iter()
            .rev()
            .filter(|k| k.retired_at.is_none() || k.publish_until.is_some_and(|p| p > t))
            .map(|k| {
                json!({
                    "kid": k.kid, "active": Some(&k.kid) == active.as_ref(), "created_at": k.created_at,
                    "retired_at": k.retired_at, "published_until": k.publish_until, "encrypted": k.encrypted,
                })
            })
            .collect();
        self.print(&Value::Array(rows));
        Ok(())
    }

    /// Records a change in the Setup Audit Trail: by whom (the OS user running the command),
    /// in which part of Setup, and what.
    pub(crate) async fn audit(
        &self,
        org: Option<SfId>,
        section: &str,
        action: String,
    ) -> Result<()> {
        // The change is made: failing here would hide its answer (a secret shown once).
        let store = self.store.as_ref();
        operations::audit(store, org, &actor(), section, action, now()).await;
        Ok(())
    }

    fn print(&self, v: &Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
            return;
        }
        match v {
            Value::Array(items) => print!("{}", table(items)),
            Value::Object(m) => {
                for (k, v) in m {
                    println!("{k}: {}", readable(k, v));
                }
            }
            other => println!("{}", plain(other)),
        }
    }

    async fn org(&self, key: &str) -> Result<Org> {
        let by_id = match SfId::parse(key) {
            Ok(id) => self.store.org(&id).await.map_err(|e| e.to_string())?,
            Err(_) => None,
        };
        if let Some(o) = by_id {
            return Ok(Arc::unwrap_or_clone(o));
        }
        self.store
            .org_by_name(key)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no org named {key:?}"))
    }

    async fn user(&self, username: &str) -> Result<User> {
        self.store
            .user_by_username(username)
            .await
            .map_err(|e| e.to_string())?
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| format!("no user {username:?}"))
    }

    async fn app(&self, key: &str) -> Result<ConnectedApp> {
        if let Some(a) = self
            .store
            .app_by_client_id(key)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Arc::unwrap_or_clone(a));
        }
        let matches: Vec<ConnectedApp> = self
            .store
            .apps(None)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|a| a.name == key)
            .collect();
        match matches.len() {
            0 => Err(format!("no app named {key:?}")),
            1 => Ok(matches.into_iter().next().ok_or("no app")?),
            _ => Err(format!(
                "several apps are named {key:?}; use the consumer key"
            )),
        }
    }

    /// Refuses a Federation ID another user of the org has.
    async fn federation_id_is_free(
        &self,
        org: &SfId,
        federation_id: Option<&str>,
        user: Option<SfId>,
    ) -> Result<()> {
        let Some(wanted) = federation_id else {
            return Ok(());
        };
        let holder = users::federation_id_holder(self.store.as_ref(), org, wanted)
            .await
            .map_err(|e| e.to_string())?;
        match holder {
            Some(h) if Some(h) != user => Err(format!(
                "federation id {wanted:?} is another user's of this org"
            )),
            _ => Ok(()),
        }
    }

    /// Applies the config file's rules for an org's hosts (`seed::upsert_org`), then removes
    /// the sites named; one audit record of what changed.
    async fn update_org(&self, org: &Org, change: OrgChange) -> Result<Org> {
        let OrgChange {
            my_domain,
            logout_url,
            sites,
            remove_sites,
            allow_username_password_flow,
            allow_user_agent_flow,
            require_pkce_for_all_apps,
            time_zone,
            remove_token_exchange_handlers,
        } = change;
        let site = sites
            .iter()
            .map(|s| {
                let (name, path) = s
                    .split_once('=')
                    .ok_or_else(|| format!("--site {s:?}: expected NAME=PATH"))?;
                Ok(idforce_server::config::SiteSpec {
                    name: name.trim().to_owned(),
                    path: path.trim().to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let spec = idforce_server::config::OrgSpec {
            name: org.name.clone(),
            id: None,
            instance_url: None,
            my_domain,
            logout_url,
            site,
            allow_username_password_flow,
            allow_user_agent_flow,
            require_pkce_for_all_apps,
            time_zone,
            profile: Vec::new(),
            token_exchange_handler: Vec::new(),
            user: Vec::new(),
            app: Vec::new(),
        };
        let mut updated = idforce_server::seed::upsert_org(self.store.as_ref(), &spec, now())
            .await
            .map_err(|e| e.to_string())?;
        if !remove_sites.is_empty() {
            let before = updated.sites.len();
            updated.sites.retain(|s| !remove_sites.contains(&s.name));
            if updated.sites.len() + remove_sites.len() != before {
                return Err(format!("the org has no site named one of {remove_sites:?}"));
            }
            self.store
                .save_org(&updated)
                .await
                .map_err(|e| e.to_string())?;
        }
        if !remove_token_exchange_handlers.is_empty() {
            let gone = &remove_token_exchange_handlers;
            let handlers = &mut updated.token_exchange_handlers;
            let before = handlers.len();
            handlers.retain(|h| !gone.contains(&h.name));
            if handlers.len() + gone.len() != before {
                return Err(format!(
                    "the org has no token exchange handler named one of {gone:?}"
                ));
            }
            self.store
                .save_org(&updated)
                .await
                .map_err(|e| e.to_string())?;
        }
        let changes = idforce_server::operations::changes(&org_view(org), &org_view(&updated));
        if !changes.is_empty() {
            self.audit(
                Some(updated.id),
                "My Domain",
                format!("Changed org {:?}: {changes}", updated.name),
            )
            .await?;
        }
        Ok(updated)
    }

    pub async fn run_org(&self, cmd: OrgCommand) -> Result<()> {
        match cmd {
            OrgCommand::Create {
                name,
                id,
                instance_url,
                my_domain,
                logout_url,
            } => {
                // Checked before the org is made, so that a refusal leaves nothing behind.
                if let Some(d) = my_domain.as_deref().filter(|d| !d.trim().is_empty()) {
                    idforce_core::hosts::check_my_domain(d)
                        .map_err(|why| format!("--my-domain {why}"))?;
                }
                if let Some(u) = logout_url.as_deref().filter(|u| !u.trim().is_empty())
                    && !idforce_server::seed::is_web_url(u)
                {
                    return Err(format!("--logout-url {u:?} is not an http(s) URL"));
                }
                if self
                    .store
                    .org_by_name(&name)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Err(format!("an org named {name:?} exists"));
                }
                let id = match id {
                    Some(s) => SfId::parse(&s)
                        .ok()
                        .filter(|i| i.is(prefix::ORG))
                        .ok_or("not an org id (00D…)")?,
                    None => self
                        .store
                        .next_id(prefix::ORG)
                        .await
                        .map_err(|e| e.to_string())?,
                };
                let org = Org {
                    id,
                    name,
                    instance_url,
                    created_at: now(),
                    my_domain: None,
                    logout_url: None,
                    sites: Vec::new(),
                    oauth: Default::default(),
                    time_zone: "UTC".into(),
                    token_exchange_handlers: Vec::new(),
                };
                self.store.save_org(&org).await.map_err(|e| e.to_string())?;
                self.audit(
                    Some(org.id),
                    "Company Information",
                    format!("Created org {:?} ({})", org.name, org.id),
                )
                .await?;
                let org = if my_domain.is_some() || logout_url.is_some() {
                    let hosts = OrgChange {
                        my_domain,
                        logout_url,
                        ..OrgChange::default()
                    };
                    self.update_org(&org, hosts).await?
                } else {
                    org
                };
                self.print(&org_view(&org));
            }
            OrgCommand::Update {
                org,
                my_domain,
                logout_url,
                sites,
                remove_sites,
                allow_username_password_flow,
                allow_user_agent_flow,
                require_pkce_for_all_apps,
                time_zone,
                remove_token_exchange_handlers,
            } => {
                let org = self.org(&org).await?;
                let change = OrgChange {
                    my_domain,
                    logout_url,
                    sites,
                    remove_sites,
                    allow_username_password_flow,
                    allow_user_agent_flow,
                    require_pkce_for_all_apps,
                    time_zone,
                    remove_token_exchange_handlers,
                };
                let org = self.update_org(&org, change).await?;
                self.print(&org_view(&org));
            }
            OrgCommand::List => {
                let orgs = self.store.orgs().await.map_err(|e| e.to_string())?;
                self.print(&Value::Array(orgs.iter().map(org_view).collect()));
            }
            OrgCommand::Show { org } => self.print(&org_view(&self.org(&org).await?)),
        }
        Ok(())
    }

    pub async fn run_audit_trail(&self, org: Option<String>, limit: u32) -> Result<()> {
        let org = match org {
            Some(o) => Some(self.org(&o).await?.id),
            None => None,
        };
        let records = self
            .store
            .audit_trail(org.as_ref(), limit)
            .await
            .map_err(|e| e.to_string())?;
        let rows = records
            .iter()
            .map(|r| {
                json!({
                    "changed_at": r.at, "org_id": r.org.map(|o| o.to18()), "user": r.actor,
                    "section": r.section, "action": r.action,
                })
            })
            .collect();
        self.print(&Value::Array(rows));
        Ok(())
    }

    pub async fn run_profile(&self, cmd: ProfileCommand) -> Result<()> {
        let e = |e: idforce_core::ports::StoreError| e.to_string();
        match cmd {
            ProfileCommand::List { org } => {
                let org = match org {
                    Some(o) => Some(self.org(&o).await?.id),
                    None => None,
                };
                let profiles = self.store.profiles(org.as_ref()).await.map_err(e)?;
                let users = self.store.users(org.as_ref()).await.map_err(e)?;
                let apps = self.store.apps(org.as_ref()).await.map_err(e)?;
                let rows = profiles
                    .iter()
                    .map(|p| profile_view(p, &users, &apps))
                    .collect();
                self.print(&Value::Array(rows));
            }
            ProfileCommand::Update {
                org,
                name,
                login_ip_ranges,
                no_login_ip_ranges,
                login_hours,
                no_login_hours,
            } => {
                let org = self.org(&org).await?;
                let profile = idforce_server::profiles::find(self.store.as_ref(), &org.id, &name)
                    .await
                    .map_err(e)?
                    .ok_or_else(|| format!("org {:?} has no profile {name:?}", org.name))?;
                let ranges =
                    (no_login_ip_ranges || !login_ip_ranges.is_empty()).then_some(login_ip_ranges);
                let hours = if no_login_hours || !login_hours.is_empty() {
                    let mut days = std::collections::BTreeMap::new();
                    for h in &login_hours {
                        let (day, window) = h.split_once('=').ok_or_else(|| {
                            format!("--login-hours {h:?}: expected DAY=HH:MM-HH:MM")
                        })?;
                        days.insert(day.to_owned(), window.to_owned());
                    }
                    Some(days)
                } else {
                    None
                };
                let before = profile_view(&profile, &[], &[]);
                let profile = idforce_server::profiles::restrict(
                    self.store.as_ref(),
                    profile,
                    ranges.as_deref(),
                    hours.as_ref(),
                )
                .await
                .map_err(|e| e.to_string())?;
                let after = profile_view(&profile, &[], &[]);
                self.audit(
                    Some(org.id),
                    "Profiles",
                    format!(
                        "Changed profile {:?}: {}",
                        profile.name,
                        operations::changes(&before, &after)
                    ),
                )
                .await?;
                let users = self.store.users(Some(&org.id)).await.map_err(e)?;
                let apps = self.store.apps(Some(&org.id)).await.map_err(e)?;
                self.print(&profile_view(&profile, &users, &apps));
            }
            ProfileCommand::Create { org, name, clone } => {
                let org = self.org(&org).await?;
                if idforce_server::profiles::find(self.store.as_ref(), &org.id, &name)
                    .await
                    .map_err(e)?
                    .is_some()
                {
                    return Err(format!("org {:?} has a profile named {name:?}", org.name));
                }
                let source = match &clone {
                    Some(c) => Some(
                        idforce_server::profiles::find(self.store.as_ref(), &org.id, c)
                            .await
                            .map_err(e)?
                            .ok_or_else(|| format!("org {:?} has no profile {c:?}", org.name))?,
                    ),
                    None => None,
                };
                let profile = operations::profiles::create(
                    self.store.as_ref(),
                    &org,
                    &name,
                    source.as_ref(),
                    &actor(),
                    now(),
                )
                .await
                .map_err(e)?;
                let users = self.store.users(Some(&org.id)).await.map_err(e)?;
                let apps = self.store.apps(Some(&org.id)).await.map_err(e)?;
                self.print(&profile_view(&profile, &users, &apps));
            }
        }
        Ok(())
    }

    pub async fn run_user(&self, cmd: UserCommand) -> Result<()> {
        let store = self.store.as_ref();
        let e = |e: idforce_core::ports::StoreError| e.to_string();
        let who = actor();
        match cmd {
            UserCommand::Create {
                org,
                username,
                password,
                security_token,
                email,
                first_name,
                last_name,
                profile,
                federation_id,
            } => {
                let org = self.org(&org).await?;
                if store
                    .user_by_username(&username)
                    .await
                    .map_err(e)?
                    .is_some()
                {
                    return Err(format!("username {username:?} is taken"));
                }
                self.federation_id_is_free(&org.id, federation_id.as_deref(), None)
                    .await?;
                let new = users::NewUser {
                    org: org.id,
                    email: email.unwrap_or_else(|| username.clone()),
                    username,
                    first_name: first_name.unwrap_or_default(),
                    last_name: last_name.unwrap_or_default(),
                    profile,
                    active: true,
                    password,
                    security_token,
                    federation_id,
                };
                let (user, shown) = users::create(store, &self.hasher, new, &who, now())
                    .await
                    .map_err(e)?;
                let mut v = user_view(&user);
                if let Some(p) = shown {
                    v["password"] = Value::from(p);
                }
                self.print(&v);
            }
            UserCommand::List { org } => {
                let org = match org {
                    Some(o) => Some(self.org(&o).await?.id),
                    None => None,
                };
                let users = store.users(org.as_ref()).await.map_err(e)?;
                self.print(&Value::Array(users.iter().map(user_view).collect()));
            }
            UserCommand::Show { username } => self.print(&user_view(&self.user(&username).await?)),
            UserCommand::SetPassword { username, password } => {
                let mut user = self.user(&username).await?;
                let shown = users::set_password(store, &mut user, password, &who, now())
                    .await
                    .map_err(e)?;
                let mut v = json!({ "username": user.username, "password_changed": true });
                if let Some(p) = shown {
                    v["password"] = Value::from(p);
                }
                self.print(&v);
            }
            UserCommand::Deactivate { username } => self.set_active(&username, false).await?,
            UserCommand::Reactivate { username } => self.set_active(&username, true).await?,
            UserCommand::Unlock { username } => {
                let mut user = self.user(&username).await?;
                users::unlock(store, &mut user, &who, now())
                    .await
                    .map_err(e)?;
                self.print(&json!({ "username": user.username, "locked": false }));
            }
            UserCommand::Update {
                username,
                new_username,
                email,
                first_name,
                last_name,
                profile,
                federation_id,
            } => {
                let mut user = self.user(&username).await?;
                self.federation_id_is_free(&user.org_id, federation_id.as_deref(), Some(user.id))
                    .await?;
                let change = users::UserChange {
                    username: new_username,
                    email,
                    first_name,
                    last_name,
                    profile,
                    active: None,
                    federation_id,
                };
                let nothing = change.username.is_none()
                    && change.email.is_none()
                    && change.first_name.is_none()
                    && change.last_name.is_none()
                    && change.profile.is_none()
                    && change.federation_id.is_none();
                if nothing {
                    return Err(
                        "give at least one of --new-username, --email, --first-name, \
                                --last-name, --profile"
                            .into(),
                    );
                }
                if let Some(n) = &change.username {
                    let taken = store
                        .user_by_username(n)
                        .await
                        .map_err(e)?
                        .is_some_and(|other| other.id != user.id);
                    if taken {
                        return Err(format!("--new-username {n:?}: username taken"));
                    }
                }
                users::update(store, &mut user, change, &who, now())
                    .await
                    .map_err(e)?;
                self.print(&user_view(&user));
            }
            UserCommand::Freeze { username } => self.set_frozen(&username, true).await?,
            UserCommand::Unfreeze { username } => self.set_frozen(&username, false).await?,
            UserCommand::ResetSecurityToken { username } => {
                let mut user = self.user(&username).await?;
                let fresh =
                    users::reset_security_token(store, &self.hasher, &mut user, &who, now())
                        .await
                        .map_err(e)?;
                self.print(&json!({ "username": user.username, "security_token": fresh }));
            }
        }
        Ok(())
    }

    /// Deactivates (ending the user's sessions) or reactivates.
    async fn set_active(&self, username: &str, active: bool) -> Result<()> {
        let mut user = self.user(username).await?;
        let change = users::UserChange {
            active: Some(active),
            ..Default::default()
        };
        let sessions = users::update(self.store.as_ref(), &mut user, change, &actor(), now())
            .await
            .map_err(|e| e.to_string())?;
        self.print(&json!({
            "username": user.username, "active": active, "sessions_revoked": sessions,
        }));
        Ok(())
    }

    /// Freezes (ending the user's sessions) or unfreezes.
    async fn set_frozen(&self, username: &str, frozen: bool) -> Result<()> {
        let mut user = self.user(username).await?;
        let sessions = users::set_frozen(self.store.as_ref(), &mut user, frozen, &actor(), now())
            .await
            .map_err(|e| e.to_string())?;
        self.print(&json!({
            "username": user.username, "frozen": frozen, "sessions_revoked": sessions,
        }));
        Ok(())
    }

    pub async fn run_app(&self, cmd: AppCommand) -> Result<()> {
        let blocking = matches!(cmd, AppCommand::Block { .. });
        match cmd {
            AppCommand::Create {
                org,
                name,
                callback_urls,
                scopes,
                certificate,
                permitted_users,
                run_as,
                session_timeout,
                introspect_all_tokens,
            } => {
                let org = self.org(&org).await?;
                if self
                    .store
                    .app_by_name(&org.id, &name)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Err(format!(
                        "org {:?} already has an app named {name:?}",
                        org.name
                    ));
                }
                if let Some(bad) = callback_urls
                    .iter()
                    .find(|u| !idforce_server::seed::is_callback_url(u))
                {
                    return Err(format!(
                        "--callback-url {bad:?}: not an absolute URL without a fragment (e.g. \
                         https://app.example/callback, http://localhost:1717/OauthRedirect, \
                         myapp://callback)"
                    ));
                }
                let run_as = match run_as {
                    Some(u) => Some(self.user(&u).await?.id),
                    None => None,
                };
                let certificate_der = match certificate {
                    Some(p) => Some(
                        load_certificate(&p.to_string_lossy(), Path::new("."))
                            .map_err(|e| e.to_string())?,
                    ),
                    None => None,
                };
                let secret = token::mint_client_secret();
                let mut app = ConnectedApp {
                    callback_urls,
                    certificate_der,
                    permitted_users: PermittedUsers::parse(&permitted_users).ok_or_else(|| {
                        format!(
                            "--permitted-users {permitted_users:?}: expected all_users or \
                                 admin_approved"
                        )
                    })?,
                    run_as,
                    session_timeout_secs: match session_timeout {
                        Some(d) => parse_duration_secs(&d).map_err(|e| e.to_string())?,
                        None => DEFAULT_SESSION_TIMEOUT_SECS,
                    },
                    introspect_all_tokens,
                    ..ConnectedApp::new(
                        self.store
                            .next_id(prefix::CONNECTED_APP)
                            .await
                            .map_err(|e| e.to_string())?,
                        org.id,
                        name,
                        token::mint_client_id(),
                        Scopes::parse(&scopes).map_err(|e| e.description.into_owned())?,
                    )
                };
                set_client_secret(&mut app, &secret, &self.hasher, &self.secrets);
                self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                self.audit(
                    Some(org.id),
                    "Connected Apps",
                    format!("Created connected app {:?} in org {:?}", app.name, org.name),
                )
                .await?;
                let mut v = app_view(&app);
                v["client_secret"] = Value::from(secret);
                self.print(&v);
            }
            AppCommand::List { org } => {
                let org = match org {
                    Some(o) => Some(self.org(&o).await?.id),
                    None => None,
                };
                let apps = self
                    .store
                    .apps(org.as_ref())
                    .await
                    .map_err(|e| e.to_string())?;
                self.print(&Value::Array(apps.iter().map(app_view).collect()));
            }
            AppCommand::Show { app, reveal_secret } => {
                let app = self.app(&app).await?;
                let mut v = app_view(&app);
                if reveal_secret {
                    // A public app without a token to show: say so, as for any secret.
                    if app.secret_digest.is_some() || app.initial_access_token.is_none() {
                        v["client_secret"] = Value::from(self.reveal(&app)?);
                    }
                    if let Some(t) = reveal_initial_access_token(&self.secrets, &app) {
                        v["initial_access_token"] = Value::from(t);
                    }
                }
                self.print(&v);
            }
            AppCommand::GenerateInitialAccessToken { app } => {
                let mut app = self.app(&app).await?;
                let t = token::mint_client_secret();
                set_initial_access_token(&mut app, &t, &self.hasher, &self.secrets);
                self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                self.audit(
                    Some(app.org_id),
                    "Connected Apps",
                    format!(
                        "Generated an initial access token for connected app {:?}",
                        app.name
                    ),
                )
                .await?;
                self.print(&json!({"app": app.name, "initial_access_token": t}));
            }
            AppCommand::RotateSecret { app } => {
                let mut app = self.app(&app).await?;
                let secret = token::mint_client_secret();
                set_client_secret(&mut app, &secret, &self.hasher, &self.secrets);
                self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                self.audit(
                    Some(app.org_id),
                    "Connected Apps",
                    format!(
                        "Generated a new consumer secret for connected app {:?}",
                        app.name
                    ),
                )
                .await?;
                self.print(&json!({ "client_id": app.client_id, "client_secret": secret }));
            }
            AppCommand::SetCertificate { app, certificate } => {
                let mut app = self.app(&app).await?;
                app.certificate_der = Some(
                    load_certificate(&certificate.to_string_lossy(), Path::new("."))
                        .map_err(|e| e.to_string())?,
                );
                self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                self.audit(
                    Some(app.org_id),
                    "Connected Apps",
                    format!("Uploaded a certificate for connected app {:?}", app.name),
                )
                .await?;
                self.print(&app_view(&app));
            }
            AppCommand::ApproveUser { app, username } => {
                let mut app = self.app(&app).await?;
                let user = self.user(&username).await?;
                match app.permitted_users {
                    PermittedUsers::AdminApproved => {
                        if !app.pre_authorized_users.contains(&user.id) {
                            app.pre_authorized_users.push(user.id);
                            self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                        }
                    }
                    PermittedUsers::AllUsers => {
                        self.store
                            .approve(&user.id, &app.id, &app.scopes, now())
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                self.audit(
                    Some(app.org_id),
                    "Connected Apps",
                    format!(
                        "Approved connected app {:?} for user {}",
                        app.name, user.username
                    ),
                )
                .await?;
                self.print(
                    &json!({ "app": app.name, "username": user.username, "approved": true }),
                );
            }
            AppCommand::Block { app } | AppCommand::Unblock { app } => {
                let mut app = self.app(&app).await?;
                let (sessions, refresh) = idforce_server::operations::set_app_blocked(
                    self.store.as_ref(),
                    &mut app,
                    blocking,
                    &actor(),
                    now(),
                )
                .await
                .map_err(|e| e.to_string())?;
                self.print(&json!({
                    "app": app.name, "blocked": blocking, "sessions_revoked": sessions,
                    "refresh_tokens_revoked": refresh,
                }));
            }
            AppCommand::Update(u) => {
                let mut app = self.app(&u.app).await?;
                let before = app_view(&app);
                let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
                let spec = idforce_server::config::AppSpec {
                    name: app.name.clone(),
                    callback_urls: some(u.callback_urls),
                    scopes: u.scopes.map(|s| {
                        s.split([' ', ','])
                            .filter(|p| !p.is_empty())
                            .map(str::to_owned)
                            .collect()
                    }),
                    certificate: u.certificate.map(|p| p.to_string_lossy().into_owned()),
                    permitted_users: u.permitted_users,
                    profiles: some(u.profiles),
                    pre_authorized_users: some(u.pre_authorized_users),
                    run_as: u.run_as,
                    require_secret_for_web_server_flow: u.require_secret_for_web_server_flow,
                    require_secret_for_refresh_token_flow: u.require_secret_for_refresh_token_flow,
                    require_pkce: u.require_pkce,
                    refresh_token_policy: u.refresh_token_policy,
                    rotate_refresh_tokens: u.rotate_refresh_tokens,
                    session_timeout: u.session_timeout,
                    introspect_all_tokens: u.introspect_all_tokens,
                    id_token_lifetime: u.id_token_lifetime,
                    jwt_access_tokens: u.jwt_access_tokens,
                    enforce_certificate_validity: u.enforce_certificate_validity,
                    api_name: u.api_name,
                    contact_email: u.contact_email,
                    oauth_enabled: u.oauth_enabled,
                    device_flow: u.device_flow,
                    post_logout_redirect_uris: some(u.post_logout_redirect_uris),
                    max_approvals_per_user: u.max_approvals_per_user,
                    initial_access_token: u.initial_access_token,
                    jwks: u
                        .jwks
                        .map(|p| {
                            std::fs::read_to_string(&p)
                                .map_err(|e| format!("--jwks {}: {e}", p.display()))
                        })
                        .transpose()?,
                    jwks_uri: u.jwks_uri,
                    ip_relaxation: u.ip_relaxation,
                    token_exchange: u.token_exchange,
                    token_exchange_handlers: list_flag(u.token_exchange_handlers),
                    require_secret_for_token_exchange: u.require_secret_for_token_exchange,
                    asset_tokens: u.asset_tokens,
                    asset_token_lifetime: u.asset_token_lifetime,
                    asset_token_audiences: list_flag(u.asset_token_audiences),
                    ..Default::default()
                };
                if let Some(name) = u.name {
                    let taken = self
                        .store
                        .app_by_name(&app.org_id, &name)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some_and(|other| other.id != app.id);
                    if taken || name.trim().is_empty() {
                        return Err(format!(
                            "--name {name:?}: empty, or another app's in this org"
                        ));
                    }
                    app.name = name;
                }
                // Paths are the caller's: relative to where the command runs.
                let here = idforce_server::config::ConfigFile {
                    base_dir: ".".into(),
                    ..Default::default()
                };
                idforce_server::seed::update_app(
                    self.store.as_ref(),
                    &self.hasher,
                    &self.secrets,
                    &mut app,
                    &spec,
                    &here,
                )
                .await
                .map_err(|e| e.to_string())?;
                self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                idforce_server::profiles::backfill(self.store.as_ref(), now())
                    .await
                    .map_err(|e| e.to_string())?;
                let after = app_view(&app);
                self.audit(
                    Some(app.org_id),
                    "Connected Apps",
                    format!(
                        "Changed connected app {:?}: {}",
                        app.name,
                        changes(&before, &after)
                    ),
                )
                .await?;
                self.print(&after);
            }
            AppCommand::ApproveProfile { app, profile } => {
                let mut app = self.app(&app).await?;
                if !app
                    .profiles
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&profile))
                {
                    idforce_server::profiles::ensure(
                        self.store.as_ref(),
                        &app.org_id,
                        &profile,
                        now(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    app.profiles.push(profile.clone());
                    self.store.save_app(&app).await.map_err(|e| e.to_string())?;
                    self.audit(
                        Some(app.org_id),
                        "Connected Apps",
                        format!(
                            "Gave profile {profile:?} access to connected app {:?}",
                            app.name
                        ),
                    )
                    .await?;
                }
                self.print(&app_view(&app));
            }
        }
        Ok(())
    }

    pub async fn run_token(&self, cmd: TokenCommand) -> Result<()> {
        let (user, app, revoke) = match cmd {
            TokenCommand::List { user, app } => (user, app, false),
            TokenCommand::Revoke { user, app } => (user, app, true),
        };
        let (filter, org) = match (user, app) {
            (Some(u), Some(a)) => {
                let (user, app) = (self.user(&u).await?, self.app(&a).await?);
                (SessionFilter::UserApp(user.id, app.id), Some(user.org_id))
            }
            (Some(u), None) => {
                let user = self.user(&u).await?;
                (SessionFilter::User(user.id), Some(user.org_id))
            }
            (None, Some(a)) => {
                let app = self.app(&a).await?;
                (SessionFilter::App(app.id), Some(app.org_id))
            }
            (None, None) => return Err("give --user or --app".into()),
        };
        if revoke {
            let (sessions, refresh) = self
                .store
                .revoke_sessions(filter, true, now())
                .await
                .map_err(|e| e.to_string())?;
            let whose = match &filter {
                SessionFilter::User(id) => format!("user {}", id.to18()),
                SessionFilter::App(id) => format!("connected app {}", id.to18()),
                SessionFilter::UserApp(u, a) => {
                    format!("user {} for connected app {}", u.to18(), a.to18())
                }
            };
            self.audit(
                org,
                "Session Management",
                format!("Revoked the tokens of {whose}: {sessions} access, {refresh} refresh"),
            )
            .await?;
            self.print(&json!({ "revoked": sessions, "refresh_tokens_revoked": refresh }));
        } else {
            let sessions = self
                .store
                .live_sessions(filter, now())
                .await
                .map_err(|e| e.to_string())?;
            let refresh = self
                .store
                .live_refresh_tokens(filter)
                .await
                .map_err(|e| e.to_string())?;
            let mut rows: Vec<Value> = sessions.iter().map(session_view).collect();
            rows.extend(refresh.iter().map(refresh_view));
            self.print(&Value::Array(rows));
        }
        Ok(())
    }
}

/// The first columns of a listing as a table: a header of their names, then a row per item,
/// padded to line up; times readable (`--json` keeps every field and raw values).
fn table(items: &[Value]) -> String {
    table_of(items, 4)
}

/// `items` as a table of their first `columns` fields.
fn table_of(items: &[Value], columns: usize) -> String {
    let Some(first) = items.first().and_then(Value::as_object) else {
        return "(none)\n".to_owned();
    };
    let keys: Vec<&String> = first.keys().take(columns).collect();
    let mut rows: Vec<Vec<String>> = vec![keys.iter().map(|k| k.to_uppercase()).collect()];
    for item in items {
        rows.push(
            keys.iter()
                .map(|k| readable(k, item.get(k.as_str()).unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..keys.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A value for people: times (fields ending in `_at` or `_until`, in epoch milliseconds) as UTC
/// dates, the rest as they are.
fn readable(key: &str, v: &Value) -> String {
    let is_time = key.ends_with("_at") || key.ends_with("_until");
    match v.as_i64() {
        Some(ms) if is_time && ms > 0 => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            humantime::format_rfc3339_seconds(at).to_string()
        }
        _ => plain(v),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A repeatable flag as a config list: not given, unchanged; one empty value, emptied.
fn list_flag(values: Vec<String>) -> Option<Vec<String>> {
    match values.as_slice() {
        [] => None,
        [only] if only.is_empty() => Some(Vec::new()),
        _ => Some(values),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn listings_have_a_header_aligned_columns_and_readable_times() {
        let items = vec![
            json!({"kid": "1", "active": true, "created_at": 1_796_616_590_129_i64, "retired_at": null, "extra": 1}),
            json!({"kid": "12", "active": false, "created_at": 0, "retired_at": 1_796_616_600_000_i64, "extra": 2}),
        ];
        let text = super::table(&items);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "KID  ACTIVE  CREATED_AT            RETIRED_AT");
        assert_eq!(lines[1], "1    true    2026-12-07T04:09:50Z  -");
        assert_eq!(
            lines[2],
            "12   false   0                     2026-12-07T04:10:00Z"
        );
        assert_eq!(lines.len(), 3, "four columns, a row each");
        assert_eq!(super::table(&[]), "(none)\n");
    }
}
