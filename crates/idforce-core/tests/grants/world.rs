//! A small org on the in-memory store, a fixed clock, and the grant entry point.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use idforce_core::error::OAuthError;
use idforce_core::grant::{self, GrantType, IssuerSettings, TokenContext};
use idforce_core::login_history::Caller;
use idforce_core::model::*;
use idforce_core::ports::{
    JwtSigner, Overloaded, PasswordVerifier, SamlAssertion, SamlRefusal, SamlVerifier, SecretBox,
};
use idforce_core::scope::Scopes;
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token::CredentialHasher;
use idforce_core::wire::{ClientCredentials, Params, TokenResponse};
use idforce_store::testing::MemoryStore;
use idforce_store::{Accounts, Meta};

/// 2027-01-15T08:00:00Z: every test starts here and moves the clock itself.
pub const NOW: Millis = 1_800_000_000_000;
pub const PUBLIC_URL: &str = "https://idforce.test";
pub const PASSWORD: &str = "correct horse";
pub const SECURITY_TOKEN: &str = "TOKEN123";
pub const SECRET: &str = "app-secret";
pub const CALLER_IP: &str = "203.0.113.9";
pub const CALLER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// Passwords stored as `plain:<password>`: the grants' rules without Argon2's cost.
pub struct PlainPasswords;

#[async_trait]
impl PasswordVerifier for PlainPasswords {
    async fn verify(&self, stored: &str, password: &str) -> Result<bool, Overloaded> {
        Ok(stored.strip_prefix("plain:") == Some(password))
    }
}

/// Seals by prefixing the purpose: enough to see that a value opens only for its purpose.
pub struct VisibleBox;

impl SecretBox for VisibleBox {
    fn seal(&self, purpose: &str, plain: &[u8]) -> Vec<u8> {
        [purpose.as_bytes(), b"|", plain].concat()
    }
    fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        sealed
            .strip_prefix(purpose.as_bytes())?
            .strip_prefix(b"|")
            .map(<[u8]>::to_vec)
    }
}

/// A SAML verifier for the grant rules: an "assertion" is JSON — the assertion's fields, the
/// SHA-256 fingerprint of the certificate that "signed" it, and optionally an issuer the
/// unsigned text claims instead of the signed one.
pub struct VisibleSaml;

impl VisibleSaml {
    pub fn assertion(signed_by: &[u8], a: &SamlAssertion, claimed: Option<&str>) -> String {
        serde_json::json!({
            "signed_by": idforce_core::certificate::fingerprint(signed_by),
            "claimed": claimed.unwrap_or(&a.issuer),
            "id": a.id, "issuer": a.issuer, "name_id": a.name_id,
            "audiences": a.audience_restrictions,
            "not_before": a.not_before, "not_on_or_after": a.not_on_or_after,
            "bearer": a.bearer.as_ref().map(|(r, t)| serde_json::json!([r, t])),
        })
        .to_string()
    }
}

#[async_trait]
impl SamlVerifier for VisibleSaml {
    fn claimed_issuer(&self, xml: &str) -> Result<String, SamlRefusal> {
        let v: serde_json::Value =
            serde_json::from_str(xml).map_err(|_| SamlRefusal::Invalid("not XML".into()))?;
        Ok(v["claimed"].as_str().unwrap_or_default().to_owned())
    }
    async fn verify(
        &self,
        xml: &str,
        certificate_der: &[u8],
    ) -> Result<SamlAssertion, SamlRefusal> {
        let v: serde_json::Value =
            serde_json::from_str(xml).map_err(|_| SamlRefusal::Invalid("not XML".into()))?;
        if v["signed_by"] != idforce_core::certificate::fingerprint(certificate_der) {
            return Err(SamlRefusal::Invalid("not signed with the app's key".into()));
        }
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok(SamlAssertion {
            id: text("id"),
            issuer: text("issuer"),
            name_id: text("name_id"),
            audience_restrictions: serde_json::from_value(v["audiences"].clone())
                .unwrap_or_default(),
            not_before: v["not_before"].as_i64(),
            not_on_or_after: v["not_on_or_after"].as_i64(),
            bearer: v["bearer"]
                .as_array()
                .map(|b| (b[0].as_str().map(str::to_owned), b[1].as_i64())),
        })
    }
}

