//! The token endpoint's grants. The client is identified (and, where the grant needs it,
//! authenticated) before a grant's own rules run; each grant lives in its own module.

use std::sync::Arc;

mod asset_token;
mod authorization_code;
mod client_credentials;
mod device;
mod jwt_bearer;
mod password;
mod refresh_token;
mod saml_bearer;
mod token_exchange;

pub use asset_token::asset_key_id;
pub use password::{check_api_login, check_login};

use aws_lc_rs::digest;

use crate::error::OAuthError;
use crate::login_history::{self, Caller, LoginEvent, LoginStatus, LoginSubtype};
use crate::model::{ConnectedApp, Family, LockoutPolicy, Millis, Org, RefreshToken, Session, User};
use crate::ports::{
    JwtSigner, PasswordVerifier, SecretBox, Store, StoreError, StoreResult, Tokens,
};
use crate::scope::Scopes;
use crate::token::{self, CredentialHasher};
use crate::wire::{ClientCredentials, Granted, Params, TokenResponse};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The grants this server knows, by their `grant_type` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    Password,
    JwtBearer,
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    /// The device's poll (spec §3.8).
    Device,
    TokenExchange,
    SamlBearer,
}

impl GrantType {
    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "password" => Some(GrantType::Password),
            JWT_BEARER => Some(GrantType::JwtBearer),
            "client_credentials" => Some(GrantType::ClientCredentials),
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "device" | "urn:ietf:params:oauth:grant-type:device_code" => Some(GrantType::Device),
            crate::token_exchange::GRANT => Some(GrantType::TokenExchange),
            saml_bearer::GRANT => Some(GrantType::SamlBearer),
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::JwtBearer => "jwt_bearer",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::Device => "device",
            GrantType::TokenExchange => "token_exchange",
            GrantType::SamlBearer => "saml_bearer",
        }
    }
}

/// Server-wide settings the grants depend on.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// This server's public URL, without a trailing slash.
    pub public_url: String,
    /// Whether JWT assertions may name login.salesforce.com / test.salesforce.com as `aud`.
    pub accept_salesforce_audiences: bool,
    pub lockout: LockoutPolicy,
    /// Whether logins are recorded in Login History.
    pub login_history: bool,
    /// How often a user may log in (`[server] login_rate_limit`); `None`: no limit.
    pub login_rate: Option<crate::model::LoginRate>,
}

impl IssuerSettings {
    pub fn identity_url(&self, org: &Org, user: &User) -> String {
        format!(
            "{}/id/{}/{}",
            self.public_url,
            org.id.to18(),
            user.id.to18()
        )
    }

    /// Where the org's data lives: its `instance_url` when set, else its My Domain's URL,
    /// else this server's public URL.
    pub fn instance_url(&self, org: &Org) -> String {
        if let Some(url) = &org.instance_url {
            return url.trim_end_matches('/').to_owned();
        }
        self.my_domain_url(org)
            .unwrap_or_else(|| self.public_url.trim_end_matches('/').to_owned())
    }

    /// Every URL the org's tokens may be issued at (their `iss`): the login host, the org's
    /// My Domain, and each of its sites under either.
    pub fn issuers(&self, org: &Org) -> Vec<String> {
        let public = self.public_url.trim_end_matches('/').to_owned();
        let hosts: Vec<String> = std::iter::once(public)
            .chain(self.my_domain_url(org))
            .collect();
        let mut out = hosts.clone();
        for host in &hosts {
            out.extend(org.sites.iter().map(|s| format!("{host}/{}", s.path)));
        }
        out
    }

    /// The URL of the org's My Domain on this server, if it has one.
    pub fn my_domain_url(&self, org: &Org) -> Option<String> {
        org.my_domain
            .as_deref()
            .map(|host| crate::hosts::url_of_host(&self.public_url, host))
    }
}

