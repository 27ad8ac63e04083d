//! The directory cache, as a decorator of any store: every token request reads its app, user
//! and org, which change rarely, so `Cached` keeps them for a short while (default
//! `DEFAULT_TTL`; zero turns it off) and passes everything else through (`delegate.rs`).
//!
//! A write made through this store drops exactly the entries it changes: a failed login drops
//! its user, not the apps or the other users (password spraying must not empty every token
//! request's cache). A write made elsewhere (another node, the `idforce` CLI) is seen when the
//! entry expires. Password checks never read from here: lockout state must be current.

mod delegate;
mod maps;

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use idforce_core::model::{ConnectedApp, LockoutPolicy, Millis, Org, Profile, User};
use idforce_core::ports::{Approvals, Directory, LoginAttempts, StoreResult};
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use maps::Map;

use crate::{Accounts, Backend};

/// How long an entry is trusted by default: the bound on how late another process's change
/// is seen.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

pub struct Cached<S> {
    inner: S,
    ttl: Duration,
    orgs: Map<SfId, Arc<Org>>,
    users: Map<SfId, Arc<User>>,
    /// By lowercase username.
    usernames: Map<String, Arc<User>>,
    apps: Map<SfId, Arc<ConnectedApp>>,
    clients: Map<String, Arc<ConnectedApp>>,
    approvals: Map<(SfId, SfId), bool>,
    /// By org and name in ASCII lower case.
    profiles: Map<(SfId, String), Arc<Profile>>,
}

