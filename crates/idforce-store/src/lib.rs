//! Storage for idforce: the protocol's ports (`idforce_core::ports`) and the operations of
//! administration, seeding, export and purging, for two backends: embedded SQLite (one
//! writer thread that group-commits, readers on the caller's thread) and PostgreSQL (several
//! nodes on one database). Each backend keeps one file per thing it stores; `rows.rs` decodes
//! rows for both.

mod cached;
mod login_history;
pub use cached::{Cached, DEFAULT_TTL as DEFAULT_DIRECTORY_CACHE_TTL};
#[cfg(feature = "testing")]
mod memory;
mod postgres;
mod rows;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::{ConnectedApp, Millis, Org, Profile, RefreshToken, Session, User};
use idforce_core::ports::{Store, StoreError, StoreResult};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Which sessions an administrative query is about.
#[derive(Debug, Clone, Copy)]
pub enum SessionFilter {
    User(SfId),
    App(SfId),
    /// One user's, of one app (OAuth Usage's Revoke).
    UserApp(SfId, SfId),
}

/// A recorded approval: (user, app, scopes, when).
pub type ApprovalRecord = (SfId, SfId, Scopes, Millis);

/// Server-wide values and id counters.
#[async_trait]
pub trait Meta: Send + Sync {
    /// Succeeds when the store answers a query.
    async fn ping(&self) -> StoreResult<()>;
    /// The value stored under `key`, inserting `value` first if there is none (atomic, so
    /// several nodes starting together agree on one value).
    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
    /// Replaces a server-wide value (import moves the hashing key with the digests it made).
    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()>;
    /// The value stored under `key`, if any.
    async fn meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Removes a server-wide value (a plain key once its sealed copy is stored).
    async fn delete_meta(&self, key: &str) -> StoreResult<()>;
    /// The next unused id of a key prefix.
    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId>;
    /// Every id counter, as (key prefix, next serial).
    async fn serials(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Raises a counter to at least `next` (never lowers it).
    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()>;
}

/// Writes and listings of orgs, users and apps, for administration and seeding.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn is_empty(&self) -> StoreResult<bool>;
    async fn save_org(&self, org: &Org) -> StoreResult<()>;
    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>>;
    async fn orgs(&self) -> StoreResult<Vec<Org>>;
    /// Adds a profile, or renames it (by id); a name its org already has is a conflict.
    async fn save_profile(&self, profile: &Profile) -> StoreResult<()>;
    /// An org's profiles, or every org's, by org and name.
    async fn profiles(&self, org: Option<&SfId>) -> StoreResult<Vec<Profile>>;
    async fn save_user(&self, user: &User) -> StoreResult<()>;
    async fn users(&self, org: Option<&SfId>) -> StoreResult<Vec<User>>;
    async fn save_app(&self, app: &ConnectedApp) -> StoreResult<()>;
    /// The app whose initial access token has this keyed digest (dynamic client registration).
    async fn app_by_initial_access_token(
        &self,
        digest: &Digest,
    ) -> StoreResult<Option<ConnectedApp>>;
    async fn app_by_name(&self, org: &SfId, name: &str) -> StoreResult<Option<ConnectedApp>>;
    async fn apps(&self, org: Option<&SfId>) -> StoreResult<Vec<ConnectedApp>>;
}

/// Listing and ending the tokens of a user or an app.
#[async_trait]
pub trait SessionAdmin: Send + Sync {
    /// Sessions not revoked and not idle past their timeout.
    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>>;
    /// An org's live sessions, the most recently used first, `limit` at most (Session
    /// Management).
    async fn org_sessions(&self, org: &SfId, now: Millis, limit: u32) -> StoreResult<Vec<Session>>;
    /// Refresh tokens neither revoked nor rotated away.
    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>>;
    /// For each app of `org` with any, how many users (of any org) hold a live refresh token
    /// of it (Connected Apps OAuth Usage's User Count), by one counting query.
    async fn app_users(&self, org: &SfId) -> StoreResult<Vec<(SfId, u64)>>;
    /// Revokes every live session matching and, with `refresh_too`, every refresh token;
    /// returns how many of each.
    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)>;
}

/// What export reads beyond the directory.
#[async_trait]
pub trait Transfer: Send + Sync {
    /// Every recorded approval.
    async fn approvals(&self) -> StoreResult<Vec<ApprovalRecord>>;
    /// Every refresh token neither revoked nor rotated away.
    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>>;
}

/// Deletes what can no longer be used or matter.
#[async_trait]
pub trait Purge: Send + Sync {
    /// Sessions an hour past their expiry or revocation, codes a day past theirs (reuse
    /// detection needs them until then), ended login sessions, expired assertion records,
    /// refresh tokens revoked 30 days ago. Returns how many rows went.
    async fn purge_expired(&self, now: Millis) -> StoreResult<u64>;
}

