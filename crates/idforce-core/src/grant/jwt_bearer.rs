//! JWT bearer flow (spec §3.6, §12.5): an RS256 assertion signed with the key of the app's
//! certificate, naming the app (`iss`), the user (`sub`) and this server (`aud`).

use super::{REFRESH_SCOPES, TokenContext, granted_scopes, open_session, org_of};
use crate::assertion;
use crate::error::OAuthError;
use crate::login_history::{LoginStatus, LoginSubtype};
use crate::model::{ConnectedApp, PermittedUsers, User};
use crate::wire::{Params, TokenResponse};

const SALESFORCE_AUDIENCES: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let compact = params
        .get("assertion")
        .ok_or_else(|| OAuthError::invalid_assertion().because("no assertion"))?;
    let parsed = assertion::parse(compact)?;
    let claims = &parsed.claims;
    let app = super::app_of_consumer_key(ctx, &claims.iss)
        .await?
        .ok_or_else(|| super::unknown_client(ctx, &claims.iss))?;
    let certificate = app.certificate_der.as_deref().ok_or_else(|| {
        OAuthError::invalid_assertion().because("the app has no certificate to verify it")
    })?;
    parsed.verify_signature(certificate)?;
    check_certificate_validity(ctx, &app, certificate)?;

    let (user, org) = asserted_user(ctx, &claims.sub).await?;
    claims.check_audience(&accepted_audiences(ctx, &org))?;
    claims.check_expiry(ctx.now / 1000)?;
    check_user(ctx, &user, &app)
        .await
        .map_err(|e| e.through(&app))?;
    let scopes = granted_scopes(params, &app.scopes.without(REFRESH_SCOPES))?;
    // Counted once everything but the assertion's one-time use has passed (that is checked as
    // it is spent, with the session it pays for): a replay costs the user one login.
    super::count_login(ctx, &user)
        .await
        .map_err(|e| e.through(&app))?;

    // Last, so that only an assertion that would succeed is spent; in the same transaction
    // as the session it pays for.
    let expires_at = claims
        .exp
        .saturating_mul(1000)
        .saturating_add(assertion::CLOCK_SKEW_SECS * 1000);
    let opened = open_session(
        ctx,
        &org,
        &user,
        &app,
        scopes,
        None,
        LoginSubtype::JwtBearer,
    )?;
    let fresh = ctx
        .store
        .spend_assertion(
            &assertion::ledger_key(compact, expires_at),
            expires_at,
            ctx.now,
            &opened.tokens(None),
        )
        .await?;
    if !fresh {
        return Err(OAuthError::expired_code().because("an assertion used before (replay)"));
    }
    let mut response = opened.response(ctx, &org, &user, None);
    // Salesforce's JWT-bearer response has neither signature nor issued_at (spec §4).
    response.issued_at = None;
    Ok(response)
}

/// The user an assertion names by username, with their org: unknown, or of another org than
/// this My Domain's or site's, answered as Salesforce answers a user without approval.
pub(super) async fn asserted_user(
    ctx: &TokenContext<'_>,
    username: &str,
) -> Result<(std::sync::Arc<User>, std::sync::Arc<crate::model::Org>), OAuthError> {
    let user = ctx.store.user_by_username(username).await?.ok_or_else(|| {
        let why = format!("no user {}", ctx.hasher.log_tag(username));
        OAuthError::not_approved().because(why)
    })?;
    if !ctx.entry.admits(&user.org_id) {
        return Err(OAuthError::not_approved().because(super::elsewhere(ctx, &user)));
    }
    let org = org_of(ctx, &user).await?;
    Ok((user, org))
}

/// Whether the user the assertion names may log in through the app now.
pub(super) async fn check_user(
    ctx: &TokenContext<'_>,
    user: &User,
    app: &ConnectedApp,
) -> Result<(), OAuthError> {
    super::refuse_unusable(ctx, user, app)?;
    match app.permitted_users {
        PermittedUsers::AdminApproved if !app.pre_authorizes(user) => {
            let why = format!(
                "user {} is neither of the app's profiles nor pre-authorized",
                user.id
            );
            Err(OAuthError::not_admin_approved()
                .because(why)
                .in_login_history(user, LoginStatus::NotApprovedForAccess))
        }
        PermittedUsers::AllUsers if !ctx.store.has_approved(&user.id, &app.id).await? => {
            let why = format!("user {} has not approved app {}", user.id, app.id);
            Err(OAuthError::not_approved()
                .because(why)
                .in_login_history(user, LoginStatus::NotApprovedForAccess))
        }
        _ => {
            crate::login_policy::check(ctx, user, Some(app), crate::login_policy::Entry::JwtBearer)
                .await
        }
    }
}

/// Salesforce accepts assertions verified by a certificate outside its validity period (its
/// product management calls this tolerance of lapses in certificate management;
/// docs/salesforce-compatibility.md), and so does idforce unless the app asks otherwise. An
/// accepted one is logged, so the lapse is seen.
pub(super) fn check_certificate_validity(
    ctx: &TokenContext<'_>,
    app: &crate::model::ConnectedApp,
    certificate: &[u8],
) -> Result<(), OAuthError> {
    let Some(validity) = crate::certificate::validity(certificate) else {
        // Unreadable dates: nothing to enforce by, and so nothing accepted when asked to.
        if app.enforce_certificate_validity {
            let why = "the app's certificate has no validity period idforce can read";
            return Err(OAuthError::invalid_assertion().because(why));
        }
        return Ok(());
    };
    if validity.contains(ctx.now) {
        return Ok(());
    }
    let state = if ctx.now.div_euclid(1000) < validity.not_before {
        "not yet valid"
    } else {
        "expired"
    };
    if app.enforce_certificate_validity {
        let why = format!("the app's certificate is {state} (enforce_certificate_validity)");
        return Err(OAuthError::invalid_assertion().because(why));
    }
    tracing::warn!(app = %app.id, "JWT bearer assertion accepted with a certificate that is {state}, as Salesforce accepts it");
    Ok(())
}

/// This server (with or without the token path), the org's My Domain and its sites' URLs
/// (on the login host and the My Domain), and — when enabled — the two Salesforce login hosts
/// that clients hard-code.
pub(super) fn accepted_audiences(ctx: &TokenContext<'_>, org: &crate::model::Org) -> Vec<String> {
    let public = ctx.settings.public_url.trim_end_matches('/');
    let mut out = ctx.settings.issuers(org);
    out.push(format!("{public}/services/oauth2/token"));
    out.extend(
        ctx.settings
            .my_domain_url(org)
            .map(|url| format!("{url}/services/oauth2/token")),
    );
    out.push(ctx.settings.instance_url(org));
    if ctx.settings.accept_salesforce_audiences {
        out.extend(SALESFORCE_AUDIENCES.iter().map(|s| s.to_string()));
    }
    out
}