impl<S: Backend> Cached<S> {
    pub fn new(inner: S, ttl: Duration) -> Cached<S> {
        Cached {
            inner,
            ttl,
            orgs: Map::default(),
            users: Map::default(),
            usernames: Map::default(),
            apps: Map::default(),
            clients: Map::default(),
            approvals: Map::default(),
            profiles: Map::default(),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The entry of `key`, or what `load` finds (kept if found and the map did not change
    /// while loading). `load` is called only on a miss.
    async fn entry<K, V, Q, F>(
        &self,
        map: &Map<K, V>,
        key: &Q,
        load: impl FnOnce() -> F,
    ) -> StoreResult<Option<V>>
    where
        K: Eq + Hash + Borrow<Q>,
        V: Clone,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = StoreResult<Option<V>>>,
    {
        if self.ttl.is_zero() {
            return load().await;
        }
        if let Some(v) = map.get(key, self.ttl) {
            return Ok(Some(v));
        }
        let ticket = map.ticket();
        let found = load().await?;
        if let Some(v) = &found {
            map.put(ticket, key.to_owned(), v.clone());
        }
        Ok(found)
    }

    fn forget_user(&self, id: &SfId) {
        self.users.invalidate(|k, _| k == id);
        self.usernames.invalidate(|_, u| u.id == *id);
    }

    fn forget_app(&self, id: &SfId) {
        self.apps.invalidate(|k, _| k == id);
        self.clients.invalidate(|_, a| a.id == *id);
    }
}

#[async_trait]
impl<S: Backend> Directory for Cached<S> {
    async fn org(&self, id: &SfId) -> StoreResult<Option<Arc<Org>>> {
        self.entry(&self.orgs, id, || self.inner.org(id)).await
    }

    async fn user(&self, id: &SfId) -> StoreResult<Option<Arc<User>>> {
        self.entry(&self.users, id, || self.inner.user(id)).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        let key = username.to_lowercase();
        self.entry(&self.usernames, key.as_str(), || {
            self.inner.user_by_username(username)
        })
        .await
    }

    async fn login_user(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        self.inner.login_user(username).await
    }

    async fn app(&self, id: &SfId) -> StoreResult<Option<Arc<ConnectedApp>>> {
        self.entry(&self.apps, id, || self.inner.app(id)).await
    }

    async fn profile(&self, org: &SfId, name: &str) -> StoreResult<Option<Arc<Profile>>> {
        let key = (*org, name.to_ascii_lowercase());
        self.entry(&self.profiles, &key, || self.inner.profile(org, name))
            .await
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<Arc<ConnectedApp>>> {
        self.entry(&self.clients, client_id, || {
            self.inner.app_by_client_id(client_id)
        })
        .await
    }

    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool> {
        let key = (*user, *app);
        let approved = self
            .entry(&self.approvals, &key, || async {
                self.inner.has_approved(user, app).await.map(Some)
            })
            .await?;
        Ok(approved.unwrap_or(false))
    }

    async fn users_matching(
        &self,
        org: &SfId,
        on: idforce_core::token_exchange::MatchOn,
        value: &str,
    ) -> StoreResult<Vec<Arc<User>>> {
        self.inner.users_matching(org, on, value).await
    }
}

// The writes that change directory entries drop them after the write, so that no read begun
// before it is kept.

#[async_trait]
impl<S: Backend> LoginAttempts for Cached<S> {
    async fn reserve_login_attempt(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let reserved = self.inner.reserve_login_attempt(user, now, policy).await;
        self.forget_user(user);
        reserved
    }

    async fn login_attempt_failed(
        &self,
        user: &SfId,
        now: Millis,
        policy: LockoutPolicy,
    ) -> StoreResult<bool> {
        let locked = self.inner.login_attempt_failed(user, now, policy).await;
        self.forget_user(user);
        locked
    }

    async fn take_login(
        &self,
        user: &SfId,
        now: Millis,
        rate: idforce_core::model::LoginRate,
    ) -> StoreResult<bool> {
        self.inner.take_login(user, now, rate).await
    }

    async fn clear_login_failures(&self, user: &SfId) -> StoreResult<()> {
        let cleared = self.inner.clear_login_failures(user).await;
        self.forget_user(user);
        cleared
    }
}

#[async_trait]
impl<S: Backend> Approvals for Cached<S> {
    async fn approval(&self, user: &SfId, app: &SfId) -> StoreResult<Option<Scopes>> {
        self.inner.approval(user, app).await
    }

    async fn approve(
        &self,
        user: &SfId,
        app: &SfId,
        scopes: &Scopes,
        now: Millis,
    ) -> StoreResult<()> {
        let approved = self.inner.approve(user, app, scopes, now).await;
        self.approvals.invalidate(|k, _| *k == (*user, *app));
        approved
    }
}

#[async_trait]
impl<S: Backend> Accounts for Cached<S> {
    async fn is_empty(&self) -> StoreResult<bool> {
        self.inner.is_empty().await
    }

    async fn save_org(&self, org: &Org) -> StoreResult<()> {
        let saved = self.inner.save_org(org).await;
        self.orgs.invalidate(|k, _| *k == org.id);
        saved
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        self.inner.org_by_name(name).await
    }

    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        self.inner.orgs().await
    }

    async fn save_profile(&self, profile: &Profile) -> StoreResult<()> {
        let saved = self.inner.save_profile(profile).await;
        self.profiles
            .invalidate(|(org, _), _| *org == profile.org_id);
        saved
    }

    async fn profiles(&self, org: Option<&SfId>) -> StoreResult<Vec<Profile>> {
        self.inner.profiles(org).await
    }

    async fn save_user(&self, user: &User) -> StoreResult<()> {
        let saved = self.inner.save_user(user).await;
        self.forget_user(&user.id);
        saved
    }

    async fn users(&self, org: Option<&SfId>) -> StoreResult<Vec<User>> {
        self.inner.users(org).await
    }

    async fn save_app(&self, app: &ConnectedApp) -> StoreResult<()> {
        let saved = self.inner.save_app(app).await;
        self.forget_app(&app.id);
        saved
    }

    async fn app_by_initial_access_token(
        &self,
        digest: &idforce_core::token::Digest,
    ) -> StoreResult<Option<ConnectedApp>> {
        self.inner.app_by_initial_access_token(digest).await
    }

    async fn app_by_name(&self, org: &SfId, name: &str) -> StoreResult<Option<ConnectedApp>> {
        self.inner.app_by_name(org, name).await
    }

    async fn apps(&self, org: Option<&SfId>) -> StoreResult<Vec<ConnectedApp>> {
        self.inner.apps(org).await
    }
}
