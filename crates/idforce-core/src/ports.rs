//! What the protocol needs from storage. Each trait is one capability; a backend implements
//! them all and is used as `dyn Store`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::login_history::LoginEvent;
use crate::model::{
    AuthCode, ConnectedApp, DeviceCode, DeviceDecision, Family, LockoutPolicy, LoginSession,
    Millis, Org, Profile, RefreshToken, Session, User,
};
use crate::sfid::SfId;
use crate::token::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A serialization failure or deadlock: the same operation, tried again, may succeed.
    #[error("transaction conflict: {0}")]
    Retryable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Orgs, users and connected apps, read side.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn org(&self, id: &SfId) -> StoreResult<Option<Arc<Org>>>;
    async fn user(&self, id: &SfId) -> StoreResult<Option<Arc<User>>>;
    /// Usernames are unique across orgs and compared without regard to case. May be up to a
    /// second old (a store may cache the directory).
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<Arc<User>>>;
    /// The same, read fresh: for password checks, whose lockout state must be current.
    async fn login_user(&self, username: &str) -> StoreResult<Option<Arc<User>>>;
    /// The profile `name` (ignoring ASCII case) of `org`: its login restrictions.
    async fn profile(&self, org: &SfId, name: &str) -> StoreResult<Option<Arc<Profile>>>;
    async fn app(&self, id: &SfId) -> StoreResult<Option<Arc<ConnectedApp>>>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<Arc<ConnectedApp>>>;
    /// Whether the user has approved the app (interactively, or recorded by an admin).
    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool>;
    /// The users of `org` whose username or email (either without regard to case) or
    /// Federation ID (exactly) is `value`, read fresh: whom a token exchange handler's claim
    /// names. At most two, enough to tell one match from an ambiguous one.
    async fn users_matching(
        &self,
        org: &SfId,
        on: crate::token_exchange::MatchOn,
        value: &str,
    ) -> StoreResult<Vec<Arc<User>>>;
}

/// Failed-login counting and lockout, shared by every flow that checks a password.
///
/// A check is reserved before the password is hashed and counts as a failure until it
/// succeeds: reserved and failed checks together never exceed the policy's limit, so at most
/// `policy.attempts` passwords are verified for a user per lockout period however many
/// arrive at once, on however many nodes.
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Reserves one password check, in one atomic step: refused (`false`) while the user is
    /// locked out, and when `policy.attempts` checks are already counted — which locks the
    /// user for the policy's duration (so that reservations never settled, their requests
    /// abandoned, cannot hold the count at the limit for ever).
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool>;
    /// A reserved check failed: when the count has reached the limit, locks the user until
    /// `now` plus the policy's duration and restarts the count. Returns whether the user is
    /// now locked.
    async fn login_attempt_failed(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool>;
    /// A reserved check succeeded (or an administrator unlocks the user): the count restarts
    /// and any lock ends.
    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()>;
    /// Counts a login of `user` against `rate` if it is within it (then `true`); a login
    /// beyond it is not counted (`false`), so a client that keeps trying is let in again as
    /// soon as the window has room. The window slides: the previous window's logins count in
    /// proportion to how much of it the sliding window still covers. One atomic step on every
    /// backend, so nodes sharing a store share the count.
    async fn take_login(
        &self,
        user: &SfId,
        now: Millis,
        rate: crate::model::LoginRate,
    ) -> StoreResult<bool>;
}

/// What a grant that succeeds stores: the session of its access token and, when it issues
/// one, a refresh token. A store writes them in the transaction that spends what paid for them
/// (a code, a refresh token, a device authorization), so that a grant has all of its writes or
/// none.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub session: Session,
    pub refresh: Option<RefreshToken>,
    /// The grant's Login History record, stored with the rest.
    pub login: Option<LoginEvent>,
}

impl Tokens {
    /// A session alone (tests, and flows that record no login).
    pub fn session(session: Session) -> Tokens {
        Tokens {
            session,
            refresh: None,
            login: None,
        }
    }
}

/// Login History: refused logins (a success is stored with its grant's `Tokens`).
#[async_trait]
pub trait LoginHistory: Send + Sync {
    async fn record_login(&self, event: &LoginEvent) -> StoreResult<()>;
}

/// Access tokens (sessions), stored under their keyed digest.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// Stores a session and its refresh token, if any, in one transaction.
    async fn insert_tokens(&self, tokens: &Tokens) -> StoreResult<()>;
    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>>;
    /// Pushes the idle clock to `now`.
    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()>;
    /// Returns whether a live session was revoked.
    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool>;
}

/// One-time use of JWT bearer assertions.
#[async_trait]
pub trait AssertionLedger: Send + Sync {
    /// Records an assertion until it expires. Returns `false` if it was already recorded.
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Records the assertion and stores the tokens it pays for, in one transaction: a grant
    /// either spends its assertion and has its session, or neither. Returns `false`, having
    /// written nothing, if the assertion was already recorded.
    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool>;
}

