//! What the protocol needs from storage. Each trait is one capability; a backend implements
//! them all and is used as `dyn Store`.

use async_trait::async_trait;

use crate::model::{ConnectedApp, LockoutPolicy, Millis, Org, Session, User};
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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Orgs, users and connected apps, read side.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn org(&self, id: &SfId) -> StoreResult<Option<Org>>;
    async fn user(&self, id: &SfId) -> StoreResult<Option<User>>;
    /// Usernames are unique across orgs and compared without regard to case.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn app(&self, id: &SfId) -> StoreResult<Option<ConnectedApp>>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<ConnectedApp>>;
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
}

pub trait Store: Directory + LoginAttempts + Sessions + AssertionLedger {}
impl<T: Directory + LoginAttempts + Sessions + AssertionLedger> Store for T {}

/// Checks a password against its stored hash. Kept behind a trait so the caller decides
/// where the (deliberately slow) work runs.
#[async_trait]
pub trait PasswordVerifier: Send + Sync {
    async fn verify(&self, phc_hash: &str, password: &str) -> bool;
}
