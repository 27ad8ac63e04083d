//! Device flow (spec §3.8, RFC 8628), the device's request and the user's side: a device asks
//! the token endpoint for a pair of codes, shows the user code, and polls (`grant::device`)
//! while the user enters that code on the verification page and approves or denies.

use std::sync::Arc;

use serde::Serialize;

use crate::error::OAuthError;
use crate::grant::{TokenContext, authenticate_client, granted_scopes};
use crate::model::{
    ConnectedApp, DEVICE_CODE_LIFETIME_MS, DEVICE_POLL_INTERVAL_SECS, DeviceCode, DeviceDecision,
    PermittedUsers, User,
};
use crate::ports::StoreError;
use crate::token::{self, Digest};
use crate::wire::{ClientCredentials, Params};

/// Where users enter their code (spec §1).
pub const VERIFICATION_PATH: &str = "/setup/connect";

/// RFC 8628 §6.1: consonants only (no words, no look-alikes), 8 of them (about 34 bits),
/// shown as two groups of four.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The answer to `response_type=device_code` (spec §3.8: no `expires_in` in Salesforce's).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub interval: i64,
}

/// A new user code, `XXXX-XXXX`.
pub fn mint_user_code() -> String {
    // 256 is not a multiple of 20: draw again for bytes past the largest multiple, so that
    // every letter is equally likely.
    let mut code = String::with_capacity(USER_CODE_LEN + 1);
    while code.len() < USER_CODE_LEN + 1 {
        for b in token::random_bytes::<16>() {
            if b >= 240 || code.len() == USER_CODE_LEN + 1 {
                continue;
            }
            if code.len() == 4 {
                code.push('-');
            }
            code.push(USER_CODE_ALPHABET[(b % 20) as usize] as char);
        }
    }
    code
}

/// The user code as typed: any case, with or without the dash or spaces. `None` if it cannot
/// be one of ours.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ours = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    ours.then_some(code)
}

/// The keyed digest a user code is stored under (normalized first).
pub fn user_code_digest(ctx: &TokenContext<'_>, normalized: &str) -> Digest {
    ctx.hasher.digest(&format!("device-user-code:{normalized}"))
}

/// `POST /services/oauth2/token` with `response_type=device_code`: a public client names
/// itself; a client that sends a secret must send the right one.
/// The client of a device authorization request, authenticated (a secret is optional: the
/// device flow is for public clients too).
pub async fn authenticate(
    ctx: &TokenContext<'_>,
    client: &ClientCredentials,
) -> Result<std::sync::Arc<crate::model::ConnectedApp>, OAuthError> {
    authenticate_client(ctx, client, true).await
}

pub async fn authorize(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<DeviceAuthorization, OAuthError> {
    if let Some(name) = params.duplicate() {
        return Err(OAuthError::duplicated(name));
    }
    let app = authenticate_client(ctx, client, true).await?;
    if !app.device_flow {
        let why = format!("app {} does not have \"Enable for Device Flow\"", app.id);
        return Err(OAuthError::device_flow_disabled().because(why));
    }
    let scopes = granted_scopes(params, &app.scopes)?;
    // A user code is short: on the rare collision with a live one, draw another.
    for _ in 0..4 {
        let device_code = token::mint_authorization_code();
        let user_code = mint_user_code();
        let normalized = normalize_user_code(&user_code).ok_or_else(OAuthError::server_error)?;
        let record = DeviceCode {
            digest: ctx.hasher.digest(&device_code),
            user_code_digest: user_code_digest(ctx, &normalized),
            app_id: app.id,
            scopes: scopes.clone(),
            issued_at: ctx.now,
            expires_at: ctx.now + DEVICE_CODE_LIFETIME_MS,
            interval_secs: DEVICE_POLL_INTERVAL_SECS,
            last_polled_at: None,
            decision: DeviceDecision::Pending,
            redeemed: false,
        };
        match ctx.store.insert_device_code(&record).await {
            Ok(()) => {
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code,
                    verification_uri: format!("{}{VERIFICATION_PATH}", ctx.entry.base_url),
                    interval: DEVICE_POLL_INTERVAL_SECS,
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::server_error())
}

/// Why the verification page cannot go on with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    /// Not a code we issued, already decided, or expired: the page says the same for all.
    NotValid,
    /// The user may not use the app (admin-approved app, user not pre-authorized).
    NotAdmitted,
    Unavailable,
}

/// A pending authorization the user is looking at: the code's digest and the app asking.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    pub user_code_digest: Digest,
    pub app: Arc<ConnectedApp>,
    pub scopes: crate::scope::Scopes,
}

/// The pending authorization behind a typed user code, if `user` may approve it.
pub async fn pending(
    ctx: &TokenContext<'_>,
    typed: &str,
    user: &User,
) -> Result<PendingDevice, CodeProblem> {
    let normalized = normalize_user_code(typed).ok_or(CodeProblem::NotValid)?;
    let digest = user_code_digest(ctx, &normalized);
    let code = ctx
        .store
        .device_code_by_user_code(&digest)
        .await
        .map_err(|_| CodeProblem::Unavailable)?
        .ok_or(CodeProblem::NotValid)?;
    if code.decision != DeviceDecision::Pending || ctx.now >= code.expires_at {
        return Err(CodeProblem::NotValid);
    }
    let app = ctx
        .store
        .app(&code.app_id)
        .await
        .map_err(|_| CodeProblem::Unavailable)?
        .ok_or(CodeProblem::NotValid)?;
    if app.permitted_users == PermittedUsers::AdminApproved && !app.pre_authorizes(user) {
        return Err(CodeProblem::NotAdmitted);
    }
    Ok(PendingDevice {
        user_code_digest: digest,
        app,
        scopes: code.scopes,
    })
}

/// Records the user's answer. Approving also records the approval of the app, as the web
/// flow's consent page does.
pub async fn decide(
    ctx: &TokenContext<'_>,
    device: &PendingDevice,
    user: &User,
    auth_time: crate::model::Millis,
    allow: bool,
) -> Result<(), CodeProblem> {
    let decision = if allow {
        DeviceDecision::Approved {
            user_id: user.id,
            auth_time,
        }
    } else {
        DeviceDecision::Denied
    };
    let recorded = ctx
        .store
        .decide_device_code(&device.user_code_digest, decision, ctx.now)
        .await
        .map_err(|_| CodeProblem::Unavailable)?;
    if !recorded {
        return Err(CodeProblem::NotValid);
    }
    if allow {
        ctx.store
            .approve(&user.id, &device.app.id, &device.scopes, ctx.now)
            .await
            .map_err(|_| CodeProblem::Unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_two_groups_of_four_consonants() {
        for _ in 0..200 {
            let code = mint_user_code();
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            assert_eq!(normalize_user_code(&code).map(|c| c.len()), Some(8));
        }
    }

    #[test]
    fn typed_codes_are_forgiving_about_case_dashes_and_spaces() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for typed in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
        ] {
            assert_eq!(normalize_user_code(typed), None, "{typed}");
        }
    }
}
