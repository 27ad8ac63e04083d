//! Device flow, the device's side (spec §3.8, RFC 8628 §3.4-3.5): `grant_type=device` polls
//! with the device code until the user has decided, the code has expired, or it is spent.

use super::{TokenContext, authenticate_client, issue_grant};
use crate::error::OAuthError;
use crate::model::{DeviceCode, DeviceDecision};
use crate::ports::DevicePoll;
use crate::token::random_bytes;
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
        .ok_or_else(OAuthError::invalid_device_code)?;
    let poll = ctx
        .store
        .poll_device_code(&ctx.hasher.digest(code), &app.id, ctx.now)
        .await?;
    let (device, redeemed) = match poll {
        DevicePoll::Unknown => return Err(OAuthError::invalid_device_code()),
        DevicePoll::TooSoon(device) => {
            return Err(refusal(&device, ctx.now).unwrap_or_else(OAuthError::slow_down));
        }
        DevicePoll::OnTime { code, redeemed } => (code, redeemed),
    };
    if let Some(e) = refusal(&device, ctx.now) {
        return Err(e);
    }
    let DeviceDecision::Approved { user_id, auth_time } = device.decision else {
        return Err(OAuthError::authorization_pending());
    };
    if !redeemed {
        // Another poll already received the tokens.
        return Err(OAuthError::expired_code());
    }
    let (user, org) = super::active_user(ctx, &user_id, OAuthError::invalid_device_code).await?;
    // Like the web server flow (spec §3.8): a refresh token when the scopes allow, an
    // id_token with `openid`.
    let mut response = issue_grant(
        ctx,
        &org,
        &user,
        &app,
        device.scopes.clone(),
        client.client_secret.as_deref(),
        random_bytes::<16>(),
    )
    .await?;
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
    Ok(response)
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
