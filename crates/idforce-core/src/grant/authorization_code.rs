//! Web server flow, token side (spec §3.2): redeem a single-use code bound to the client,
//! the redirect URI and the PKCE challenge.
//!
//! The code is read and checked first, then spent together with the tokens it pays for, in
//! one transaction. A request refused after the code was found still spends it: a code is
//! tried once.

use std::sync::Arc;

use super::{TokenContext, authenticate_client, mint_grant};
use crate::error::OAuthError;
use crate::model::{AuthCode, ConnectedApp, Org, User};
use crate::pkce;
use crate::ports::Redemption;
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = super::identify_client(ctx, client).await?;
    let app = authenticate_client(ctx, client, !app.require_secret_for_web_server_flow).await?;
    let code = params.get("code").ok_or_else(OAuthError::invalid_code)?;
    let digest = ctx.hasher.digest(code);
    let Some((stored, spent)) = ctx.store.code(&digest).await? else {
        return Err(OAuthError::invalid_code());
    };
    if spent {
        // Someone holds a copy of the code: redeeming it again ends what the first
        // redemption issued.
        ctx.store.redeem_code(&digest, ctx.now, None).await?;
        return Err(OAuthError::expired_code());
    }
    let (user, org) = match check(ctx, params, &app, &stored).await {
        Ok(found) => found,
        Err(refused) => {
            // Spent all the same; if a concurrent request spent it first, this is a replay.
            return Err(match ctx.store.redeem_code(&digest, ctx.now, None).await? {
                Redemption::Reused => OAuthError::expired_code(),
                Redemption::Redeemed | Redemption::Unknown => refused,
            });
        }
    };
    let secret = client.client_secret.as_deref();
    let (tokens, mut response) = mint_grant(ctx, &org, &user, &app, stored.scopes.clone(), secret)?;
    super::attach_id_token(
        ctx,
        &org,
        &user,
        &app,
        &stored.scopes,
        &mut response,
        stored.nonce.as_deref(),
        stored.auth_time,
    )?;
    match ctx
        .store
        .redeem_code(&digest, ctx.now, Some(&tokens))
        .await?
    {
        Redemption::Redeemed => Ok(response),
        Redemption::Reused => Err(OAuthError::expired_code()),
        // Purged between the read and the redemption: it had expired a day before.
        Redemption::Unknown => Err(OAuthError::invalid_code()),
    }
}

/// What the code must satisfy, in Salesforce's order; the user and org it was issued for.
async fn check(
    ctx: &TokenContext<'_>,
    params: &Params,
    app: &ConnectedApp,
    code: &AuthCode,
) -> Result<(Arc<User>, Arc<Org>), OAuthError> {
    if code.app_id != app.id {
        return Err(OAuthError::invalid_code());
    }
    if ctx.now >= code.expires_at {
        return Err(OAuthError::expired_code());
    }
    if params.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::redirect_uri_mismatch());
    }
    if let Some(challenge) = &code.code_challenge {
        pkce::verify(challenge, params.get("code_verifier"))?;
    }
    super::active_user(ctx, &code.user_id, OAuthError::invalid_code).await
}