/// Everything a grant may touch, for the duration of one request.
pub struct TokenContext<'a> {
    pub store: &'a dyn Store,
    pub hasher: &'a CredentialHasher,
    pub passwords: &'a dyn PasswordVerifier,
    pub settings: &'a IssuerSettings,
    pub signer: &'a dyn JwtSigner,
    /// Apps' key sets published at a `jwks_uri`.
    pub key_sets: &'a dyn crate::ports::KeySets,
    /// Verifies SAML bearer assertions (`NoSaml` in builds without the feature).
    pub saml: &'a dyn crate::ports::SamlVerifier,
    /// Opens apps' sealed consumer secrets, which key `signature` when a request carries none.
    pub secrets: &'a dyn SecretBox,
    pub now: Millis,
    /// The host name the request was sent to (without port), for host-bound rules.
    pub host: Option<&'a str>,
    /// Where the request was sent: the login host, an org's My Domain, or a site.
    pub entry: &'a crate::hosts::Entry,
    /// The client's address and user agent, for Login History.
    pub caller: Caller<'a>,
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::store_failure(e)
    }
}

/// Runs the grant named by `grant_type`.
pub async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<(GrantType, Granted), OAuthError> {
    let grant = params
        .get("grant_type")
        .and_then(GrantType::parse)
        .ok_or_else(|| {
            let why = match params.get("grant_type") {
                Some(g) => {
                    let shown: String = g.chars().take(64).collect();
                    format!("an unknown grant_type `{}`", shown.escape_debug())
                }
                None => "no grant_type".to_owned(),
            };
            OAuthError::unsupported_grant_type().because(why)
        })?;
    if let Some(name) = params.duplicate() {
        return Err(OAuthError::duplicated(name));
    }
    let response = match grant {
        GrantType::Password => password::exchange(ctx, params, client).await,
        GrantType::JwtBearer => jwt_bearer::exchange(ctx, params).await,
        GrantType::ClientCredentials => client_credentials::exchange(ctx, params, client).await,
        GrantType::AuthorizationCode => authorization_code::exchange(ctx, params, client).await,
        GrantType::RefreshToken => refresh_token::exchange(ctx, params, client).await,
        GrantType::Device => device::exchange(ctx, params, client).await,
        GrantType::TokenExchange if asset_token::is_requested(params, client) => {
            let issued = asset_token::issue(ctx, params, client).await?;
            return Ok((grant, Granted::AssetToken(issued)));
        }
        GrantType::TokenExchange => token_exchange::exchange(ctx, params, client).await,
        GrantType::SamlBearer => saml_bearer::exchange(ctx, params).await,
    };
    Ok((grant, Granted::Tokens(response?)))
}

/// Finds the app named by the request's `client_id`.
async fn identify_client(
    ctx: &TokenContext<'_>,
    client: &ClientCredentials,
) -> Result<Arc<ConnectedApp>, OAuthError> {
    let id = client
        .client_id
        .as_deref()
        .ok_or_else(|| OAuthError::unknown_client().because("no client_id"))?;
    app_of_consumer_key(ctx, id)
        .await?
        .ok_or_else(|| unknown_client(ctx, id))
}

/// The app a consumer key names on the wire: without "Enable OAuth Settings" an app has no
/// consumer key, so every flow finds it here or not at all.
pub(crate) async fn app_of_consumer_key(
    ctx: &TokenContext<'_>,
    client_id: &str,
) -> StoreResult<Option<Arc<ConnectedApp>>> {
    Ok(ctx
        .store
        .app_by_client_id(client_id)
        .await?
        .filter(|a| a.oauth_enabled))
}

/// The refusal of a client id no app has. It is logged as a keyed digest, as unknown
/// usernames are: a client that mixes up its fields sends its secret there.
pub(crate) fn unknown_client(ctx: &TokenContext<'_>, client_id: &str) -> OAuthError {
    let why = format!("no app {}", ctx.hasher.log_tag(client_id));
    OAuthError::unknown_client().because(why)
}

