//! What the protocol needs from storage. Each trait is one capability; a backend implements
//! them all and is used as `dyn Store`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    AuthCode, ConnectedApp, DeviceCode, DeviceDecision, Family, LockoutPolicy, LoginSession,
    Millis, Org, RefreshToken, Session, User,
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
    async fn app(&self, id: &SfId) -> StoreResult<Option<Arc<ConnectedApp>>>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<Arc<ConnectedApp>>>;
    /// Whether the user has approved the app (interactively, or recorded by an admin).
    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool>;
}

/// Failed-login counting and lockout, shared by every flow that checks a password.
#[async_trait]
pub trait LoginAttempts: Send + Sync {
    /// Counts a failure; locks the user when the count reaches the policy's limit.
    /// Returns whether the user is now locked.
    async fn record_login_failure(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool>;
    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()>;
}

/// Access tokens (sessions), stored under their keyed digest.
#[async_trait]
pub trait Sessions: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
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
    /// Records the assertion and starts the session it pays for, in one transaction: a grant
    /// either spends its assertion and has its session, or neither. Returns `false`, having
    /// written nothing, if the assertion was already recorded.
    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        session: &Session,
    ) -> StoreResult<bool>;
}

/// What redeeming an authorization code found.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// First redemption: the code, now spent, bound to `family`.
    Redeemed(AuthCode),
    /// Already redeemed: the family its first redemption started, to be revoked.
    Reused(Option<Family>),
    Unknown,
}

/// Single-use authorization codes.
#[async_trait]
pub trait Codes: Send + Sync {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Spends a code atomically: of concurrent redemptions exactly one sees `Redeemed`.
    async fn redeem_code(
        &self,
        digest: &Digest,
        family: &Family,
        now: Millis,
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
    /// A poll by the device (for `app`) at `now`: checks and records its timing, and spends an
    /// approved authorization (exactly one of concurrent polls redeems it). A code of another
    /// app is `Unknown`.
    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
    ) -> StoreResult<DevicePoll>;
}

/// Refresh tokens and their families.
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>>;
    /// Marks `old` used at `now` (idle policies count from it).
    async fn touch_refresh_token(&self, old: &Digest, now: Millis) -> StoreResult<()>;
    /// Replaces `old` with `new` if `old` has not been rotated or revoked yet; returns whether
    /// this call did it (a `false` means reuse).
    async fn rotate_refresh_token(
        &self,
        old: &Digest,
        new: &RefreshToken,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Revokes every refresh token and session of a family; returns how many sessions ended.
    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64>;
}

/// Browser login sessions.
#[async_trait]
pub trait LoginSessions: Send + Sync {
    async fn insert_login_session(&self, s: &LoginSession) -> StoreResult<()>;
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
{
}

/// Checks a password against its stored hash. Kept behind a trait so the caller decides
/// where the (deliberately slow) work runs.
#[async_trait]
pub trait PasswordVerifier: Send + Sync {
    async fn verify(&self, phc_hash: &str, password: &str) -> bool;

    /// Resolves once the stored password hashes are the ones in force: at start the server
    /// may still be applying the config file's passwords, and a login must not read a hash
    /// that is about to be replaced.
    async fn settled(&self) {}
}

/// Signs JWTs (id_tokens, JWT access tokens) with the current RS256 key.
pub trait JwtSigner: Send + Sync {
    /// A compact JWS of `claims` with header `{"alg":"RS256","typ":typ,"kid":…}`.
    fn sign(&self, typ: &str, claims: &serde_json::Value) -> Option<String>;
}
