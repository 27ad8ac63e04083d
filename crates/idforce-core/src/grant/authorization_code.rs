//! Web server flow, token side (spec §3.2): redeem a single-use code bound to the client,
//! the redirect URI and the PKCE challenge.

use super::{TokenContext, authenticate_client, issue_grant};
use crate::error::OAuthError;
use crate::pkce;
use crate::ports::Redemption;
use crate::token::random_bytes;
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = super::identify_client(ctx, client).await?;
    let app = authenticate_client(ctx, client, !app.require_secret_for_web_server_flow).await?;
    let code = params.get("code").ok_or_else(OAuthError::invalid_code)?;
    let family = random_bytes::<16>();
    let redeemed = match ctx
        .store
        .redeem_code(&ctx.hasher.digest(code), &family, ctx.now)
        .await?
    {
        Redemption::Redeemed(c) => c,
        Redemption::Reused(first) => {
            // Someone holds a copy of the code: end what the first redemption issued.
            if let Some(f) = first {
                ctx.store.revoke_family(&f, ctx.now).await?;
            }
            return Err(OAuthError::expired_code());
        }
        Redemption::Unknown => return Err(OAuthError::invalid_code()),
    };
    if redeemed.app_id != app.id {
        return Err(OAuthError::invalid_code());
    }
    if ctx.now >= redeemed.expires_at {
        return Err(OAuthError::expired_code());
    }
    if params.get("redirect_uri") != Some(redeemed.redirect_uri.as_str()) {
        return Err(OAuthError::redirect_uri_mismatch());
    }
    if let Some(challenge) = &redeemed.code_challenge {
        pkce::verify(challenge, params.get("code_verifier"))?;
    }
    let (user, org) = super::active_user(ctx, &redeemed.user_id, OAuthError::invalid_code).await?;
    let mut response = issue_grant(
        ctx,
        &org,
        &user,
        &app,
        redeemed.scopes.clone(),
        client.client_secret.as_deref(),
        family,
    )
    .await?;
    super::attach_id_token(
        ctx,
        &org,
        &user,
        &app,
        &redeemed.scopes,
        &mut response,
        redeemed.nonce.as_deref(),
        redeemed.auth_time,
    )?;
    Ok(response)
}
