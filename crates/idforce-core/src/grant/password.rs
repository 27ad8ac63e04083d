//! Username-password flow (spec §3.4): the password, followed by the user's security token
//! when the user has one; failures count toward lockout.

use std::sync::Arc;

use super::{TokenContext, authenticate_client, granted_scopes, issue_session, org_of};
use crate::error::OAuthError;
use crate::login_history::{LoginStatus, LoginSubtype};
use crate::login_policy::Entry;
use crate::model::{ConnectedApp, PermittedUsers, User};
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = authenticate_client(ctx, client, false).await?;
    if ctx.entry.site.is_some() {
        // Salesforce does not take this flow on Experience Cloud sites (spec §3.4); as for a
        // blocked flow, the answer is the generic one and the reason goes to the log.
        let why = "the username-password flow is not supported on an Experience Cloud site";
        return Err(OAuthError::authentication_failure().because(why));
    }
    let username = params.get("username").unwrap_or_default();
    let presented = params.get("password").unwrap_or_default();
    let user = check_api_login(ctx, username, presented)
        .await
        .map_err(|e| e.through(&app))?;
    let org = org_of(ctx, &user).await?;
    if !org.oauth.allow_username_password_flow {
        // Salesforce answers as for a wrong password; only Login History says why.
        let why = format!(
            "org {} does not allow OAuth username-password flows",
            org.id
        );
        return Err(OAuthError::authentication_failure()
            .because(why)
            .in_login_history(&user, LoginStatus::UsernamePasswordFlowDisabled)
            .through(&app));
    }
    check_access(&app, &user).map_err(|e| e.through(&app))?;
    // Scopes first: a request refused for its scope is not a login to count.
    let scopes = granted_scopes(params, &app.scopes.without(super::REFRESH_SCOPES))?;
    super::admit_login(ctx, &user, Some(&app), Entry::Login)
        .await
        .map_err(|e| e.through(&app))?;
    let mut response = issue_session(
        ctx,
        &org,
        &user,
        &app,
        scopes,
        client.client_secret.as_deref(),
        LoginSubtype::UsernamePassword,
    )
    .await?;
    // Salesforce's password-flow response carries no scope (spec §4).
    response.scope = None;
    Ok(response)
}

/// A login through the API with `password` followed by the user's security token (when the
/// user has one): the password grant's check, and SOAP login's (spec §12.17). Failures count
/// toward lockout; an unknown or locked user costs the same time as a wrong password.
pub async fn check_api_login(
    ctx: &TokenContext<'_>,
    username: &str,
    presented: &str,
) -> Result<Arc<User>, OAuthError> {
    ctx.passwords.settled().await;
    ctx.passwords
        .admit()
        .map_err(|_| OAuthError::overloaded())?;
    let Some(user) = known_user(ctx, username).await? else {
        return Err(unknown_user(ctx, username));
    };
    check_password(ctx, &user, presented).await?;
    if let Some(refused) = user.login_refusal() {
        return Err(refused);
    }
    Ok(user)
}

/// An interactive login (the login page): the password alone, no security token, with the
/// same failure counting and lockout as the password grant.
pub async fn check_login(
    ctx: &TokenContext<'_>,
    username: &str,
    password: &str,
) -> Result<User, OAuthError> {
    ctx.passwords.settled().await;
    ctx.passwords
        .admit()
        .map_err(|_| OAuthError::overloaded())?;
    let Some(user) = known_user(ctx, username).await? else {
        return Err(unknown_user(ctx, username));
    };
    let interactive = User {
        security_token: None,
        ..Arc::unwrap_or_clone(user)
    };
    check_password(ctx, &interactive, password).await?;
    if let Some(refused) = interactive.login_refusal() {
        return Err(refused);
    }
    Ok(interactive)
}

/// The user a login names; for an unknown name, a check's time is spent first (without its
/// work), so that a missing user costs what a wrong password costs.
async fn known_user(
    ctx: &TokenContext<'_>,
    username: &str,
) -> Result<Option<Arc<User>>, OAuthError> {
    match ctx.store.login_user(username).await? {
        Some(user) if !ctx.entry.admits(&user.org_id) => {
            ctx.passwords.pause().await;
            Err(OAuthError::authentication_failure().because(super::elsewhere(ctx, &user)))
        }
        Some(user) if !username.is_empty() => Ok(Some(user)),
        _ => {
            ctx.passwords.pause().await;
            Ok(None)
        }
    }
}

/// The refusal of an unknown username, which is logged by a keyed digest only: people paste
/// passwords into the username field.
fn unknown_user(ctx: &TokenContext<'_>, username: &str) -> OAuthError {
    let why = format!("no user {}", ctx.hasher.log_tag(username));
    OAuthError::authentication_failure().because(why)
}

/// Verifies `password` or `password+security token`, counting failures and honouring lockout.
/// The check is reserved in the store before the password is hashed (see `LoginAttempts`):
/// a user locked out, or with as many checks counted as the policy allows, is refused
/// without one.
pub(crate) async fn check_password(
    ctx: &TokenContext<'_>,
    user: &User,
    presented: &str,
) -> Result<(), OAuthError> {
    let policy = ctx.settings.lockout;
    if !ctx
        .store
        .reserve_login_attempt(&user.id, ctx.now, policy)
        .await?
    {
        ctx.passwords.pause().await;
        let why = format!(
            "user {} is locked out (or has every allowed check in flight)",
            user.id
        );
        return Err(OAuthError::authentication_failure()
            .because(why)
            .in_login_history(user, LoginStatus::PasswordLockout));
    }
    let (password, token_ok) = match &user.security_token {
        None => (presented, true),
        Some((digest, len)) => {
            let n = presented.chars().count();
            if n > *len {
                let split = presented
                    .char_indices()
                    .nth(n - len)
                    .map_or(presented.len(), |(i, _)| i);
                let (pw, tok) = presented.split_at(split);
                (pw, ctx.hasher.matches(tok, digest))
            } else {
                (presented, false)
            }
        }
    };
    // Overloaded: the reservation stays counted as a failure (a success clears it), which
    // errs toward lockout rather than toward an extra guess.
    let password_ok = ctx
        .passwords
        .verify(&user.password_hash, password)
        .await
        .map_err(|_| OAuthError::overloaded())?;
    if password_ok && token_ok {
        ctx.store.clear_login_failures(&user.id).await?;
        Ok(())
    } else {
        let locked = ctx
            .store
            .login_attempt_failed(&user.id, ctx.now, policy)
            .await?;
        let what = match (password_ok, user.security_token.is_some()) {
            (true, _) => "a wrong or missing security token",
            (false, true) => "a wrong password (or security token)",
            (false, false) => "a wrong password",
        };
        let then = if locked { "; now locked out" } else { "" };
        // The password right and the token not: Salesforce's status for an API login that
        // lacks its token.
        let status = if password_ok {
            LoginStatus::SecurityTokenRequired
        } else {
            LoginStatus::InvalidPassword
        };
        Err(OAuthError::authentication_failure()
            .because(format!("user {}: {what}{then}", user.id))
            .in_login_history(user, status))
    }
}

/// Admin-approved apps admit only pre-authorized users; others need no approval here.
pub(super) fn check_access(app: &ConnectedApp, user: &User) -> Result<(), OAuthError> {
    if app.permitted_users == PermittedUsers::AdminApproved && !app.pre_authorizes(user) {
        let why = format!(
            "user {} is neither of the app's profiles nor pre-authorized",
            user.id
        );
        return Err(OAuthError::not_admin_approved()
            .because(why)
            .in_login_history(user, LoginStatus::NotApprovedForAccess));
    }
    Ok(())
}
