//! Token exchange (RFC 8693 as Salesforce implements it; docs/salesforce-compatibility.md): a
//! token another issuer signed — judged by one of the org's declared handlers, Salesforce's
//! Apex handler as configuration — or one of this server's own (an access token, a refresh
//! token, an id_token), exchanged for a session of the requesting app. The answer is a
//! password grant's, with `issued_token_type`.

use std::sync::Arc;

use super::{REFRESH_SCOPES, TokenContext, authenticate_client, granted_scopes, open_session};
use crate::error::OAuthError;
use crate::external_jwt;
use crate::login_history::{LoginStatus, LoginSubtype};
use crate::model::{ConnectedApp, Org, PermittedUsers, User};
use crate::scope::Scopes;
use crate::sfid::SfId;
use crate::token_exchange::{Handler, TokenType, handler_for};
use crate::wire::{ClientCredentials, Params, TokenResponse};

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let subject_token = params.require("subject_token")?;
    let kind = params.require("subject_token_type")?;
    let kind = TokenType::parse(kind).ok_or_else(|| {
        OAuthError::unsupported_token_type_for_exchange("subject_token_type")
            .because(format!("subject_token_type {:?}", shown(kind)))
    })?;
    if let Some(wanted) = params.get("requested_token_type")
        && TokenType::parse(wanted) != Some(TokenType::AccessToken)
    {
        // Salesforce issues access tokens (with an id_token for `openid`), nothing else.
        return Err(
            OAuthError::unsupported_token_type_for_exchange("requested_token_type")
                .because(format!("requested_token_type {:?}", shown(wanted))),
        );
    }
    let require_secret = match client.client_id.as_deref() {
        Some(id) => super::app_of_consumer_key(ctx, id)
            .await?
            .is_none_or(|a| a.token_exchange.require_secret),
        None => true,
    };
    let app = authenticate_client(ctx, client, !require_secret).await?;
    if !app.token_exchange.enabled {
        let why = format!("app {} has no Enable Token Exchange Flow", app.id);
        return Err(OAuthError::token_exchange_disabled().because(why));
    }
    let org = ctx
        .store
        .org(&app.org_id)
        .await?
        .ok_or_else(|| OAuthError::fault(format!("app {} belongs to no stored org", app.id)))?;
    let subject = subject(ctx, &org, &app, params, subject_token, kind)
        .await
        .map_err(|e| e.through(&app))?;
    let user = subject.user;
    if !ctx.entry.admits(&user.org_id) {
        return Err(OAuthError::invalid_subject_token().because(super::elsewhere(ctx, &user)));
    }
    check_user(ctx, &user, &app)
        .await
        .map_err(|e| e.through(&app))?;
    let allowed = match &subject.own_scopes {
        None => app.scopes.clone(),
        Some(carried) => own_token_scopes(ctx, &user, &app, carried.as_ref())
            .await
            .map_err(|e| e.through(&app))?,
    };
    let scopes = granted_scopes(params, &allowed.without(REFRESH_SCOPES))?;
    super::admit_login(ctx, &user, Some(&app), crate::login_policy::Entry::Login)
        .await
        .map_err(|e| e.through(&app))?;

    let opened = open_session(
        ctx,
        &org,
        &user,
        &app,
        scopes.clone(),
        None,
        LoginSubtype::TokenExchange,
    )?;
    ctx.store.insert_tokens(&opened.tokens(None)).await?;
    let key = super::signing_secret(ctx, &app, client.client_secret.as_deref());
    let mut response = opened.response(ctx, &org, &user, key.as_deref());
    super::attach_id_token(
        ctx,
        &org,
        &user,
        &app,
        &scopes,
        &mut response,
        None,
        ctx.now,
    )?;
    response.issued_token_type = Some(TokenType::AccessToken.urn());
    Ok(response)
}

