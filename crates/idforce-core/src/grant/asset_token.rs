//! The asset token flow (Salesforce's "OAuth 2.0 Asset Token Flow for Securing Connected
//! Devices"; docs/salesforce-compatibility.md): a device's app exchanges a user's access token,
//! and optionally an actor token describing the device, for an asset token — a JWT that names
//! the device for a backend service, signed with the app's asset signing certificate or, when
//! it names none, with the org's keys (those of /id/keys). No client authentication: the app
//! is the access token's.

use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::TokenContext;
use crate::error::OAuthError;
use crate::external_jwt;
use crate::jwks::JwkSet;
use crate::model::ConnectedApp;
use crate::token_exchange::{AssetTokens, TokenType, asset_key_purpose};
use crate::wire::{AssetTokenResponse, ClientCredentials, Params};

/// Whether a token exchange request is the asset token flow: it carries an actor token, or
/// identifies no client at all (the app is then the access token's).
pub(super) fn is_requested(params: &Params, client: &ClientCredentials) -> bool {
    params.get("actor_token").is_some()
        || params.get("actor_token_type").is_some()
        || (client.client_id.is_none() && client.assertion.is_none())
}

pub(super) async fn issue(
    ctx: &TokenContext<'_>,
    params: &Params,
    client: &ClientCredentials,
) -> Result<AssetTokenResponse, OAuthError> {
    let subject_token = params.require("subject_token")?;
    let kind = params.require("subject_token_type")?;
    if TokenType::parse(kind) != Some(TokenType::AccessToken) {
        let why = "the asset token flow exchanges an access token only";
        return Err(
            OAuthError::unsupported_token_type_for_exchange("subject_token_type").because(why),
        );
    }
    if params.get("actor_token_type").is_some() && params.get("actor_token").is_none() {
        return Err(OAuthError::missing("actor_token"));
    }
    let actor = match params.get("actor_token") {
        Some(token) => {
            let kind = params.get("actor_token_type").unwrap_or_default();
            if TokenType::parse(kind) != Some(TokenType::Jwt) {
                return Err(
                    OAuthError::unsupported_token_type_for_exchange("actor_token_type")
                        .because("an actor token that is not declared a JWT"),
                );
            }
            let actor = read_actor(token, ctx.now / 1000)
                .map_err(|why| OAuthError::invalid_actor_token().because(why))?;
            Some(actor)
        }
        None => None,
    };
    let refused = |why: &str| OAuthError::invalid_subject_token().because(why.to_owned());
    let session = crate::session::find_live(ctx.store, ctx.hasher, subject_token, ctx.now)
        .await?
        .ok_or_else(|| refused("an access token that is no live session of this server"))?;
    if !crate::session::still_allowed(ctx.store, &session).await? {
        return Err(refused(
            "an access token whose user or app may no longer use it",
        ));
    }
    if !ctx.entry.admits(&session.org_id) {
        return Err(refused("an access token of another org than this host's"));
    }
    let app = ctx
        .store
        .app(&session.app_id)
        .await?
        .ok_or_else(|| refused("an access token of an app that no longer exists"))?;
    // Salesforce's request names no client; one that does is held to it: its credentials are
    // checked, and it must be the access token's app.
    if client.client_id.is_some() || client.assertion.is_some() {
        let named = super::authenticate_client(ctx, client, true).await?;
        if named.id != app.id {
            let why = format!(
                "client {} presented app {}'s access token",
                named.id, app.id
            );
            return Err(OAuthError::invalid_subject_token().because(why));
        }
    }
    let settings = app.token_exchange.asset_tokens.as_ref().ok_or_else(|| {
        OAuthError::asset_tokens_disabled()
            .because(format!("app {} has no Enable Asset Tokens", app.id))
    })?;
    let claims = asset_claims(ctx, settings, actor.as_ref());
    let token = sign(ctx, &app, settings, &claims)?;
    Ok(AssetTokenResponse {
        access_token: token,
        issued_token_type: TokenType::Jwt.urn(),
        token_type: "Bearer",
        expires_in: settings.lifetime_secs,
    })
}

/// What an actor token says about the device: its claims, and the key it proved it holds
/// (its `cnf.jwk`, when the token is signed with that key).
struct Actor {
    claims: Map<String, Value>,
    proven_key: Option<Value>,
}

/// An actor token is either unsigned (`alg` `none`, no signature), whose claims are taken as
/// the device's description but whose `cnf` key is not bound (nothing proves the device holds
/// it), or signed (RS256 or ES256) with the key its `cnf.jwk` carries: proof of possession,
/// and that key is bound into the asset token.
fn read_actor(token: &str, now: i64) -> Result<Actor, String> {
    let actor = read_actor_token(token)?;
    // A device's statement may say how long it holds (a signed one should: a proof of
    // possession that never expires can be replayed).
    match actor.claims.get("exp") {
        None => {}
        Some(exp) => match exp.as_i64() {
            Some(exp) if exp + crate::assertion::CLOCK_SKEW_SECS > now => {}
            _ => return Err(format!("an actor token that expired at {exp}")),
        },
    }
    Ok(actor)
}