/// Identifies the app and checks its secret. A public app (no secret) passes only when
/// `secret_optional`; a secret that is sent is always checked.
pub async fn authenticate_client(
    ctx: &TokenContext<'_>,
    client: &ClientCredentials,
    secret_optional: bool,
) -> Result<Arc<ConnectedApp>, OAuthError> {
    if let Some(assertion) = &client.assertion {
        return client_assertion(ctx, client, assertion).await;
    }
    let app = identify_client(ctx, client).await?;
    if crate::registration::requires_client_assertion(&app) {
        let why = "no client assertion for an app registered with private_key_jwt";
        return Err(OAuthError::bad_client_secret().because(why));
    }
    let refused = match (&app.secret_digest, client.client_secret.as_deref()) {
        (Some(stored), Some(given)) if !ctx.hasher.matches(given, stored) => {
            Some("a client secret that is not the app's")
        }
        (Some(_), None) if !secret_optional => Some("no client secret"),
        (None, Some(_)) => Some("a client secret for a public app (it has none)"),
        _ => None,
    };
    match refused {
        None if app.blocked => {
            Err(OAuthError::app_blocked().because(format!("app {} is blocked", app.id)))
        }
        None => Ok(app),
        Some(why) => Err(OAuthError::bad_client_secret().because(why)),
    }
}

/// `private_key_jwt` (RFC 7523 §2.2): the app is the assertion's `iss` and `sub` (and the
/// `client_id`, if one is sent), it is signed with the key of the app's certificate, it names
/// this token endpoint (or its issuer) as audience, has not expired, and its `jti` is used once.
/// Every refusal answers as a wrong secret does.
async fn client_assertion(
    ctx: &TokenContext<'_>,
    client: &ClientCredentials,
    compact: &str,
) -> Result<Arc<ConnectedApp>, OAuthError> {
    let refused = |why: String| OAuthError::bad_client_secret().because(why);
    let parsed = crate::assertion::parse(compact).map_err(|e| {
        let why = match e.cause() {
            crate::error::Cause::Refused(why) => why.into_owned(),
            other => format!("{other:?}"),
        };
        refused(format!("client assertion: {why}"))
    })?;
    let claims = &parsed.claims;
    if claims.iss != claims.sub
        || client
            .client_id
            .as_deref()
            .is_some_and(|id| id != claims.iss)
    {
        return Err(refused(
            "a client assertion whose iss, sub and client_id are not one client".into(),
        ));
    }
    let app = app_of_consumer_key(ctx, &claims.iss)
        .await?
        .ok_or_else(|| unknown_client(ctx, &claims.iss))?;
    if app.certificate_der.is_none() && app.jwks.is_none() && app.jwks_uri.is_none() {
        return Err(refused(
            "a client assertion for an app without a certificate or registered keys".into(),
        ));
    }
    if !signed_by_app(ctx, &app, &parsed).await {
        return Err(refused(
            "a client assertion not signed with the app's key".into(),
        ));
    }
    let token_endpoint =
        |base: &str| format!("{}/services/oauth2/token", base.trim_end_matches('/'));
    // This server as issuer, or the endpoint the assertion is sent to (token or introspection).
    let introspection =
        |base: &str| format!("{}/services/oauth2/introspect", base.trim_end_matches('/'));
    let accepted = [
        token_endpoint(&ctx.entry.base_url),
        introspection(&ctx.entry.base_url),
        ctx.entry.base_url.clone(),
        token_endpoint(&ctx.settings.public_url),
        introspection(&ctx.settings.public_url),
        ctx.settings.public_url.clone(),
    ];
    claims.check_audience(&accepted).map_err(|_| {
        refused(format!(
            "a client assertion for another audience: {:?}",
            claims.aud
        ))
    })?;
    claims
        .check_expiry(ctx.now / 1000)
        .map_err(|_| refused("an expired client assertion".into()))?;
    let jti = claims
        .jti
        .as_deref()
        .ok_or_else(|| refused("a client assertion without a jti".into()))?;
    let expires_at = claims
        .exp
        .saturating_mul(1000)
        .saturating_add(crate::assertion::CLOCK_SKEW_SECS * 1000);
    // Keyed by client and jti alone (not by the assertion's text or expiry, as JWT bearer
    // assertions are): another assertion with a spent jti is a replay too.
    let key = sha256(format!("idforce client assertion\0{}\0{jti}", claims.iss).as_bytes());
    if !ctx
        .store
        .first_use_of_assertion(&key, expires_at, ctx.now)
        .await?
    {
        return Err(refused(format!(
            "a client assertion's jti used before ({jti})"
        )));
    }
    if app.blocked {
        return Err(OAuthError::app_blocked().because(format!("app {} is blocked", app.id)));
    }
    Ok(app)
}

