//! Revocation (spec §6.3, §9): any holder of a token may end it; no client authentication.
//! Revoking an access token ends that session; revoking a refresh token ends its family —
//! every refresh token and session issued from the same grant.

use crate::error::OAuthError;
use crate::model::Millis;
use crate::ports::Store;
use crate::token::{self, CredentialHasher};

pub async fn revoke(
    store: &dyn Store,
    hasher: &CredentialHasher,
    token: &str,
    now: Millis,
) -> Result<(), OAuthError> {
    if token::looks_like_access_token(token) {
        let digest = hasher.session_key(token);
        return match store.session(&digest).await? {
            Some(s) if s.is_live(now) => {
                store.revoke_session(&digest, now).await?;
                Ok(())
            }
            _ => Err(OAuthError::invalid_token()),
        };
    }
    if token::looks_like_refresh_token(token) {
        let digest = hasher.digest(token);
        return match store.refresh_token(&digest).await? {
            Some(r) if !r.revoked => {
                store.revoke_family(&r.family, now).await?;
                Ok(())
            }
            _ => Err(OAuthError::invalid_token()),
        };
    }
    Err(OAuthError::unsupported_token_type())
}