fn read_actor_token(token: &str) -> Result<Actor, String> {
    let token = token.trim();
    if token.len() > external_jwt::MAX_LEN {
        return Err(format!(
            "an actor token longer than {} characters",
            external_jwt::MAX_LEN
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("an actor token that is not a JWT of three parts".into());
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok();
    let header: Value = decode(header)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("an actor token whose header is not JSON")?;
    if header.get("alg").and_then(Value::as_str) == Some("none") {
        if !signature.is_empty() {
            return Err("an unsigned actor token (alg none) with a signature".into());
        }
        let claims = match decode(payload).and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(Value::Object(claims)) => claims,
            _ => return Err("an actor token whose claims are not a JSON object".into()),
        };
        if claims.contains_key("cnf") {
            return Err("an unsigned actor token with a cnf key it does not prove it holds".into());
        }
        return Ok(Actor {
            claims,
            proven_key: None,
        });
    }
    let jwt = external_jwt::parse(token).map_err(|why| format!("actor token: {why}"))?;
    let jwk = jwt
        .claims
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .cloned()
        .ok_or("a signed actor token without the cnf.jwk that verifies it")?;
    let keys = JwkSet::parse(&json!({ "keys": [jwk.clone()] }))
        .map_err(|why| format!("actor token's cnf.jwk: {why}"))?;
    // The key is matched whatever `kid` the header names: the token carries its own key.
    if !keys.verifies(
        None,
        jwt.alg,
        signing_input(token).as_bytes(),
        &signature_of(token),
    ) {
        return Err("an actor token not signed with its cnf.jwk".into());
    }
    Ok(Actor {
        claims: jwt.claims,
        proven_key: Some(jwk),
    })
}

fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(input, _)| input)
}

fn signature_of(token: &str) -> Vec<u8> {
    token
        .rsplit_once('.')
        .and_then(|(_, s)| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        .unwrap_or_default()
}

/// The asset token's claims: issued here (the site or My Domain the request came to), for the
/// app's asset audiences, valid for its lifetime, with the device's id, name and asset as the
/// actor token gave them, and the proven device key as `cnf`.
fn asset_claims(ctx: &TokenContext<'_>, settings: &AssetTokens, actor: Option<&Actor>) -> Value {
    let now = ctx.now / 1000;
    let audiences = if settings.audiences.is_empty() {
        vec![ctx.entry.base_url.clone()]
    } else {
        settings.audiences.clone()
    };
    let mut c = Map::new();
    c.insert("iss".into(), json!(ctx.entry.base_url));
    c.insert("aud".into(), json!(audiences));
    c.insert("nbf".into(), json!(now));
    c.insert("iat".into(), json!(now));
    c.insert(
        "exp".into(),
        json!(now.saturating_add(settings.lifetime_secs)),
    );
    c.insert(
        "jti".into(),
        json!(crate::token::hex(&crate::token::random_bytes::<16>())),
    );
    if let Some(actor) = actor {
        for name in ["did", "Name", "Asset"] {
            if let Some(v) = actor.claims.get(name) {
                c.insert(name.into(), v.clone());
            }
        }
        if let Some(jwk) = &actor.proven_key {
            c.insert("cnf".into(), json!({ "jwk": jwk }));
        }
    }
    Value::Object(c)
}

/// Signs with the app's asset signing key when it has one, else with the org's keys.
fn sign(
    ctx: &TokenContext<'_>,
    app: &ConnectedApp,
    settings: &AssetTokens,
    claims: &Value,
) -> Result<String, OAuthError> {
    let Some(sealed) = &settings.key_sealed else {
        return ctx
            .signer
            .sign("JWT", claims)
            .ok_or_else(|| OAuthError::fault("no signing key for an asset token"));
    };
    let der = ctx
        .secrets
        .open(&asset_key_purpose(&app.id), sealed)
        .ok_or_else(|| {
            OAuthError::fault(format!(
                "the asset signing key of app {} cannot be opened with the system secret",
                app.id
            ))
        })?;
    let pair = RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| OAuthError::fault("the app's asset signing key is not an RSA key"))?;
    let kid = settings
        .certificate_der
        .as_deref()
        .map(asset_key_id)
        .unwrap_or_default();
    let header = json!({ "kid": kid, "typ": "JWT", "alg": "RS256" });
    crate::token::sign_rs256(&pair, &header, claims)
        .ok_or_else(|| OAuthError::fault("signing an asset token failed"))
}

/// The `kid` of tokens an app's asset signing certificate signs: the start of its SHA-256
/// fingerprint, so that a backend holding several certificates finds the one.
pub fn asset_key_id(certificate_der: &[u8]) -> String {
    crate::certificate::fingerprint(certificate_der)
        .replace(':', "")
        .chars()
        .take(16)
        .collect()
}