/// After a grant stored a new refresh token of `user` for `app`: their approvals beyond the
/// app's limit end, oldest first, with their sessions ("each connected app allows five unique
/// approvals per user"). Done after the grant's own write: two grants at once may leave one
/// approval too many until the next. A store failure here leaves the grant as it is; the next
/// grant trims again.
/// A login granted so far, held to the profile's login restrictions (IP ranges and hours,
/// as the app relaxes them) and then counted against the login rate limit. Every way of
/// logging in calls it once its own checks have passed.
pub async fn admit_login(
    ctx: &TokenContext<'_>,
    user: &User,
    app: Option<&ConnectedApp>,
    entry: crate::login_policy::Entry,
) -> Result<(), OAuthError> {
    crate::login_policy::check(ctx, user, app, entry).await?;
    count_login(ctx, user).await
}

/// Counts a login of `user` against the login rate limit, if there is one: every way of
/// logging in calls it once the login is otherwise granted (password grant, SOAP login, the
/// login page, JWT bearer, client credentials' run-as user), so the count spans them all and,
/// kept in the store, every node. Beyond the limit: Salesforce's `login rate exceeded`.
pub async fn count_login(ctx: &TokenContext<'_>, user: &User) -> Result<(), OAuthError> {
    let Some(rate) = ctx.settings.login_rate else {
        return Ok(());
    };
    if ctx.store.take_login(&user.id, ctx.now, rate).await? {
        return Ok(());
    }
    let why = format!(
        "user {} has logged in {} times within {} s",
        user.id,
        rate.logins,
        rate.window_ms / 1000
    );
    Err(OAuthError::login_rate_exceeded()
        .because(why)
        .in_login_history(user, LoginStatus::LoginRateExceeded))
}

/// Refuses a login that is not the user's to make now, whatever proves who they are: a user
/// who may not log in (deactivated, frozen), a blocked app, a locked-out user. For the flows
/// that take no password (JWT bearer, token exchange).
pub(crate) fn refuse_unusable(
    ctx: &TokenContext<'_>,
    user: &User,
    app: &ConnectedApp,
) -> Result<(), OAuthError> {
    if let Some(refused) = user.login_refusal() {
        return Err(refused);
    }
    if app.blocked {
        return Err(OAuthError::app_blocked()
            .because(format!("app {} is blocked", app.id))
            .in_login_history(user, LoginStatus::AppBlocked));
    }
    if user.is_locked(ctx.now) {
        let why = format!("user {} is locked out", user.id);
        return Err(OAuthError::authentication_failure()
            .because(why)
            .in_login_history(user, LoginStatus::PasswordLockout));
    }
    Ok(())
}

/// The key set published at `uri`, fetched again when it lacks the key `kid` names (its owner
/// may have rotated), as often as `KeySets` allows.
pub(crate) async fn published_keys(
    ctx: &TokenContext<'_>,
    uri: &str,
    kid: Option<&str>,
) -> Result<Arc<crate::jwks::JwkSet>, String> {
    let set = ctx.key_sets.key_set(uri, false).await;
    if set.as_ref().is_ok_and(|s| !s.knows(kid)) {
        return ctx.key_sets.key_set(uri, true).await;
    }
    set
}

