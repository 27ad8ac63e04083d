//! What an admin does to the store, shared by the admin commands and Setup's pages, so that
//! both do it the same way and record it alike in the Setup Audit Trail.

use idforce_core::model::{ConnectedApp, Millis};
use idforce_core::ports::{SecretBox, StoreResult, client_secret_purpose};
use idforce_core::sfid::SfId;
use idforce_store::{AuditRecord, Backend, SessionFilter};
use serde_json::{Value, json};

use crate::secrets::SystemSecret;

/// The Setup Audit Trail's section for blocking apps.
pub const OAUTH_USAGE: &str = "Connected Apps OAuth Usage";

/// Blocks or unblocks `app`. Blocking "ends all current user sessions with the connected app":
/// its access and refresh tokens alike (how many of each is returned); unblocking brings none
/// back. Recorded in the audit trail as done by `actor`.
pub async fn set_app_blocked(
    store: &dyn Backend,
    app: &mut ConnectedApp,
    blocked: bool,
    actor: &str,
    now: Millis,
) -> StoreResult<(u64, u64)> {
    app.blocked = blocked;
    store.save_app(app).await?;
    let did = if blocked { "Blocked" } else { "Unblocked" };
    audit(
        store,
        Some(app.org_id),
        actor,
        OAUTH_USAGE,
        format!("{did} connected app {:?}", app.name),
        now,
    )
    .await;
    if blocked {
        store
            .revoke_sessions(SessionFilter::App(app.id), true, now)
            .await
    } else {
        Ok((0, 0))
    }
}

/// The audit trail's section for ending tokens.
pub const SESSION_MANAGEMENT: &str = "Session Management";

/// Ends `user`'s access and refresh tokens of `app` (OAuth Usage's Revoke); how many of each.
pub async fn revoke_user_app(
    store: &dyn Backend,
    user: &idforce_core::model::User,
    app: &ConnectedApp,
    actor: &str,
    now: Millis,
) -> StoreResult<(u64, u64)> {
    let ended = store
        .revoke_sessions(SessionFilter::UserApp(user.id, app.id), true, now)
        .await?;
    let action = format!(
        "Revoked the tokens of {} for connected app {:?}: {} access, {} refresh",
        user.username, app.name, ended.0, ended.1
    );
    audit(store, Some(app.org_id), actor, OAUTH_USAGE, action, now).await;
    Ok(ended)
}

/// Ends one session (Session Management's Remove); whether it was live.
pub async fn remove_session(
    store: &dyn Backend,
    session: &idforce_core::model::Session,
    actor: &str,
    now: Millis,
) -> StoreResult<bool> {
    let ended = store.revoke_session(&session.digest, now).await?;
    let action = format!(
        "Removed a session of user {} (connected app {})",
        session.user_id.to18(),
        session.app_id.to18()
    );
    audit(
        store,
        Some(session.org_id),
        actor,
        SESSION_MANAGEMENT,
        action,
        now,
    )
    .await;
    Ok(ended)
}

/// Records a change that is already made; a failure is logged, never the change's answer
/// (which may show a secret once).
pub async fn audit(
    store: &dyn Backend,
    org: Option<SfId>,
    actor: &str,
    section: &str,
    action: String,
    now: Millis,
) {
    let record = AuditRecord {
        at: now,
        org,
        actor: actor.to_owned(),
        section: section.to_owned(),
        action,
    };
    if let Err(e) = store.record_change(&record).await {
        tracing::warn!(error = %e, "a change is made, but not in the Setup Audit Trail");
        eprintln!("idforce: warning: the change is made, but not in the audit trail: {e}");
    }
}

