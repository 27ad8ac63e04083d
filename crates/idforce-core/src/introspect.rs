//! Token introspection (RFC 7662, spec §7): an authenticated app learns about its own tokens,
//! or about every token of its org when it may introspect all tokens.

use std::sync::Arc;

use serde::Serialize;

use crate::error::OAuthError;
use crate::grant::{TokenContext, authenticate_client};
use crate::model::{ConnectedApp, Org, User};
use crate::session;
use crate::sfid::SfId;
use crate::wire::{ClientCredentials, Params};

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Introspection {
    Active {
        active: bool,
        scope: String,
        client_id: String,
        username: String,
        sub: String,
        token_type: &'static str,
        exp: i64,
        iat: i64,
        nbf: i64,
    },
    Refresh {
        active: bool,
        scope: String,
        client_id: String,
        username: String,
        sub: String,
        token_type: &'static str,
        iat: i64,
        nbf: i64,
    },
    Inactive {
        active: bool,
    },
}

const INACTIVE: Introspection = Introspection::Inactive { active: false };

pub async fn introspect(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<Introspection, OAuthError> {
    if let Some(name) = params.duplicate() {
        return Err(OAuthError::duplicated(name));
    }
    let caller = authenticate_client(ctx, client, false).await?;
    if caller.secret_digest.is_none() {
        return Err(OAuthError::bad_client_secret());
    }
    let token = params.require("token")?;
    if crate::token::looks_like_refresh_token(token) {
        return introspect_refresh(ctx, &caller, token).await;
    }
    let Some(s) = session::find_live(ctx.store, ctx.hasher, token, ctx.now).await? else {
        return Ok(INACTIVE);
    };
    let Some((app, user, org)) =
        visible_owner(ctx, &caller, &s.app_id, &s.user_id, &s.org_id).await?
    else {
        return Ok(INACTIVE);
    };
    Ok(Introspection::Active {
        active: true,
        scope: s.scopes.to_string(),
        client_id: app.client_id.clone(),
        username: user.username.clone(),
        sub: ctx.settings.identity_url(&org, &user),
        token_type: "access_token",
        exp: s.expires_at() / 1000,
        iat: s.issued_at / 1000,
        nbf: s.issued_at / 1000,
    })
}

async fn introspect_refresh(
    ctx: &TokenContext<'_>,
    caller: &ConnectedApp,
    token: &str,
) -> Result<Introspection, OAuthError> {
    let Some(r) = ctx.store.refresh_token(&ctx.hasher.digest(token)).await? else {
        return Ok(INACTIVE);
    };
    if r.revoked || r.rotated {
        return Ok(INACTIVE);
    }
    let Some((app, user, org)) =
        visible_owner(ctx, caller, &r.app_id, &r.user_id, &r.org_id).await?
    else {
        return Ok(INACTIVE);
    };
    if !app.refresh_token_policy.allows(&r, ctx.now) {
        return Ok(INACTIVE);
    }
    Ok(Introspection::Refresh {
        active: true,
        scope: r.scopes.to_string(),
        client_id: app.client_id.clone(),
        username: user.username.clone(),
        sub: ctx.settings.identity_url(&org, &user),
        token_type: "refresh_token",
        iat: r.issued_at / 1000,
        nbf: r.issued_at / 1000,
    })
}

/// The app, user and org behind a token, when the caller may see it (its own app's token, any
/// of its org's with introspect_all_tokens, or one of an app it registered) and the user is
/// still active.
async fn visible_owner(
    ctx: &TokenContext<'_>,
    caller: &ConnectedApp,
    app_id: &SfId,
    user_id: &SfId,
    org_id: &SfId,
) -> Result<Option<(Arc<ConnectedApp>, Arc<User>, Arc<Org>)>, OAuthError> {
    let Some(app) = ctx.store.app(app_id).await? else {
        return Ok(None);
    };
    let registered_by_caller = app
        .registration
        .as_ref()
        .is_some_and(|r| r.parent == caller.id);
    let visible = *app_id == caller.id
        || (caller.introspect_all_tokens && *org_id == caller.org_id)
        || registered_by_caller;
    if !visible {
        return Ok(None);
    }
    let (Some(user), Some(org)) = (ctx.store.user(user_id).await?, ctx.store.org(org_id).await?)
    else {
        return Ok(None);
    };
    // A user frozen or an app blocked since the token was issued: its tokens are inactive even
    // before the revocation that came with the change has reached every node's cache.
    Ok((user.may_use_tokens() && !app.blocked).then_some((app, user, org)))
}
