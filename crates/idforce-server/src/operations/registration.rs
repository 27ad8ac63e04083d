//! Dynamic client registration's store work (RFC 7591, and RFC 7592 as an idforce extension):
//! finding the parent app by its initial access token, saving the app a client registers, and
//! reading, updating and deregistering it with its registration access token. The rules of
//! what may be registered are `idforce_core::registration`'s.

use idforce_core::hosts::Entry;
use idforce_core::model::{ConnectedApp, Millis, ShownSecret};
use idforce_core::ports::{SecretBox, StoreError};
use idforce_core::registration::{self, Registration, RegistrationError};
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token::{self, CredentialHasher};
use idforce_store::{Backend, SessionFilter};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::secrets::SystemSecret;

/// The audit trail's section for apps.
const SECTION: &str = "Connected Apps";

/// Where registrations are made; a registered app's configuration is at `…/register/<id>`.
pub const REGISTER_PATH: &str = "/services/oauth2/register";

/// Why a registration request is refused.
#[derive(Debug)]
pub enum Refused {
    /// The initial or registration access token is missing, unknown or not for this host:
    /// RFC 6750's `invalid_token`, with the reason for the log only.
    Token(String),
    Metadata(RegistrationError),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

impl From<RegistrationError> for Refused {
    fn from(e: RegistrationError) -> Self {
        Refused::Metadata(e)
    }
}

/// What an admin or the server needs to keep an initial access token.
pub fn initial_access_token_purpose(app: &SfId) -> String {
    format!("initial_access_token:{}", app.as15())
}

/// Gives `app` an initial access token: its keyed digest (what registrations are checked
/// against) and a sealed copy Setup can show again.
pub fn set_initial_access_token(
    app: &mut ConnectedApp,
    token: &str,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
) {
    let purpose = initial_access_token_purpose(&app.id);
    let kept = app
        .initial_access_token
        .as_ref()
        .map(|t| t.sealed.as_slice());
    if let Some(sealed) = secrets.seal_unless_kept(&purpose, kept, token.as_bytes()) {
        app.initial_access_token = Some(ShownSecret {
            digest: hasher.digest(token),
            sealed,
        });
    }
}

/// An app's initial access token, opened from its sealed copy.
pub fn reveal_initial_access_token(secrets: &SystemSecret, app: &ConnectedApp) -> Option<String> {
    let t = app.initial_access_token.as_ref()?;
    let plain = secrets.open(&initial_access_token_purpose(&app.id), &t.sealed)?;
    String::from_utf8(plain).ok()
}

/// What the registration endpoints work with.
pub struct Registrar<'a> {
    pub store: &'a dyn Backend,
    pub hasher: &'a CredentialHasher,
    pub secrets: &'a SystemSecret,
    pub now: Millis,
    /// Where the request came: the login host, a My Domain or a site.
    pub entry: &'a Entry,
    /// A development server (plain http on this machine), which alone takes a `jwks_uri` of
    /// plain http to this machine.
    pub development: bool,
}