/// What redeeming an authorization code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// This call spent the code and stored its tokens.
    Redeemed,
    /// The code had been spent already: every token its first redemption issued is revoked.
    Reused,
    Unknown,
}

/// Single-use authorization codes.
#[async_trait]
pub trait Codes: Send + Sync {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// The code as issued, and whether it has been spent.
    async fn code(&self, digest: &Digest) -> StoreResult<Option<(AuthCode, bool)>>;
    /// Spends a code and stores `tokens` (of a family the code then records) in one
    /// transaction: of concurrent redemptions exactly one sees `Redeemed`. A code spent before
    /// has the family of its first redemption revoked, in the same transaction, and `tokens`
    /// are not written. Without `tokens` (a request refused after the code was found) the
    /// code is spent with nothing to show for it.
    async fn redeem_code(
        &self,
        digest: &Digest,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<Redemption>;
}

/// What a device's poll found (each answer already recorded: the poll time, a slower
/// interval, a redemption).
#[derive(Debug, Clone, PartialEq)]
pub enum DevicePoll {
    Unknown,
    /// Polled sooner than the interval allows; the interval has grown by 5 seconds.
    TooSoon(DeviceCode),
    /// On time: the authorization as it stands. `redeemed` is true only for the one poll that
    /// spent an approved authorization.
    OnTime {
        code: DeviceCode,
        redeemed: bool,
    },
}

/// Device authorizations (RFC 8628).
#[async_trait]
pub trait DeviceCodes: Send + Sync {
    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()>;
    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>>;
    /// Records the user's decision if the authorization is still pending and unexpired;
    /// returns whether it did.
    async fn decide_device_code(
        &self,
        user_code_digest: &Digest,
        decision: DeviceDecision,
        now: Millis,
    ) -> StoreResult<bool>;
    /// The authorization as it stands, if it is `app`'s.
    async fn device_code(&self, digest: &Digest, app: &SfId) -> StoreResult<Option<DeviceCode>>;
    /// A poll by the device (for `app`) at `now`: checks and records its timing and, given
    /// `tokens` for the user who approved it, spends an approved authorization and stores them
    /// in the same transaction (exactly one of concurrent polls redeems it). A code of another
    /// app is `Unknown`.
    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<DevicePoll>;
}

/// Refresh tokens and their families.
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>>;
    /// Uses `old` at `now` to start `tokens.session`, in one transaction. With
    /// `tokens.refresh`, `old` is rotated to it if it has been neither rotated nor revoked
    /// (else its whole family is revoked: it was copied); without, `old` is marked used (idle
    /// policies count from it; a store may record uses of one token at most once a second) if
    /// it is not revoked. Returns whether the session was started;
    /// on `false` nothing else was written.
    async fn use_refresh_token(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool>;
    /// Revokes every refresh token and session of a family; returns how many sessions ended.
    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64>;
    /// The families of `user`'s live refresh tokens for `app` (their approvals), oldest first.
    async fn live_families(&self, user: &SfId, app: &SfId) -> StoreResult<Vec<Family>>;
}

/// Browser login sessions.
#[async_trait]
pub trait LoginSessions: Send + Sync {
    /// Starts a browser session, with the login's Login History record in the same
    /// transaction.
    async fn insert_login_session(
        &self,
        s: &LoginSession,
        login: Option<&LoginEvent>,
    ) -> StoreResult<()>;
    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>>;
    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()>;
}

/// Approvals written by the consent page.
#[async_trait]
pub trait Approvals: Send + Sync {
    /// The scopes the user approved for the app, if any.
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<crate::scope::Scopes>>;
    async fn approve(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &crate::scope::Scopes,
        now: Millis,
    ) -> StoreResult<()>;
}

pub trait Store:
    Directory
    + LoginAttempts
    + Sessions
    + AssertionLedger
    + Codes
    + RefreshTokens
    + LoginSessions
    + Approvals
    + DeviceCodes
    + LoginHistory
{
}
impl<T> Store for T where
    T: Directory
        + LoginAttempts
        + Sessions
        + AssertionLedger
        + Codes
        + RefreshTokens
        + LoginSessions
        + Approvals
        + DeviceCodes
        + LoginHistory
{
}

/// Too many password checks are waiting: this one is answered at once instead of queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// Checks a password against its stored hash. Kept behind a trait so the caller decides
/// where the (deliberately slow) work runs.
#[async_trait]
pub trait PasswordVerifier: Send + Sync {
    async fn verify(&self, phc_hash: &str, password: &str) -> Result<bool, Overloaded>;