/// A signer whose JWTs show their claims in the clear: enough to see what was signed.
pub struct VisibleSigner;

impl JwtSigner for VisibleSigner {
    fn sign(&self, typ: &str, claims: &serde_json::Value) -> Option<String> {
        Some(format!("{typ}.{claims}"))
    }
    fn verify(&self, compact: &str, typ: &str) -> Option<serde_json::Value> {
        let claims = compact.strip_prefix(typ)?.strip_prefix('.')?;
        serde_json::from_str(claims).ok()
    }
}

pub struct World {
    pub store: MemoryStore,
    /// How passwords are checked: [`PlainPasswords`] unless a test holds checks in flight.
    pub passwords: std::sync::Arc<dyn PasswordVerifier>,
    pub hasher: CredentialHasher,
    pub settings: IssuerSettings,
    pub now: Millis,
    /// The host a request was sent to.
    pub host: Option<&'static str>,
    /// Where requests are sent (the login host unless a test changes it).
    pub entry: idforce_core::hosts::Entry,
    /// Where requests come from, for Login History.
    pub caller: Caller<'static>,
    pub org: Org,
    /// Has a security token; its profile is System Administrator.
    pub alice: User,
    /// All users may use it; it has a secret, a certificate and a run-as user (Alice).
    pub app: ConnectedApp,
    /// Key sets "published" at URLs, as a `jwks_uri` serves them.
    pub key_sets: PublishedKeys,
    /// How SAML assertions are verified: [`VisibleSaml`] unless a test builds without SAML.
    pub saml: &'static dyn SamlVerifier,
}

/// Key sets served from memory, counting fetches; a URL not in the map cannot be fetched.
#[derive(Default)]
pub struct PublishedKeys {
    pub sets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    pub fetches: std::sync::atomic::AtomicUsize,
}

impl PublishedKeys {
    pub fn publish(&self, uri: &str, set: &serde_json::Value) {
        self.sets
            .lock()
            .unwrap()
            .insert(uri.into(), set.to_string());
    }
}

#[async_trait]
impl idforce_core::ports::KeySets for PublishedKeys {
    async fn key_set(
        &self,
        uri: &str,
        _refetch: bool,
    ) -> Result<std::sync::Arc<idforce_core::jwks::JwkSet>, String> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let text = self.sets.lock().unwrap().get(uri).cloned();
        let text = text.ok_or_else(|| format!("{uri}: not found"))?;
        idforce_core::jwks::JwkSet::from_json(&text).map(std::sync::Arc::new)
    }
}