impl Registrar<'_> {
    fn client_uri(&self, client_id: &str) -> String {
        format!(
            "{}{REGISTER_PATH}/{client_id}",
            self.entry.base_url.trim_end_matches('/')
        )
    }

    /// Registers a client as a new app of the org of the app whose initial access token
    /// `token` is; the answer carries the new app's credentials, shown this once.
    pub async fn register(&self, token: &str, body: &Value) -> Result<Value, Refused> {
        let digest = self.hasher.digest(token);
        let parent = self
            .store
            .app_by_initial_access_token(&digest)
            .await?
            .ok_or_else(|| Refused::Token("no app has this initial access token".into()))?;
        if parent.blocked || !parent.oauth_enabled {
            return Err(Refused::Token(format!(
                "the registering app {} is blocked or has OAuth off",
                parent.id
            )));
        }
        if self
            .entry
            .org
            .as_ref()
            .is_some_and(|org| org.id != parent.org_id)
        {
            return Err(Refused::Token(format!(
                "the registering app {} is another org's than this host's",
                parent.id
            )));
        }
        let mut req = self.checked(body, &parent)?;
        let mut app = ConnectedApp::new(
            self.store.next_id(prefix::CONNECTED_APP).await?,
            parent.org_id,
            String::new(),
            token::mint_client_id(),
            req.scopes.clone(),
        );
        let access_token = token::mint_client_secret();
        app.registration = Some(Registration {
            parent: parent.id,
            issued_at: self.now / 1000,
            access_token: Some(self.hasher.digest(&access_token)),
            metadata: req.metadata.clone(),
        });
        let secret = req.uses_secret().then(token::mint_client_secret);
        if let Some(secret) = &secret {
            crate::seed::set_client_secret(&mut app, secret, self.hasher, self.secrets);
        }
        // Two registrations of one name at once: the second to save takes the next number.
        let wanted = req.metadata.client_name.clone();
        let mut attempt = 0;
        loop {
            let (name, api_name) = free_name(self.store, &parent.org_id, &wanted, None).await?;
            // The name it is registered under is what the answer says.
            req.metadata.client_name = name.clone();
            app.name = name;
            app.api_name = api_name;
            registration::apply(&mut app, &req);
            match self.store.save_app(&app).await {
                Err(StoreError::Conflict(_)) if attempt < 3 => attempt += 1,
                saved => break saved?,
            }
        }
        let action = format!(
            "Registered connected app {:?} through dynamic client registration with the initial \
             access token of {:?}",
            app.name, parent.name
        );
        self.audit(&app, action).await;
        Ok(self.answer(&app, secret.as_deref(), Some(&access_token)))
    }

    /// A request's metadata, checked; a `jwks_uri` of plain http only on a development server.
    fn checked(
        &self,
        body: &Value,
        parent: &ConnectedApp,
    ) -> Result<registration::Requested, Refused> {
        let req = registration::read(body, parent)?;
        if let Some(uri) = &req.jwks_uri
            && !uri.starts_with("https://")
            && !self.development
        {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "jwks_uri {uri:?} must be https"
            ))
            .into());
        }
        Ok(req)
    }

    fn answer(
        &self,
        app: &ConnectedApp,
        secret: Option<&str>,
        access_token: Option<&str>,
    ) -> Value {
        let registration = app.registration.as_ref().expect("a registered app");
        registration::answer(
            app,
            registration,
            secret,
            access_token,
            &self.client_uri(&app.client_id),
        )
    }

    /// The registered app `client_id` if `token` is its registration access token, read from
    /// the store itself (not a directory cache that may be a moment behind another node's
    /// change), since what is read is written back.
    async fn registered(&self, client_id: &str, token: &str) -> Result<ConnectedApp, Refused> {
        let unknown = || {
            Refused::Token(format!(
                "no app has the client id {}",
                self.hasher.log_tag(client_id)
            ))
        };
        let cached = self
            .store
            .app_by_client_id(client_id)
            .await?
            .ok_or_else(unknown)?;
        let app = self
            .store
            .app_by_name(&cached.org_id, &cached.name)
            .await?
            .filter(|a| a.id == cached.id && a.client_id == client_id)
            .ok_or_else(unknown)?;
        let presented = self.hasher.digest(token);
        let matches = app
            .registration
            .as_ref()
            .and_then(|r| r.access_token)
            .is_some_and(|d| bool::from(d.ct_eq(&presented)));
        if !matches {
            return Err(Refused::Token(format!(
                "not the registration access token of app {}",
                app.id
            )));
        }
        if self
            .entry
            .org
            .as_ref()
            .is_some_and(|org| org.id != app.org_id)
        {
            return Err(Refused::Token(format!(
                "app {} is another org's than this host's",
                app.id
            )));
        }
        Ok(app)
    }

    /// RFC 7592 read: the registration as it stands, the consumer secret included.
    pub async fn read(&self, client_id: &str, token: &str) -> Result<Value, Refused> {
        let app = self.registered(client_id, token).await?;
        let secret = super::reveal_secret(self.secrets, &app).ok();
        Ok(self.answer(&app, secret.as_deref(), None))
    }

    /// RFC 7592 update: the request replaces the registered metadata (what it leaves out
    /// takes its default), bounded by the parent app as a registration is.
    pub async fn update(
        &self,
        client_id: &str,
        token: &str,
        body: &Value,
    ) -> Result<Value, Refused> {
        let mut app = self.registered(client_id, token).await?;
        if app.blocked || !app.oauth_enabled {
            return Err(Refused::Token(format!(
                "app {} is blocked or has OAuth off",
                app.id
            )));
        }
        for field in [
            "registration_access_token",
            "registration_client_uri",
            "client_id_issued_at",
            "client_secret_expires_at",
        ] {
            if body.get(field).is_some() {
                return Err(RegistrationError::InvalidClientMetadata(format!(
                    "{field} is the server's to set, not the client's"
                ))
                .into());
            }
        }
        let parent_id = app.registration.as_ref().map(|r| r.parent);
        let parent = match parent_id {
            Some(id) => self.store.app(&id).await?,
            None => None,
        }
        .filter(|p| !p.blocked && p.oauth_enabled)
        .ok_or_else(|| {
            Refused::Token(format!(
                "the app that registered {} is gone, blocked or has OAuth off",
                app.id
            ))
        })?;
        let req = self.checked(body, &parent)?;
        if req.client_id.as_deref() != Some(app.client_id.as_str()) {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_id must be the registered client's".into(),
            )
            .into());
        }
        let secret = super::reveal_secret(self.secrets, &app).ok();
        if let Some(given) = &req.client_secret
            && secret.as_deref() != Some(given.as_str())
        {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_secret is not the registered client's".into(),
            )
            .into());
        }
        let registered_with = app
            .registration
            .as_ref()
            .map(|r| r.metadata.token_endpoint_auth_method.clone())
            .unwrap_or_default();
        if req.uses_secret() != registration::method_uses_secret(&registered_with) {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "token_endpoint_auth_method cannot change from {registered_with} to {}",
                req.metadata.token_endpoint_auth_method
            ))
            .into());
        }
        let mut req = req;
        if req.metadata.client_name != app.name {
            let (name, api_name) = free_name(
                self.store,
                &app.org_id,
                &req.metadata.client_name,
                Some(app.id),
            )
            .await?;
            req.metadata.client_name = name.clone();
            app.name = name;
            app.api_name = api_name;
        }
        // What an admin tightened in Setup stays tight: a client's update cannot lift PKCE.
        let pkce = app.require_pkce;
        registration::apply(&mut app, &req);
        app.require_pkce |= pkce;
        self.store.save_app(&app).await?;
        let action = format!(
            "Updated connected app {:?} through its registration access token",
            app.name
        );
        self.audit(&app, action).await;
        Ok(self.answer(&app, secret.as_deref(), None))
    }

    /// RFC 7592 delete: the app leaves the wire (an unknown client from now on), its tokens
    /// end, and its registration access token stops working. Setup keeps the app, marked so.
    pub async fn delete(&self, client_id: &str, token: &str) -> Result<(), Refused> {
        let mut app = self.registered(client_id, token).await?;
        // Tokens first: if that fails, the registration access token still works for a retry.
        self.store
            .revoke_sessions(SessionFilter::App(app.id), true, self.now)
            .await?;
        app.oauth_enabled = false;
        if let Some(r) = &mut app.registration {
            r.access_token = None;
        }
        self.store.save_app(&app).await?;
        let action = format!(
            "Deregistered connected app {:?} through its registration access token",
            app.name
        );
        self.audit(&app, action).await;
        Ok(())
    }

    /// Records a change to `app` in its org's Setup Audit Trail, as made by registration.
    async fn audit(&self, app: &ConnectedApp, action: String) {
        let actor = "dynamic client registration";
        super::audit(
            self.store,
            Some(app.org_id),
            actor,
            SECTION,
            action,
            self.now,
        )
        .await;
    }
}

/// A name and API name no other app of the org has (but `except`, the app being renamed):
/// the client's, else numbered.
async fn free_name(
    store: &dyn Backend,
    org: &SfId,
    wanted: &str,
    except: Option<SfId>,
) -> Result<(String, String), StoreError> {
    let apps = store.apps(Some(org)).await?;
    let taken = |name: &str, api: &str| {
        apps.iter()
            .filter(|a| Some(a.id) != except)
            .any(|a| a.name.eq_ignore_ascii_case(name) || a.api_name.eq_ignore_ascii_case(api))
    };
    let mut n = 1;
    loop {
        let name = if n == 1 {
            wanted.to_owned()
        } else {
            format!("{wanted} ({n})")
        };
        let api = idforce_core::model::api_name_of(&name);
        if !taken(&name, &api) {
            return Ok((name, api));
        }
        n += 1;
    }
}