/// Whether the app's certificate, or a key of the set it registered (inline or at its
/// `jwks_uri`), signed a client assertion. A published set that lacks the assertion's key is
/// fetched again (the client may have rotated), as often as `KeySets` allows.
async fn signed_by_app(
    ctx: &TokenContext<'_>,
    app: &ConnectedApp,
    assertion: &crate::assertion::Assertion<'_>,
) -> bool {
    if let Some(der) = app.certificate_der.as_deref()
        && assertion.verify_signature(der).is_ok()
    {
        return true;
    }
    if let Some(text) = app.jwks.as_deref()
        && let Ok(set) = crate::jwks::JwkSet::from_json(text)
        && assertion.signed_by(&set)
    {
        return true;
    }
    let Some(uri) = app.jwks_uri.as_deref() else {
        return false;
    };
    match published_keys(ctx, uri, assertion.kid.as_deref()).await {
        Ok(set) => assertion.signed_by(&set),
        Err(why) => {
            tracing::warn!(app = %app.id, %why, "cannot read the app's jwks_uri");
            false
        }
    }
}

pub(crate) async fn keep_approvals_within_limit(
    ctx: &TokenContext<'_>,
    user: &crate::sfid::SfId,
    app: &ConnectedApp,
) {
    let Ok(families) = ctx.store.live_families(user, &app.id).await else {
        return;
    };
    let limit = app.max_approvals_per_user.max(1) as usize;
    for family in families.iter().take(families.len().saturating_sub(limit)) {
        let _ = ctx.store.revoke_family(family, ctx.now).await;
    }
}

/// The user a grant through `app` acts for: they must exist (else `missing`) and be allowed
/// to log in. With their org.
async fn active_user(
    ctx: &TokenContext<'_>,
    id: &crate::sfid::SfId,
    app: &ConnectedApp,
    missing: fn() -> OAuthError,
) -> Result<(Arc<User>, Arc<Org>), OAuthError> {
    let user = ctx
        .store
        .user(id)
        .await?
        .ok_or_else(|| missing().because(format!("user {id} no longer exists")))?;
    if !ctx.entry.admits(&user.org_id) {
        return Err(missing().because(elsewhere(ctx, &user)));
    }
    if let Some(refused) = user.login_refusal() {
        return Err(refused.through(app));
    }
    let org = org_of(ctx, &user).await?;
    Ok((user, org))
}

/// Why a user of another org is refused on this My Domain or site (their own org's hosts and
/// the login host serve them).
pub(crate) fn elsewhere(ctx: &TokenContext<'_>, user: &User) -> String {
    format!(
        "user {} belongs to org {}, not to the org of {}",
        user.id, user.org_id, ctx.entry.base_url
    )
}

async fn org_of(ctx: &TokenContext<'_>, user: &User) -> Result<Arc<Org>, OAuthError> {
    ctx.store
        .org(&user.org_id)
        .await?
        .ok_or_else(|| OAuthError::fault(format!("user {} belongs to no stored org", user.id)))
}

/// The requested `scope`, if any, granted against the app's scopes.
pub(crate) fn granted_scopes(params: &Params, allowed: &Scopes) -> Result<Scopes, OAuthError> {
    let requested = params.get("scope").map(Scopes::parse).transpose()?;
    Scopes::grant(allowed, requested.as_ref())
}

/// A new session for the user through the app, with its Login History record: stored, and the
/// token response. `secret` is the consumer secret the client presented, which keys the
/// `signature`.
pub(crate) async fn issue_session(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
    secret: Option<&str>,
    flow: LoginSubtype,
) -> Result<TokenResponse, OAuthError> {
    let opened = open_session(ctx, org, user, app, scopes, None, flow)?;
    ctx.store.insert_tokens(&opened.tokens(None)).await?;
    let key = signing_secret(ctx, app, secret);
    Ok(opened.response(ctx, org, user, key.as_deref()))
}

