//! Using an access token: finding its session, sliding its expiry, revoking it.

use crate::model::{Millis, Session};
use crate::ports::{Store, StoreResult};
use crate::token::{self, CredentialHasher};

/// The live session an access token stands for, with its idle clock pushed forward when
/// due (at most one store write per token per half timeout).
pub async fn use_access_token(
    store: &dyn Store,
    hasher: &CredentialHasher,
    access_token: &str,
    now: Millis,
) -> StoreResult<Option<Session>> {
    let Some(session) = find_live(store, hasher, access_token, now).await? else {
        return Ok(None);
    };
    if session.needs_touch(now) {
        store.touch_session(&session.digest, now).await?;
    }
    Ok(Some(session))
}

/// The live session of an access token, without extending it (introspection must not keep
/// a session alive).
pub async fn find_live(
    store: &dyn Store,
    hasher: &CredentialHasher,
    access_token: &str,
    now: Millis,
) -> StoreResult<Option<Session>> {
    if !token::looks_like_access_token(access_token) {
        return Ok(None);
    }
    let session = store.session(&hasher.session_key(access_token)).await?;
    Ok(session.filter(|s| s.is_live(now)))
}
