//! Client credentials flow (spec §3.7): the app acts as its configured run-as user.

use super::{TokenContext, authenticate_client, granted_scopes, issue_session};
use crate::error::OAuthError;
use crate::login_history::{LoginStatus, LoginSubtype};
use crate::model::PermittedUsers;
use crate::wire::{ClientCredentials, Params, TokenResponse};

/// Scopes a client-credentials session never carries.
const EXCLUDED: &[&str] = &["full", "web", "refresh_token", "offline_access"];

/// Hosts where Salesforce refuses this flow: it must be sent to a My Domain.
const LOGIN_HOSTS: [&str; 2] = ["login.salesforce.com", "test.salesforce.com"];

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let app = authenticate_client(ctx, client, false).await?;
    if app.secret_digest.is_none() {
        let why = "a public app (no secret) cannot use client credentials";
        return Err(OAuthError::bad_client_secret().because(why));
    }
    if ctx
        .host
        .is_some_and(|h| LOGIN_HOSTS.iter().any(|l| h.eq_ignore_ascii_case(l)))
    {
        return Err(OAuthError::wrong_domain().because("sent to a Salesforce login host"));
    }
    if !ctx.entry.admits(&app.org_id) {
        let why = format!(
            "the app's org is {}, not the org of {}",
            app.org_id, ctx.entry.base_url
        );
        return Err(OAuthError::wrong_domain().because(why));
    }
    if !ctx.entry.my_domain {
        // An org with a My Domain takes this flow only there (and on its sites there): not
        // on the login host, nor on a site under the login host.
        let org = ctx.store.org(&app.org_id).await?;
        let public_host = crate::hosts::host_of_url(&ctx.settings.public_url);
        if let Some(domain) = org
            .as_ref()
            .and_then(|o| o.my_domain.as_deref())
            .filter(|d| Some(*d) != public_host.as_deref())
        {
            let why = format!("the app's org has the My Domain {domain}; sent to the login host");
            return Err(OAuthError::wrong_domain().because(why));
        }
    }
    let run_as = app
        .run_as
        .ok_or_else(|| OAuthError::no_run_as_user().because("the app has no run-as user"))?;
    let (user, org) = super::active_user(ctx, &run_as, &app, OAuthError::no_run_as_user).await?;
    if app.permitted_users == PermittedUsers::AdminApproved && !app.pre_authorizes(&user) {
        let why = format!("run-as user {} is not admitted to the app", user.id);
        return Err(OAuthError::not_admin_approved()
            .because(why)
            .in_login_history(&user, LoginStatus::NotApprovedForAccess)
            .through(&app));
    }
    let scopes = granted_scopes(params, &app.scopes.without(EXCLUDED))?;
    super::admit_login(
        ctx,
        &user,
        Some(&app),
        crate::login_policy::Entry::ClientCredentials,
    )
    .await
    .map_err(|e| e.through(&app))?;
    issue_session(
        ctx,
        &org,
        &user,
        &app,
        scopes,
        client.client_secret.as_deref(),
        LoginSubtype::ClientCredentials,
    )
    .await
}