/// The consumer secret that keys a response's `signature`: the one the client presented (it
/// was checked), else the app's own, opened from its sealed copy — so that responses to
/// requests without the secret (the user-agent flow, a refresh by a public-client setting) are
/// signed as Salesforce signs them. `None` for an app without a secret, or whose secret was set
/// before secrets were kept sealed.
pub(crate) fn signing_secret(
    ctx: &TokenContext<'_>,
    app: &ConnectedApp,
    presented: Option<&str>,
) -> Option<String> {
    if let Some(secret) = presented {
        return Some(secret.to_owned());
    }
    let sealed = app.secret_sealed.as_deref()?;
    let purpose = crate::ports::client_secret_purpose(&app.id);
    String::from_utf8(ctx.secrets.open(&purpose, sealed)?).ok()
}

/// A session started outside the token endpoint (SOAP login): its access token (the
/// `sessionId`), stored before it is returned.
pub async fn start_session(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
) -> Result<String, OAuthError> {
    let opened = open_session(
        ctx,
        org,
        user,
        app,
        scopes,
        None,
        LoginSubtype::SoapApiLogin,
    )?;
    ctx.store.insert_tokens(&opened.tokens(None)).await?;
    Ok(opened.access_token)
}

/// A session minted but not yet stored: its access token, its record and the login's.
pub(crate) struct OpenedSession {
    access_token: String,
    pub(crate) record: Session,
    login: Option<LoginEvent>,
}

/// Mints the access token of a new session, a login by `flow`. The caller stores
/// `tokens` (alone, or in the transaction of the grant that pays for them) before it answers
/// with `response`.
pub(crate) fn open_session(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
    family: Option<Family>,
    flow: LoginSubtype,
) -> Result<OpenedSession, OAuthError> {
    let access_token = if app.jwt_access_tokens {
        jwt_access_token(ctx, org, user, app, &scopes)?
    } else {
        token::mint_access_token(&org.id, ctx.now)
    };
    let record = Session {
        digest: ctx.hasher.session_key(&access_token),
        org_id: org.id,
        user_id: user.id,
        app_id: app.id,
        scopes,
        issued_at: ctx.now,
        last_used_at: ctx.now,
        timeout_secs: app.session_timeout_secs,
        revoked: false,
        family,
        source_ip: ctx.caller.ip.map(|ip| ip.to_string()),
    };
    let login = ctx
        .settings
        .login_history
        .then(|| login_history::event(ctx, user, Some(app), flow, LoginStatus::Success));
    Ok(OpenedSession {
        access_token,
        record,
        login,
    })
}

impl OpenedSession {
    /// What a grant stores for this session: it, `refresh` if any, and the login's record.
    pub(crate) fn tokens(&self, refresh: Option<RefreshToken>) -> Tokens {
        Tokens {
            session: self.record.clone(),
            refresh,
            login: self.login.clone(),
        }
    }

    /// The token response for this (stored) session.
    pub(crate) fn response(
        self,
        ctx: &TokenContext<'_>,
        org: &Org,
        user: &User,
        secret: Option<&str>,
    ) -> TokenResponse {
        let id = ctx.settings.identity_url(org, user);
        let issued_at = ctx.now.to_string();
        TokenResponse {
            access_token: self.access_token,
            refresh_token: None,
            signature: secret.map(|s| token::response_signature(s, &id, &issued_at)),
            scope: Some(self.record.scopes.to_string()),
            id_token: None,
            instance_url: ctx.settings.instance_url(org),
            id,
            token_type: "Bearer",
            issued_at: Some(issued_at),
            issued_token_type: None,
            sfdc_community_url: ctx.entry.community().map(|(url, _)| url.to_owned()),
            sfdc_community_id: ctx.entry.community().map(|(_, id)| id.to18()),
        }
    }
}