/// A parameter's value as the log shows it: at most 64 characters, escaped.
fn shown(value: &str) -> String {
    value
        .chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// Who the subject token stands for, and how it was vouched for.
struct Subject {
    user: Arc<User>,
    /// `Some` for one of this server's own tokens: the scopes it carried (`None` for an
    /// id_token, which carries none). `None`: a handler vouched for an external token.
    own_scopes: Option<Option<Scopes>>,
}

/// The user the subject token stands for, in the app's org.
async fn subject(
    ctx: &TokenContext<'_>,
    org: &Org,
    app: &ConnectedApp,
    params: &Params,
    token: &str,
    kind: TokenType,
) -> Result<Subject, OAuthError> {
    let refused = |why: String| OAuthError::invalid_subject_token().because(why);
    let external = |user| Subject {
        user,
        own_scopes: None,
    };
    let (user_id, carried) = match kind {
        TokenType::AccessToken => match own_session(ctx, token).await? {
            Some(session) => (session.user_id, Some(session.scopes)),
            // Not one of this server's: an identity provider's JWT access token, for a handler.
            None => return Ok(external(external_user(ctx, org, app, params, token).await?)),
        },
        TokenType::RefreshToken => {
            let record = own_refresh_token(ctx, token).await?;
            (record.user_id, Some(record.scopes))
        }
        TokenType::IdToken | TokenType::Jwt => match own_id_token(ctx, token).await? {
            Some(user) => (user, None),
            None => return Ok(external(external_user(ctx, org, app, params, token).await?)),
        },
        TokenType::Saml2 => {
            return Err(
                OAuthError::unsupported_token_type_for_exchange("subject_token_type")
                    .because("a SAML 2.0 subject token: no handler of this server reads SAML"),
            );
        }
    };
    let user = ctx
        .store
        .user(&user_id)
        .await?
        .ok_or_else(|| refused(format!("user {user_id} no longer exists")))?;
    if user.org_id != org.id {
        return Err(refused(format!(
            "a token of user {} of org {}, not of the app's org {}",
            user.id, user.org_id, org.id
        )));
    }
    Ok(Subject {
        user,
        own_scopes: Some(carried),
    })
}

/// What an exchange of one of this server's own tokens may grant: no more than the user
/// approved for the requesting app (an admin-approved app's pre-authorization approves all of
/// its scopes) nor than the token carried. Another app's token is the user's proof of who
/// they are, not their consent to this app.
async fn own_token_scopes(
    ctx: &TokenContext<'_>,
    user: &User,
    app: &ConnectedApp,
    carried: Option<&Scopes>,
) -> Result<Scopes, OAuthError> {
    let mut allowed = app.scopes.clone();
    if app.permitted_users == PermittedUsers::AllUsers {
        let approved = ctx
            .store
            .approval(&user.id, &app.id)
            .await?
            .ok_or_else(|| {
                OAuthError::not_approved()
                    .because(format!("user {} has not approved app {}", user.id, app.id))
                    .in_login_history(user, LoginStatus::NotApprovedForAccess)
            })?;
        allowed = allowed.within(&approved);
    }
    if let Some(carried) = carried {
        allowed = allowed.within(carried);
    }
    if allowed.without(REFRESH_SCOPES).is_empty() {
        let why = "the subject token and the user's approval leave none of the app's scopes";
        return Err(OAuthError::invalid_subject_token().because(why));
    }
    Ok(allowed)
}

/// The user of a live session of this server whose access token `token` is; `None` when it
/// is none of this server's.
async fn own_session(
    ctx: &TokenContext<'_>,
    token: &str,
) -> Result<Option<crate::model::Session>, OAuthError> {
    let Some(session) = crate::session::find_live(ctx.store, ctx.hasher, token, ctx.now).await?
    else {
        return Ok(None);
    };
    if !crate::session::still_allowed(ctx.store, &session).await? {
        let why = "an access token whose user or app may no longer use it";
        return Err(OAuthError::invalid_subject_token().because(why));
    }
    Ok(Some(session))
}

/// The user of a live refresh token of this server. Refresh tokens of other issuers cannot be
/// judged by a declared handler (they are opaque), so an unknown one is refused.
async fn own_refresh_token(
    ctx: &TokenContext<'_>,
    token: &str,
) -> Result<crate::model::RefreshToken, OAuthError> {
    let refused = |why: &str| OAuthError::invalid_subject_token().because(why.to_owned());
    let record = ctx
        .store
        .refresh_token(&ctx.hasher.digest(token))
        .await?
        .ok_or_else(|| refused("a refresh token this server did not issue"))?;
    if record.revoked || record.rotated {
        return Err(refused("a revoked or already rotated refresh token"));
    }
    let issuer = ctx
        .store
        .app(&record.app_id)
        .await?
        .ok_or_else(|| refused("a refresh token of an app that no longer exists"))?;
    if issuer.blocked
        || !issuer.oauth_enabled
        || !issuer.refresh_token_policy.allows(&record, ctx.now)
    {
        return Err(refused(
            "a refresh token its app's policy or state no longer honours",
        ));
    }
    Ok(record)
}

/// The user of an unexpired id_token this server signed (`None`: not one of its own), issued
/// to an app that may still use its tokens. No clock skew: the clock that set `exp` is this
/// one.
async fn own_id_token(ctx: &TokenContext<'_>, token: &str) -> Result<Option<SfId>, OAuthError> {
    let Some(claims) = ctx.signer.verify(token, "JWT") else {
        return Ok(None);
    };
    let refused = |why: String| OAuthError::invalid_subject_token().because(why);
    let exp = claims.get("exp").and_then(serde_json::Value::as_i64);
    if exp.is_none_or(|exp| exp <= ctx.now / 1000) {
        return Err(refused(format!(
            "an id_token of this server that expired at {exp:?}"
        )));
    }
    let issued_to = claims
        .get("aud")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let issuer_app = super::app_of_consumer_key(ctx, issued_to).await?;
    if issuer_app.is_none_or(|a| a.blocked) {
        return Err(refused(
            "an id_token of an app that is gone, blocked or off the wire".into(),
        ));
    }
    // `sub` is the identity URL, …/id/<org>/<user>.
    let user = claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .and_then(|sub| sub.rsplit('/').next())
        .and_then(|id| SfId::parse(id).ok())
        .ok_or_else(|| refused("an id_token of this server without a user in sub".into()))?;
    Ok(Some(user))
}

/// The user a handler finds for a token another issuer signed: the handler the request names
/// (one of the app's) or the app's default verifies its signature, `iss`, `aud`, `exp` and
/// `nbf`, and reads the user from its claim.
async fn external_user(
    ctx: &TokenContext<'_>,
    org: &Org,
    app: &ConnectedApp,
    params: &Params,
    token: &str,
) -> Result<Arc<User>, OAuthError> {
    let refused = |why: String| OAuthError::invalid_subject_token().because(why);
    let handler = handler_for(org, app, params.get("token_handler")).map_err(refused)?;
    let jwt = external_jwt::parse(token)
        .map_err(|why| refused(format!("handler {:?}: {why}", handler.name)))?;
    if !signed_by_handler(ctx, handler, &jwt).await {
        return Err(refused(format!(
            "handler {:?}: not signed with the issuer's key",
            handler.name
        )));
    }
    jwt.check(&handler.issuer, &handler.audience, ctx.now / 1000)
        .map_err(|why| refused(format!("handler {:?}: {why}", handler.name)))?;
    let value = jwt.claim(&handler.user_claim).ok_or_else(|| {
        refused(format!(
            "handler {:?}: no string claim {:?}",
            handler.name, handler.user_claim
        ))
    })?;
    let mut found = ctx
        .store
        .users_matching(&org.id, handler.match_on, value)
        .await?;
    let tag = ctx.hasher.log_tag(value);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(refused(format!(
            "handler {:?}: no user whose {} is {tag}",
            handler.name,
            handler.match_on.as_str()
        ))),
        _ => Err(refused(format!(
            "handler {:?}: several users whose {} is {tag}",
            handler.name,
            handler.match_on.as_str()
        ))),
    }
}

/// Whether the handler's certificate, or a key it publishes, signed the token. A published
/// set that lacks the token's key is fetched again (the issuer may have rotated), as often as
/// `KeySets` allows.
async fn signed_by_handler(
    ctx: &TokenContext<'_>,
    handler: &Handler,
    jwt: &external_jwt::ExternalJwt<'_>,
) -> bool {
    if let Some(der) = &handler.certificate_der {
        return jwt.signed_by_certificate(der);
    }
    let Some(uri) = handler.jwks_uri.as_deref() else {
        return false;
    };
    match super::published_keys(ctx, uri, jwt.kid.as_deref()).await {
        Ok(set) => jwt.signed_by(&set),
        Err(why) => {
            tracing::warn!(handler = %handler.name, %why, "cannot read the handler's jwks_uri");
            false
        }
    }
}

/// Whether the user may log in through the app now. The handler vouches for the user as an
/// Apex handler does, so no prior approval is needed; an admin-approved app still admits only
/// its profiles and pre-authorized users.
async fn check_user(
    ctx: &TokenContext<'_>,
    user: &User,
    app: &ConnectedApp,
) -> Result<(), OAuthError> {
    super::refuse_unusable(ctx, user, app)?;
    super::password::check_access(app, user)
}
