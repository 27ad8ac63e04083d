//! Device flow, the device's side (spec §3.8, RFC 8628 §3.4-3.5): `grant_type=device` polls
//! with the device code until the user has decided, the code has expired, or it is spent.
//!
//! The authorization is read first, so that the tokens of an approved one can be minted; the
//! poll then records its timing, spends the authorization and stores those tokens in one
//! transaction.

use super::{TokenContext, authenticate_client, mint_grant};
use crate::error::OAuthError;
use crate::login_history::LoginSubtype;
use crate::model::{DeviceCode, DeviceDecision};
use crate::ports::{DevicePoll, Tokens};
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = authenticate_client(ctx, client, true).await?;
    // Salesforce's parameter is `code`; RFC 8628 calls it `device_code`.
    let code = params
        .get("code")
        .or_else(|| params.get("device_code"))
        .ok_or_else(|| OAuthError::invalid_device_code().because("no device code"))?;
    let digest = ctx.hasher.digest(code);
    let before = ctx.store.device_code(&digest, &app.id).await?;
    // Tokens for the user who approved it, when it is approved and could still be redeemed;
    // or why the user cannot have them.
    let mut issued: Option<Result<(Tokens, TokenResponse), OAuthError>> = None;
    if let Some(device) = before
        .as_ref()
        .filter(|d| !d.redeemed && ctx.now < d.expires_at)
        && let DeviceDecision::Approved { user_id, auth_time } = device.decision
    {
        issued = Some(
            async {
                let (user, org) =
                    super::active_user(ctx, &user_id, &app, OAuthError::invalid_device_code)
                        .await?;
                // Like the web server flow (spec §3.8): a refresh token when the scopes
                // allow, an id_token with `openid`.
                let secret = client.client_secret.as_deref();
                let (tokens, mut response) = mint_grant(
                    ctx,
                    &org,
                    &user,
                    &app,
                    device.scopes.clone(),
                    secret,
                    LoginSubtype::Device,
                )?;
                super::attach_id_token(
                    ctx,
                    &org,
                    &user,
                    &app,
                    &device.scopes,
                    &mut response,
                    None,
                    auth_time,
                )?;
                Ok((tokens, response))
            }
            .await,
        );
    }
    let tokens = issued
        .as_ref()
        .and_then(|i| i.as_ref().ok())
        .map(|(t, _)| t);
    let poll = ctx
        .store
        .poll_device_code(&digest, &app.id, ctx.now, tokens)
        .await?;
    let (device, redeemed) = match poll {
        DevicePoll::Unknown => {
            let why = "an unknown device code, or another app's";
            return Err(OAuthError::invalid_device_code().because(why));
        }
        DevicePoll::TooSoon(device) => {
            return Err(refusal(&device, ctx.now).unwrap_or_else(OAuthError::slow_down));
        }
        DevicePoll::OnTime { code, redeemed } => (code, redeemed),
    };
    if let Some(e) = refusal(&device, ctx.now) {
        return Err(e);
    }
    if !matches!(device.decision, DeviceDecision::Approved { .. }) {
        return Err(OAuthError::authorization_pending());
    }
    match issued {
        Some(Ok((tokens, response))) if redeemed => {
            if let Some(refresh) = &tokens.refresh {
                super::keep_approvals_within_limit(ctx, &refresh.user_id, &app).await;
            }
            Ok(response)
        }
        // The user cannot have tokens (deactivated, or gone).
        Some(Err(e)) => Err(e),
        // Another poll already received the tokens.
        Some(Ok(_)) => Err(spent()),
        None if device.redeemed => Err(spent()),
        // Approved between this poll's read and its write: the next poll gets the tokens.
        None => Err(OAuthError::authorization_pending()),
    }
}

fn spent() -> OAuthError {
    OAuthError::expired_code().because("a device code whose tokens were issued to a poll before")
}

/// An answer that holds however often the device polls: expiry first, then denial.
fn refusal(device: &DeviceCode, now: crate::model::Millis) -> Option<OAuthError> {
    if now >= device.expires_at {
        Some(OAuthError::expired_device_code())
    } else if device.decision == DeviceDecision::Denied {
        Some(OAuthError::device_denied())
    } else {
        None
    }
}
