//! Refresh token flow (spec §3.5, §10): the app's refresh policy, optional rotation with
//! reuse detection that revokes the whole family, and the originally granted scopes.

use super::{TokenContext, authenticate_client, mint_refresh, open_session};
use crate::error::OAuthError;
use crate::login_history::LoginSubtype;
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
        .ok_or_else(|| OAuthError::expired_token().because("no refresh_token"))?;
    let digest = ctx.hasher.digest(presented);
    let token = ctx
        .store
        .refresh_token(&digest)
        .await?
        .ok_or_else(|| OAuthError::expired_token().because("an unknown refresh token"))?;
    if token.app_id != app.id {
        let why = format!("a refresh token of app {}, not {}", token.app_id, app.id);
        return Err(OAuthError::expired_token().because(why));
    }
    if token.revoked {
        return Err(OAuthError::expired_token().because("a revoked refresh token"));
    }
    if token.rotated {
        // A rotated-away token came back: it was copied. End the whole family.
        ctx.store.revoke_family(&token.family, ctx.now).await?;
        let why = "a refresh token rotated away came back; its family is revoked";
        return Err(OAuthError::expired_token().because(why));
    }
    if !app.refresh_token_policy.allows(&token, ctx.now) {
        let policy = app.refresh_token_policy;
        let why = format!("the app's refresh token policy ({policy}) ended it");
        return Err(OAuthError::expired_token().because(why));
    }
    let (user, org) =
        super::active_user(ctx, &token.user_id, &app, OAuthError::expired_token).await?;
    crate::login_policy::check(
        ctx,
        &user,
        Some(&app),
        crate::login_policy::Entry::RefreshToken,
    )
    .await
    .map_err(|e| e.through(&app))?;

    let successor = app.rotate_refresh_tokens.then(|| {
        mint_refresh(
            ctx,
            &token.family,
            token.family_started_at,
            &org,
            &user,
            &app,
            token.scopes.clone(),
        )
    });
    let opened = open_session(
        ctx,
        &org,
        &user,
        &app,
        token.scopes.clone(),
        Some(token.family),
        LoginSubtype::RefreshToken,
    )?;
    let tokens = opened.tokens(successor.as_ref().map(|(_, record)| record.clone()));
    let key = super::signing_secret(ctx, &app, client.client_secret.as_deref());
    let mut response = opened.response(ctx, &org, &user, key.as_deref());
    // The scope echoed is the originally granted set (spec §12.8).
    response.refresh_token = successor.map(|(secret, _)| secret);
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
    // The token's use, its successor and the session commit together; a rotation that lost
    // to a concurrent one has revoked the family instead.
    if !ctx
        .store
        .use_refresh_token(&digest, ctx.now, &tokens)
        .await?
    {
        let why = "a refresh token revoked or rotated by a concurrent request (a rotation \
                   that lost revoked the family)";
        return Err(OAuthError::expired_token().because(why));
    }
    Ok(response)
}
