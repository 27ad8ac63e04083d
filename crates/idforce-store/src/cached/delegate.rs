//! Everything the cache does not keep, passed through to the store behind it.

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::{
    AuthCode, DeviceCode, DeviceDecision, Family, LoginSession, Millis, RefreshToken, Session,
};
use idforce_core::ports::{
    AssertionLedger, Codes, DeviceCodes, DevicePoll, LoginHistory, LoginSessions, Redemption,
    RefreshTokens, Sessions, StoreResult, Tokens,
};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;

use super::Cached;
use crate::{
    ApprovalRecord, Backend, Meta, Purge, SessionAdmin, SessionFilter, SigningKeys, StoredKey,
    Transfer,
};

#[async_trait]
impl<S: Backend> Sessions for Cached<S> {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.inner.insert_session(session).await
    }
    async fn insert_tokens(&self, tokens: &Tokens) -> StoreResult<()> {
        self.inner.insert_tokens(tokens).await
    }
    async fn session(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        self.inner.session(digest).await
    }
    async fn touch_session(&self, digest: &Digest, now: Millis) -> StoreResult<()> {
        self.inner.touch_session(digest, now).await
    }
    async fn revoke_session(&self, digest: &Digest, now: Millis) -> StoreResult<bool> {
        self.inner.revoke_session(digest, now).await
    }
}

#[async_trait]
impl<S: Backend> AssertionLedger for Cached<S> {
    async fn first_use_of_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        self.inner
            .first_use_of_assertion(digest, expires_at, now)
            .await
    }
    async fn spend_assertion(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        self.inner
            .spend_assertion(digest, expires_at, now, tokens)
            .await
    }
}

#[async_trait]
impl<S: Backend> Codes for Cached<S> {
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        self.inner.insert_code(code).await
    }
    async fn code(&self, digest: &Digest) -> StoreResult<Option<(AuthCode, bool)>> {
        self.inner.code(digest).await
    }
    async fn redeem_code(
        &self,
        digest: &Digest,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<Redemption> {
        self.inner.redeem_code(digest, now, tokens).await
    }
}

#[async_trait]
impl<S: Backend> DeviceCodes for Cached<S> {
    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()> {
        self.inner.insert_device_code(code).await
    }
    async fn device_code_by_user_code(
        &self,
        user_code_digest: &Digest,
    ) -> StoreResult<Option<DeviceCode>> {
        self.inner.device_code_by_user_code(user_code_digest).await
    }
    async fn decide_device_code(
        &self,
        user_code_digest: &Digest,
        decision: DeviceDecision,
        now: Millis,
    ) -> StoreResult<bool> {
        self.inner
            .decide_device_code(user_code_digest, decision, now)
            .await
    }
    async fn device_code(&self, digest: &Digest, app: &SfId) -> StoreResult<Option<DeviceCode>> {
        self.inner.device_code(digest, app).await
    }
    async fn poll_device_code(
        &self,
        digest: &Digest,
        app: &SfId,
        now: Millis,
        tokens: Option<&Tokens>,
    ) -> StoreResult<DevicePoll> {
        self.inner.poll_device_code(digest, app, now, tokens).await
    }
}

#[async_trait]
impl<S: Backend> RefreshTokens for Cached<S> {
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.inner.insert_refresh_token(token).await
    }
    async fn refresh_token(&self, digest: &Digest) -> StoreResult<Option<RefreshToken>> {
        self.inner.refresh_token(digest).await
    }
    async fn use_refresh_token(
        &self,
        old: &Digest,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        self.inner.use_refresh_token(old, now, tokens).await
    }
    async fn revoke_family(&self, family: &Family, now: Millis) -> StoreResult<u64> {
        self.inner.revoke_family(family, now).await
    }
    async fn live_families(&self, user: &SfId, app: &SfId) -> StoreResult<Vec<Family>> {
        self.inner.live_families(user, app).await
    }
}

#[async_trait]
impl<S: Backend> LoginSessions for Cached<S> {
    async fn insert_login_session(
        &self,
        s: &LoginSession,
        login: Option<&LoginEvent>,
    ) -> StoreResult<()> {
        self.inner.insert_login_session(s, login).await
    }
    async fn login_session(&self, digest: &Digest) -> StoreResult<Option<LoginSession>> {
        self.inner.login_session(digest).await
    }
    async fn delete_login_session(&self, digest: &Digest) -> StoreResult<()> {
        self.inner.delete_login_session(digest).await
    }
}