/// One change an admin made (Salesforce's Setup Audit Trail): when, who, in which part of
/// Setup, and what, before and after (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: Millis,
    /// The org changed; `None` for what belongs to no org (the system secret, signing keys).
    pub org: Option<SfId>,
    pub actor: String,
    pub section: String,
    pub action: String,
}

/// The Setup Audit Trail.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    async fn record_change(&self, record: &AuditRecord) -> StoreResult<()>;
    /// The newest `limit` changes, newest first: an org's (`Some`), or everyone's.
    async fn audit_trail(&self, org: Option<&SfId>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
}

/// A stored Login History row: its place in the list, and what it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub id: i64,
    pub event: LoginEvent,
}

/// Which Login History rows to list: newest first — in the order they were recorded, which is
/// their time order but for logins a few milliseconds apart — older than the `before` row if
/// given.
#[derive(Debug, Clone, Default)]
pub struct LoginHistoryQuery {
    /// One org's logins (Setup shows an admin their own org's).
    pub org: Option<SfId>,
    pub user: Option<SfId>,
    pub app: Option<SfId>,
    /// Logins at or after this instant.
    pub since: Option<Millis>,
    /// The id of the last row of the previous page.
    pub before: Option<i64>,
    pub limit: u32,
}

/// Reading and trimming Login History (rows are written by the protocol's ports).
#[async_trait]
pub trait LoginHistoryAdmin: Send + Sync {
    async fn login_history(&self, query: &LoginHistoryQuery) -> StoreResult<Vec<LoginRecord>>;
    /// Deletes rows older than `before` and, beyond that, the oldest rows past the newest
    /// `keep`, a slice per statement. Returns how many went.
    async fn purge_login_history(&self, before: Millis, keep: u64) -> StoreResult<u64>;
}

/// Everything administration needs; not used by the protocol.
pub trait Admin:
    Meta + Accounts + SessionAdmin + Transfer + Purge + AuditTrail + LoginHistoryAdmin
{
}
impl<T: Meta + Accounts + SessionAdmin + Transfer + Purge + AuditTrail + LoginHistoryAdmin> Admin
    for T
{
}

/// An RS256 signing key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub kid: String,
    pub created_at: Millis,
    pub retired_at: Option<Millis>,
    pub publish_until: Option<Millis>,
    /// PKCS#8 DER, or its encryption when `encrypted`.
    pub private_key: Vec<u8>,
    pub encrypted: bool,
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

/// The signing keys of id_tokens and JWT access tokens, shared by every node.
#[async_trait]
pub trait SigningKeys: Send + Sync {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Stores a key exactly as given (import), unless its kid exists.
    async fn put_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Replaces a key's private part with its sealed form (migration, resealing).
    async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()>;
    /// Adds a key unless its kid exists (returns whether it was added); with
    /// `retire_others_until`, every key not yet retired is retired now and stays published
    /// until that instant.
    async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool>;
}

/// A complete storage backend.
pub trait Backend: Store + Admin + SigningKeys {}
impl<T: Store + Admin + SigningKeys> Backend for T {}

/// Connection settings of a store.
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    /// PostgreSQL: most connections held open (default 16). SQLite has one writer and keeps
    /// up to eight idle readers.
    pub pool_size: Option<u32>,
    /// PostgreSQL: statements running longer are cancelled.
    pub statement_timeout: Option<std::time::Duration>,
    /// How long orgs, users, apps and approvals are cached (default one second): how late a
    /// change made by another node or the CLI may be seen. Zero turns the cache off.
    pub directory_cache_ttl: Option<std::time::Duration>,
    /// SQLite: this process serves the database, and no other may (`serve`); admin commands
    /// leave it false and work beside a server.
    pub serve: bool,
}

/// Opens (creating and migrating as needed) the store named by a database URL.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Backend>> {
    open_with(url, &StoreSettings::default()).await
}

pub async fn open_with(url: &str, settings: &StoreSettings) -> StoreResult<Arc<dyn Backend>> {
    let ttl = settings
        .directory_cache_ttl
        .unwrap_or(DEFAULT_DIRECTORY_CACHE_TTL);
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url, settings.serve).await?;
        Ok(Arc::new(Cached::new(store, ttl)))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(Cached::new(
            PgStore::open(url, settings).await?,
            ttl,
        )))
    } else {
        Err(StoreError::Invalid(format!(
            "unsupported database URL (expected sqlite:… or postgres://…): {}",
            redact_url(url)
        )))
    }
}

/// The file of a SQLite database URL; `None` for any other store.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    sqlite::file_of(url)
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A database URL without its password (in its user part or a `password=` option), fit for
/// messages and logs.
pub fn redact_url(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            super::redact_url("sqlite://x.db?mode=rwc"),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            super::redact_url("postgres://h/db?user=u&password=secret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
    }
}