/// An app as admins see it (`idforce app show`, and what the audit trail compares): no
/// secret, the certificate by fingerprint.
pub fn app_view(a: &ConnectedApp) -> Value {
    json!({
        "id": a.id.to18(), "org_id": a.org_id.to18(), "name": a.name, "api_name": a.api_name,
        "contact_email": a.contact_email, "client_id": a.client_id,
        "oauth_enabled": a.oauth_enabled, "callback_urls": a.callback_urls,
        "scopes": a.scopes.to_string(), "has_certificate": a.certificate_der.is_some(),
        "certificate_sha256": a.certificate_der.as_deref().map(idforce_core::certificate::fingerprint),
        "permitted_users": a.permitted_users.as_str(),
        "profiles": a.profiles, "blocked": a.blocked,
        "pre_authorized_users": a.pre_authorized_users.iter().map(SfId::to18).collect::<Vec<_>>(),
        "run_as": a.run_as.map(|id| id.to18()),
        "require_secret_for_web_server_flow": a.require_secret_for_web_server_flow,
        "require_secret_for_refresh_token_flow": a.require_secret_for_refresh_token_flow,
        "require_pkce": a.require_pkce, "refresh_token_policy": a.refresh_token_policy.to_string(),
        "rotate_refresh_tokens": a.rotate_refresh_tokens, "session_timeout_secs": a.session_timeout_secs,
        "introspect_all_tokens": a.introspect_all_tokens,
        "id_token_lifetime_secs": a.id_token_lifetime_secs,
        "jwt_access_tokens": a.jwt_access_tokens, "device_flow": a.device_flow,
        "enforce_certificate_validity": a.enforce_certificate_validity,
        "max_approvals_per_user": a.max_approvals_per_user,
        "ip_relaxation": a.ip_relaxation.as_str(),
        "token_exchange": token_exchange_view(&a.token_exchange),
        "has_initial_access_token": a.initial_access_token.is_some(),
        "jwks": a.jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()),
        "jwks_uri": a.jwks_uri,
        "registered_by": a.registration.as_ref().map(|r| r.parent.to18()),
        "registration": a.registration.as_ref().map(|r| json!({
            "client_id_issued_at": r.issued_at,
            "registration_access_token_live": r.access_token.is_some(),
            "metadata": r.metadata,
        })),
    })
}

/// What changed between two views, as the audit trail says it: `field before → after; …`.
pub fn changes(before: &Value, after: &Value) -> String {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return String::new();
    };
    let changed: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            let was = b.get(k).map_or("(none)".to_owned(), Value::to_string);
            format!("{k} {was} → {v}")
        })
        .collect();
    if changed.is_empty() {
        "nothing changed".into()
    } else {
        changed.join("; ")
    }
}

/// An app's consumer secret, opened from its sealed copy; or why it cannot be shown.
pub fn reveal_secret(secrets: &SystemSecret, app: &ConnectedApp) -> Result<String, String> {
    if app.secret_digest.is_none() {
        return Err(format!("app {:?} has no consumer secret", app.name));
    }
    let Some(sealed) = &app.secret_sealed else {
        return Err(format!(
            "app {:?}: its secret was set before idforce kept secrets sealed, so only its \
             hash is stored; `idforce app rotate-secret` makes one that can be shown",
            app.name
        ));
    };
    let plain = secrets
        .open(&client_secret_purpose(&app.id), sealed)
        .ok_or_else(|| {
            crate::secrets::cannot_open(
                secrets,
                sealed,
                &format!("the secret of app {:?}", app.name),
            )
        })?;
    String::from_utf8(plain).map_err(|_| format!("app {:?}: a secret that is not text", app.name))
}

pub mod profiles;
pub mod registration;
pub mod users;

/// An app's token exchange and asset token settings, as admins see them (no key).
fn token_exchange_view(t: &idforce_core::token_exchange::AppSettings) -> Value {
    let assets = t.asset_tokens.as_ref().map(|a| {
        json!({
            "lifetime_secs": a.lifetime_secs, "audiences": a.audiences,
            "certificate_sha256": a.certificate_der.as_deref().map(idforce_core::certificate::fingerprint),
        })
    });
    json!({
        "enabled": t.enabled, "handlers": t.handlers, "require_secret": t.require_secret,
        "asset_tokens": assets,
    })
}