#[async_trait]
impl<S: Backend> Meta for Cached<S> {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn meta_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        self.inner.meta_or_insert(key, value).await
    }
    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.inner.set_meta(key, value).await
    }
    async fn meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.meta(key).await
    }
    async fn delete_meta(&self, key: &str) -> StoreResult<()> {
        self.inner.delete_meta(key).await
    }
    async fn next_id(&self, key_prefix: &str) -> StoreResult<SfId> {
        self.inner.next_id(key_prefix).await
    }
    async fn serials(&self) -> StoreResult<Vec<(String, i64)>> {
        self.inner.serials().await
    }
    async fn raise_serial(&self, key_prefix: &str, next: i64) -> StoreResult<()> {
        self.inner.raise_serial(key_prefix, next).await
    }
}

#[async_trait]
impl<S: Backend> SessionAdmin for Cached<S> {
    async fn live_sessions(&self, filter: SessionFilter, now: Millis) -> StoreResult<Vec<Session>> {
        self.inner.live_sessions(filter, now).await
    }
    async fn org_sessions(&self, org: &SfId, now: Millis, limit: u32) -> StoreResult<Vec<Session>> {
        self.inner.org_sessions(org, now, limit).await
    }
    async fn live_refresh_tokens(&self, filter: SessionFilter) -> StoreResult<Vec<RefreshToken>> {
        self.inner.live_refresh_tokens(filter).await
    }
    async fn app_users(&self, org: &SfId) -> StoreResult<Vec<(SfId, u64)>> {
        self.inner.app_users(org).await
    }
    async fn revoke_sessions(
        &self,
        filter: SessionFilter,
        refresh_too: bool,
        now: Millis,
    ) -> StoreResult<(u64, u64)> {
        self.inner.revoke_sessions(filter, refresh_too, now).await
    }
}

#[async_trait]
impl<S: Backend> Transfer for Cached<S> {
    async fn approvals(&self) -> StoreResult<Vec<ApprovalRecord>> {
        self.inner.approvals().await
    }
    async fn all_live_refresh_tokens(&self) -> StoreResult<Vec<RefreshToken>> {
        self.inner.all_live_refresh_tokens().await
    }
}

#[async_trait]
impl<S: Backend> crate::AuditTrail for Cached<S> {
    async fn record_change(&self, record: &crate::AuditRecord) -> StoreResult<()> {
        self.inner.record_change(record).await
    }
    async fn audit_trail(
        &self,
        org: Option<&SfId>,
        limit: u32,
    ) -> StoreResult<Vec<crate::AuditRecord>> {
        self.inner.audit_trail(org, limit).await
    }
}

#[async_trait]
impl<S: Backend> LoginHistory for Cached<S> {
    async fn record_login(&self, event: &LoginEvent) -> StoreResult<()> {
        self.inner.record_login(event).await
    }
}

#[async_trait]
impl<S: Backend> crate::LoginHistoryAdmin for Cached<S> {
    async fn login_history(
        &self,
        query: &crate::LoginHistoryQuery,
    ) -> StoreResult<Vec<crate::LoginRecord>> {
        self.inner.login_history(query).await
    }
    async fn purge_login_history(&self, before: Millis, keep: u64) -> StoreResult<u64> {
        self.inner.purge_login_history(before, keep).await
    }
}

#[async_trait]
impl<S: Backend> Purge for Cached<S> {
    async fn purge_expired(&self, now: Millis) -> StoreResult<u64> {
        self.inner.purge_expired(now).await
    }
}

#[async_trait]
impl<S: Backend> SigningKeys for Cached<S> {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.inner.signing_keys().await
    }
    async fn put_signing_key(&self, key: &StoredKey) -> StoreResult<()> {
        self.inner.put_signing_key(key).await
    }
    async fn reseal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        self.inner.reseal_signing_key(kid, sealed).await
    }
    async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_others_until: Option<Millis>,
    ) -> StoreResult<bool> {
        self.inner.add_signing_key(key, retire_others_until).await
    }
}
