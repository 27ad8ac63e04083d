//! Web server flow, token side (spec §3.2): redeem a single-use code bound to the client,
//! the redirect URI and the PKCE challenge.
//!
//! The code is read and checked first, then spent together with the tokens it pays for, in
//! one transaction. A request refused after the code was found still spends it: a code is
//! tried once.

use std::sync::Arc;

use super::{TokenContext, authenticate_client, mint_grant};
use crate::error::OAuthError;
use crate::login_history::LoginSubtype;
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
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_code().because("no code"))?;
    let digest = ctx.hasher.digest(code);
    let Some((stored, spent)) = ctx.store.code(&digest).await? else {
        return Err(OAuthError::invalid_code().because("an unknown code"));
    };
    if spent {
        // Someone holds a copy of the code: redeeming it again ends what the first
        // redemption issued.
        ctx.store.redeem_code(&digest, ctx.now, None).await?;
        let why = "a code used before; what its first redemption issued is revoked";
        return Err(OAuthError::expired_code().because(why));
    }
    let (user, org) = match check(ctx, params, &app, &stored).await {
        Ok(found) => found,
        Err(refused) => {
            // Spent all the same; if a concurrent request spent it first, this is a replay.
            return Err(match ctx.store.redeem_code(&digest, ctx.now, None).await? {
                Redemption::Reused => replayed(),
                Redemption::Redeemed | Redemption::Unknown => refused,
            });
        }
    };
    let secret = client.client_secret.as_deref();
    let (tokens, mut response) = mint_grant(
        ctx,
        &org,
        &user,
        &app,
        stored.scopes.clone(),
        secret,
        LoginSubtype::WebServer,
    )?;
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
        Redemption::Redeemed => {
            if tokens.refresh.is_some() {
                super::keep_approvals_within_limit(ctx, &user.id, &app).await;
            }
            Ok(response)
        }
        Redemption::Reused => Err(replayed()),
        // Purged between the read and the redemption: it had expired a day before.
        Redemption::Unknown => Err(OAuthError::invalid_code().because("a code purged meanwhile")),
    }
}

/// A concurrent request redeemed the code first: this one is the copy.
fn replayed() -> OAuthError {
    OAuthError::expired_code().because("a code redeemed concurrently by another request")
}

/// What the code must satisfy, in Salesforce's order; the user and org it was issued for.
async fn check(
    ctx: &TokenContext<'_>,
    params: &Params,
    app: &ConnectedApp,
    code: &AuthCode,
) -> Result<(Arc<User>, Arc<Org>), OAuthError> {
    if code.app_id != app.id {
        let why = format!("a code issued to app {}, not {}", code.app_id, app.id);
        return Err(OAuthError::invalid_code().because(why));
    }
    if ctx.now >= code.expires_at {
        let why = format!(
            "a code that expired {} s ago",
            (ctx.now - code.expires_at) / 1000
        );
        return Err(OAuthError::expired_code().because(why));
    }
    if params.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        let why = "a redirect_uri other than the authorize request's";
        return Err(OAuthError::redirect_uri_mismatch().because(why));
    }
    if let Some(challenge) = &code.code_challenge {
        pkce::verify(challenge, params.get("code_verifier"))?;
    }
    super::active_user(ctx, &code.user_id, app, OAuthError::invalid_code).await
}
