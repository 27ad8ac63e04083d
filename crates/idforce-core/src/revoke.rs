//! Revocation (spec §6.3, §9): any holder of a token may end it; no client authentication.

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
    if !token::looks_like_access_token(token) {
        return Err(OAuthError::unsupported_token_type());
    }
    let digest = hasher.digest(token);
    match store.session(&digest).await? {
        Some(s) if s.is_live(now) => {
            store.revoke_session(&digest, now).await?;
            Ok(())
        }
        _ => Err(OAuthError::invalid_token()),
    }
}