impl World {
    pub async fn new() -> World {
        let store = MemoryStore::new();
        let hasher = CredentialHasher::new(&[7; 32]);
        let org = Org {
            id: store.next_id(prefix::ORG).await.unwrap(),
            name: "Acme".into(),
            instance_url: None,
            created_at: NOW,
            my_domain: None,
            logout_url: None,
            sites: Vec::new(),
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        };
        store.save_org(&org).await.unwrap();
        let alice = User {
            id: store.next_id(prefix::USER).await.unwrap(),
            org_id: org.id,
            username: "alice@acme.test".into(),
            email: "alice@acme.test".into(),
            first_name: "Alice".into(),
            last_name: "Example".into(),
            profile: "System Administrator".into(),
            active: true,
            password_hash: format!("plain:{PASSWORD}"),
            security_token: Some((hasher.digest(SECURITY_TOKEN), SECURITY_TOKEN.len())),
            failed_logins: 0,
            locked_until: None,
            created_at: NOW,
            updated_at: NOW,
            frozen: false,
            federation_id: None,
        };
        store.save_user(&alice).await.unwrap();
        let app_id = store.next_id(prefix::CONNECTED_APP).await.unwrap();
        let app = ConnectedApp {
            id: app_id,
            org_id: org.id,
            name: "Integration".into(),
            client_id: "3MVG9grants".into(),
            secret_digest: Some(hasher.digest(SECRET)),
            callback_urls: vec!["https://app.test/cb".into()],
            scopes: Scopes::parse("api refresh_token openid").unwrap(),
            certificate_der: Some(pem_der("jwt.crt")),
            permitted_users: PermittedUsers::AllUsers,
            profiles: vec![],
            pre_authorized_users: vec![],
            run_as: Some(alice.id),
            require_secret_for_web_server_flow: true,
            require_secret_for_refresh_token_flow: true,
            require_pkce: false,
            refresh_token_policy: RefreshTokenPolicy::UntilRevoked,
            rotate_refresh_tokens: false,
            session_timeout_secs: 7200,
            introspect_all_tokens: false,
            id_token_lifetime_secs: 120,
            jwt_access_tokens: false,
            enforce_certificate_validity: false,
            secret_sealed: Some(VisibleBox.seal(
                &idforce_core::ports::client_secret_purpose(&app_id),
                SECRET.as_bytes(),
            )),
            blocked: false,
            api_name: "Test_App".into(),
            contact_email: String::new(),
            oauth_enabled: true,
            device_flow: true,
            post_logout_redirect_uris: Vec::new(),
            max_approvals_per_user: 5,
            initial_access_token: None,
            jwks: None,
            jwks_uri: None,
            registration: None,
            ip_relaxation: Default::default(),
            token_exchange: Default::default(),
        };
        store.save_app(&app).await.unwrap();
        World {
            key_sets: PublishedKeys::default(),
            saml: &VisibleSaml,
            store,
            passwords: std::sync::Arc::new(PlainPasswords),
            hasher,
            settings: IssuerSettings {
                public_url: PUBLIC_URL.into(),
                accept_salesforce_audiences: true,
                lockout: LockoutPolicy::default(),
                login_history: true,
                login_rate: None,
            },
            now: NOW,
            host: None,
            entry: idforce_core::hosts::Entry::login_host(PUBLIC_URL),
            caller: Caller {
                ip: Some(CALLER_IP.parse().unwrap()),
                user_agent: Some(CALLER_AGENT),
            },
            org,
            alice,
            app,
        }
    }

    /// Changes the app and stores it.
    pub async fn change_app(&mut self, change: impl FnOnce(&mut ConnectedApp)) {
        change(&mut self.app);
        self.store.save_app(&self.app).await.unwrap();
    }

    /// Changes the org and stores it.
    pub async fn change_org(&mut self, change: impl FnOnce(&mut Org)) {
        change(&mut self.org);
        self.store.save_org(&self.org).await.unwrap();
    }

    /// Changes Alice and stores her.
    pub async fn change_alice(&mut self, change: impl FnOnce(&mut User)) {
        change(&mut self.alice);
        self.store.save_user(&self.alice).await.unwrap();
    }

    pub fn advance_secs(&mut self, secs: i64) {
        self.now += secs * 1000;
    }