/// A new refresh token of `family`: its secret and its record.
#[allow(clippy::too_many_arguments)]
fn mint_refresh(
    ctx: &TokenContext<'_>,
    family: &Family,
    family_started_at: Millis,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
) -> (String, RefreshToken) {
    let secret = token::mint_refresh_token();
    let record = RefreshToken {
        digest: ctx.hasher.digest(&secret),
        family: *family,
        org_id: org.id,
        user_id: user.id,
        app_id: app.id,
        scopes,
        family_started_at,
        issued_at: ctx.now,
        last_used_at: ctx.now,
        rotated: false,
        revoked: false,
    };
    (secret, record)
}

/// The tokens of a user's grant to an app (authorization code, device and user-agent flows):
/// a session and, when the scopes allow it, a refresh token, both of a new family. Minted, not
/// stored: the caller stores the `Tokens` (in the transaction that spends what paid for them)
/// before it answers with the response.
pub(crate) fn mint_grant(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
    secret: Option<&str>,
    flow: LoginSubtype,
) -> Result<(Tokens, TokenResponse), OAuthError> {
    let family = token::random_bytes::<16>();
    let refresh = scopes
        .grants_refresh_token()
        .then(|| mint_refresh(ctx, &family, ctx.now, org, user, app, scopes.clone()));
    let opened = open_session(ctx, org, user, app, scopes, Some(family), flow)?;
    let tokens = opened.tokens(refresh.as_ref().map(|(_, record)| record.clone()));
    let key = signing_secret(ctx, app, secret);
    let mut response = opened.response(ctx, org, user, key.as_deref());
    response.refresh_token = refresh.map(|(secret, _)| secret);
    Ok((tokens, response))
}

/// The same, stored at once (the user-agent flow, which spends nothing).
pub(crate) async fn issue_grant(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: Scopes,
) -> Result<TokenResponse, OAuthError> {
    let (tokens, response) =
        mint_grant(ctx, org, user, app, scopes, None, LoginSubtype::UserAgent)?;
    ctx.store.insert_tokens(&tokens).await?;
    if tokens.refresh.is_some() {
        keep_approvals_within_limit(ctx, &user.id, app).await;
    }
    Ok(response)
}

/// An RFC 9068 access token: verifiable offline through the JWKS, and, like every access
/// token, stored as a session under its digest so it can be revoked and introspected. Its
/// `exp` is fixed at issue; the stored session still slides for idforce's own endpoints.
fn jwt_access_token(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: &Scopes,
) -> Result<String, OAuthError> {
    let now = ctx.now / 1000;
    let jti = token::hex(&token::random_bytes::<16>());
    let claims = serde_json::json!({
        "iss": ctx.entry.base_url,
        "sub": ctx.settings.identity_url(org, user),
        "aud": ctx.settings.instance_url(org),
        "client_id": app.client_id,
        "scope": scopes.to_string(),
        "iat": now,
        "exp": now + app.session_timeout_secs,
        "jti": jti,
    });
    ctx.signer
        .sign("at+jwt", &claims)
        .ok_or_else(|| OAuthError::fault("no signing key for a JWT access token"))
}

/// Adds an `id_token` to the response when the grant includes `openid` (spec §4).
#[allow(clippy::too_many_arguments)]
pub fn attach_id_token(
    ctx: &TokenContext<'_>,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: &Scopes,
    response: &mut TokenResponse,
    nonce: Option<&str>,
    auth_time: Millis,
) -> Result<(), OAuthError> {
    if !scopes.contains("openid") {
        return Ok(());
    }
    let facts = crate::oidc::IdTokenFacts {
        issuer: &ctx.entry.base_url,
        nonce,
        auth_time,
        access_token: Some(&response.access_token),
        code: None,
    };
    let claims =
        crate::oidc::id_token_claims(ctx.settings, org, user, app, scopes, &facts, ctx.now);
    response.id_token = Some(
        ctx.signer
            .sign("JWT", &claims)
            .ok_or_else(|| OAuthError::fault("no signing key for an id_token"))?,
    );
    Ok(())
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Scopes that only a refresh token carries, never an access token alone.
const REFRESH_SCOPES: &[&str] = &["refresh_token", "offline_access"];
