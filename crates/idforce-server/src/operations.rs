//! What an admin does to the store, shared by the admin commands and Setup's pages, so that
//! both do it the same way and record it alike in the Setup Audit Trail.

use idforce_core::model::{ConnectedApp, Millis};
use idforce_core::ports::StoreResult;
use idforce_store::{AuditRecord, Backend, SessionFilter};

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

/// Records a change that is already made; a failure is logged, never the change's answer
/// (which may show a secret once).
pub async fn audit(store: &dyn Backend, actor: &str, section: &str, action: String, now: Millis) {
    let record = AuditRecord {
        at: now,
        actor: actor.to_owned(),
        section: section.to_owned(),
        action,
    };
    if let Err(e) = store.record_change(&record).await {
        tracing::warn!(error = %e, "a change is made, but not in the Setup Audit Trail");
        eprintln!("idforce: warning: the change is made, but not in the audit trail: {e}");
    }
}