    /// Whether a login may go ahead at all: refused while the checks' queue is full, for every
    /// login alike — known or unknown user — so that an overloaded answer says nothing about
    /// who exists.
    fn admit(&self) -> Result<(), Overloaded> {
        Ok(())
    }

    /// Resolves once the stored password hashes are the ones in force: at start the server
    /// may still be applying the config file's passwords, and a login must not read a hash
    /// that is about to be replaced.
    async fn settled(&self) {}

    /// Waits about as long as a check takes now, without doing one: what a login refused
    /// before its password is checked (unknown or locked user) costs, so that the time of
    /// the answer does not tell which it was.
    async fn pause(&self) {}
}

/// Seals and opens secrets under the system secret, which is kept outside the store: what a
/// copy of the database must not reveal (consumer secrets, which key the token response's
/// `signature`). `purpose` binds a sealed value to its place, so it cannot be moved to another.
pub trait SecretBox: Send + Sync {
    fn seal(&self, purpose: &str, plain: &[u8]) -> Vec<u8>;
    /// `None` when `sealed` was not sealed for `purpose` by a secret given.
    fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>>;
}

/// The purpose of an app's sealed consumer secret.
pub fn client_secret_purpose(app: &SfId) -> String {
    format!("client_secret:{}", app.as15())
}

/// Client key sets published at a URL (an app's `jwks_uri`), fetched and cached by the server.
#[async_trait]
pub trait KeySets: Send + Sync {
    /// The set at `uri`. `refetch` asks for a fresh copy (an assertion named a key the cached
    /// copy lacks); an implementation may answer from its cache instead, so that no client can
    /// make it fetch at every request. The error says why there is no set, for the log.
    async fn key_set(
        &self,
        uri: &str,
        refetch: bool,
    ) -> Result<std::sync::Arc<crate::jwks::JwkSet>, String>;
}

/// Key sets for a server that fetches none: every `jwks_uri` is unreadable.
pub struct NoKeySets;

#[async_trait]
impl KeySets for NoKeySets {
    async fn key_set(
        &self,
        uri: &str,
        _refetch: bool,
    ) -> Result<std::sync::Arc<crate::jwks::JwkSet>, String> {
        Err(format!("{uri}: key sets are not fetched here"))
    }
}

/// Signs JWTs (id_tokens, JWT access tokens) with the current RS256 key.
pub trait JwtSigner: Send + Sync {
    /// A compact JWS of `claims` with header `{"alg":"RS256","typ":typ,"kid":…}`.
    fn sign(&self, typ: &str, claims: &serde_json::Value) -> Option<String>;
    /// The claims of a JWT of type `typ` that this signer (or a key it still publishes)
    /// signed, whatever its `exp`; `None` for any other token.
    fn verify(&self, compact: &str, typ: &str) -> Option<serde_json::Value>;
}

/// A SAML 2.0 assertion whose signature a certificate verified, read from what the signature
/// covers (never from unsigned parts of the document). Times in seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SamlAssertion {
    pub id: String,
    pub issuer: String,
    pub name_id: String,
    /// Each `AudienceRestriction`'s audiences: every restriction must name this server.
    pub audience_restrictions: Vec<Vec<String>>,
    /// `Conditions`' `NotBefore` and `NotOnOrAfter`.
    pub not_before: Option<i64>,
    pub not_on_or_after: Option<i64>,
    /// The bearer `SubjectConfirmationData`'s `Recipient` and `NotOnOrAfter` (none without a
    /// bearer confirmation).
    pub bearer: Option<(Option<String>, Option<i64>)>,
}

/// Why a SAML assertion was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SamlRefusal {
    /// This build verifies no XML signatures (the `saml-bearer` feature is off).
    Unsupported,
    Invalid(String),
}

/// Verifies SAML assertions (RFC 7522's bearer assertions): an XML-DSig verifier lives outside
/// the protocol layer, and outside default builds.
#[async_trait]
pub trait SamlVerifier: Send + Sync {
    /// The assertion's `Issuer`, read without any verification: which app's certificate to
    /// verify it with. Nothing else may be trusted from it.
    fn claimed_issuer(&self, xml: &str) -> Result<String, SamlRefusal>;
    /// The assertion, if a signature by `certificate_der`'s key covers it.
    async fn verify(&self, xml: &str, certificate_der: &[u8])
    -> Result<SamlAssertion, SamlRefusal>;
}

/// The verifier of a build without SAML: every assertion is unsupported.
pub struct NoSaml;

#[async_trait]
impl SamlVerifier for NoSaml {
    fn claimed_issuer(&self, _xml: &str) -> Result<String, SamlRefusal> {
        Err(SamlRefusal::Unsupported)
    }
    async fn verify(
        &self,
        _xml: &str,
        _certificate_der: &[u8],
    ) -> Result<SamlAssertion, SamlRefusal> {
        Err(SamlRefusal::Unsupported)
    }
}