    /// What a grant sees of the server: this world's store, clock and settings.
    pub fn ctx(&self) -> TokenContext<'_> {
        TokenContext {
            store: &self.store,
            hasher: &self.hasher,
            passwords: self.passwords.as_ref(),
            settings: &self.settings,
            signer: &VisibleSigner,
            key_sets: &self.key_sets,
            saml: self.saml,
            secrets: &VisibleBox,
            now: self.now,
            host: self.host,
            entry: &self.entry,
            caller: self.caller,
        }
    }

    /// A request to the token endpoint with these form fields (no Basic header).
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        self.token_with_grant(form).await.map(|(_, r)| r)
    }

    /// A request to the token endpoint that answers with an asset token.
    pub async fn asset_token(
        &self,
        form: &[(&str, &str)],
    ) -> Result<idforce_core::wire::AssetTokenResponse, OAuthError> {
        let params = Params::new(
            form.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let client = ClientCredentials::from_request(&params, None)?;
        match grant::exchange(&self.ctx(), &params, &client).await? {
            (_, idforce_core::wire::Granted::AssetToken(t)) => Ok(t),
            other => panic!("expected an asset token, got {other:?}"),
        }
    }

    pub async fn token_with_grant(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(GrantType, TokenResponse), OAuthError> {
        let params = Params::new(
            form.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let client = ClientCredentials::from_request(&params, None)?;
        let ctx = self.ctx();
        let result =
            grant::exchange(&ctx, &params, &client)
                .await
                .map(|(g, granted)| match granted {
                    idforce_core::wire::Granted::Tokens(t) => (g, t),
                    other => panic!("expected tokens, got {other:?}"),
                });
        // As the server does after answering: a known user's refusal goes to Login History.
        if let Err(e) = &result
            && let Some(g) = params.get("grant_type").and_then(GrantType::parse)
            && let Some(event) = idforce_core::login_history::refusal(
                &ctx,
                e,
                idforce_core::login_history::LoginSubtype::of_grant(g),
            )
        {
            use idforce_core::ports::LoginHistory;
            self.store.record_login(&event).await.unwrap();
        }
        result
    }

    /// Whether an access token is a live session.
    pub async fn live(&self, access_token: &str) -> bool {
        use idforce_core::ports::Sessions;
        let digest = self.hasher.session_key(access_token);
        self.store
            .session(&digest)
            .await
            .unwrap()
            .is_some_and(|s| s.is_live(self.now))
    }

    /// Whether a refresh token is stored neither revoked nor rotated away.
    pub async fn refresh_live(&self, refresh_token: &str) -> bool {
        use idforce_core::ports::RefreshTokens;
        let digest = self.hasher.digest(refresh_token);
        self.store
            .refresh_token(&digest)
            .await
            .unwrap()
            .is_some_and(|t| !t.revoked && !t.rotated)
    }

    /// Login History, newest first: (subtype, status, application) of each row.
    pub async fn history(&self) -> Vec<idforce_core::login_history::LoginEvent> {
        use idforce_store::LoginHistoryAdmin;
        let query = idforce_store::LoginHistoryQuery {
            limit: 1_000,
            ..Default::default()
        };
        let rows = self.store.login_history(&query).await.unwrap();
        rows.into_iter().map(|r| r.event).collect()
    }

    pub async fn next_id(&self, key_prefix: &str) -> SfId {
        self.store.next_id(key_prefix).await.unwrap()
    }
}

/// The error a request must get: Salesforce's status, code and description.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, OAuthError>,
    status: u16,
    error: &str,
    description: &str,
) {
    match result {
        Err(e) => assert_eq!(
            (e.code.status(), e.code.as_str(), e.description.as_ref()),
            (status, error, description),
        ),
        Ok(v) => panic!("expected {error} ({description}), got {v:?}"),
    }
}

pub fn pem_der(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../idforce/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// An RS256 JWT of `claims` signed with the fixture key `key` (`jwt.key` or `other.key`).
pub fn sign_assertion(key: &str, claims: &serde_json::Value) -> String {
    sign_with_header(key, &serde_json::json!({"alg": "RS256"}), claims)
}

fn sign_with_header(key: &str, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let key = RsaKeyPair::from_pkcs8(&pem_der(key)).unwrap();
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The public half of the fixture key `key` as a JWK named `kid`.
pub fn jwk_of(key: &str, kid: &str) -> serde_json::Value {
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
    let pair = RsaKeyPair::from_pkcs8(&pem_der(key)).unwrap();
    let public = pair.public_key();
    serde_json::json!({
        "kty": "RSA", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    })
}

/// An RS256 JWT of `claims`, its header naming `kid`.
pub fn sign_assertion_with_kid(key: &str, kid: &str, claims: &serde_json::Value) -> String {
    sign_with_header(
        key,
        &serde_json::json!({"alg": "RS256", "kid": kid}),
        claims,
    )
}

/// What the log line of a refused request says was wrong.
#[track_caller]
pub fn cause_of<T: std::fmt::Debug>(result: Result<T, OAuthError>) -> String {
    match result.map_err(|e| e.cause()) {
        Err(idforce_core::error::Cause::Refused(why)) => why.into_owned(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Client credentials for the world's app, with its secret.
pub async fn client_credentials(w: &World) -> Result<TokenResponse, OAuthError> {
    w.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
    ])
    .await
}

/// A JWT bearer assertion for Alice, signed with the app's certificate key.
pub async fn jwt_bearer(w: &World) -> Result<TokenResponse, OAuthError> {
    let claims = serde_json::json!({
        "iss": "3MVG9grants", "sub": "alice@acme.test", "aud": PUBLIC_URL,
        "exp": w.now / 1000 + 180,
    });
    w.token(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &sign_assertion("jwt.key", &claims)),
    ])
    .await
}
