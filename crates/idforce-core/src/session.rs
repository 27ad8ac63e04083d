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

/// Whether a live session may still be used: its user neither frozen nor deactivated, its
/// app neither blocked nor off the wire (OAuth switched off, or deregistered). Those changes
/// revoke sessions too; this closes the window in which a node's directory cache had not yet
/// seen the change and issued one more.
pub async fn still_allowed(store: &dyn Store, session: &Session) -> StoreResult<bool> {
    let user = store.user(&session.user_id).await?;
    let app = store.app(&session.app_id).await?;
    Ok(user.is_some_and(|u| u.may_use_tokens())
        && app.is_some_and(|a| !a.blocked && a.oauth_enabled))
}

/// Why `find_live` found no session for a token, for `serve --explain`: one more store read,
/// made only when a refusal is to be explained.
pub async fn why_not_live(
    store: &dyn Store,
    hasher: &CredentialHasher,
    access_token: &str,
    now: Millis,
) -> String {
    if !token::looks_like_access_token(access_token) {
        return "not an access token of this server (neither ORGID!… of 112 characters nor a JWT)"
            .into();
    }
    match store.session(&hasher.session_key(access_token)).await {
        Err(e) => format!("the store failed: {e}"),
        Ok(None) => "no session has this access token: never issued here, or its session was \
                     deleted"
            .into(),
        Ok(Some(s)) if s.revoked => "the session was revoked (logout or token revocation)".into(),
        Ok(Some(s)) if now >= s.expires_at() => format!(
            "the session timed out: unused for more than its app's session timeout ({} s)",
            s.timeout_secs
        ),
        Ok(Some(_)) => "the session is live".into(),
    }
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
