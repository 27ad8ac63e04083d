//! Refresh token flow (spec §3.5, §10): the app's refresh policy, optional rotation with
//! reuse detection that revokes the whole family, and the originally granted scopes.

use super::{TokenContext, authenticate_client, issue_session, mint_refresh};
use crate::error::OAuthError;
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = super::identify_client(ctx, client).await?;
    let app = authenticate_client(ctx, client, !app.require_secret_for_refresh_token_flow).await?;
    let presented = params
        .get("refresh_token")
        .ok_or_else(OAuthError::expired_token)?;
    let digest = ctx.hasher.digest(presented);
    let token = ctx
        .store
        .refresh_token(&digest)
        .await?
        .filter(|t| t.app_id == app.id)
        .ok_or_else(OAuthError::expired_token)?;
    if token.revoked {
        return Err(OAuthError::expired_token());
    }
    if token.rotated {
        // A rotated-away token came back: it was copied. End the whole family.
        ctx.store.revoke_family(&token.family, ctx.now).await?;
        return Err(OAuthError::expired_token());
    }
    if !app.refresh_token_policy.allows(&token, ctx.now) {
        return Err(OAuthError::expired_token());
    }
    let (user, org) = super::active_user(ctx, &token.user_id, OAuthError::expired_token).await?;

    let rotated = if app.rotate_refresh_tokens {
        let (secret, next) = mint_refresh(
            ctx,
            &token.family,
            token.family_started_at,
            &org,
            &user,
            &app,
            token.scopes.clone(),
        );
        if !ctx
            .store
            .rotate_refresh_token(&digest, &next, ctx.now)
            .await?
        {
            ctx.store.revoke_family(&token.family, ctx.now).await?;
            return Err(OAuthError::expired_token());
        }
        Some(secret)
    } else {
        ctx.store.touch_refresh_token(&digest, ctx.now).await?;
        None
    };
    let mut response = issue_session(
        ctx,
        &org,
        &user,
        &app,
        token.scopes.clone(),
        client.client_secret.as_deref(),
        Some(token.family),
    )
    .await?;
    // The scope echoed is the originally granted set (spec §12.8).
    response.refresh_token = rotated;
    super::attach_id_token(
        ctx,
        &org,
        &user,
        &app,
        &token.scopes,
        &mut response,
        None,
        token.family_started_at,
    )?;
    Ok(response)
}
