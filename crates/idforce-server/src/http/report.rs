//! The one log policy for requests that fail: each writes one line with its cause — a refusal
//! at `info` (rate-limited), a store failure at `warn` with the store it was, a fault of this
//! server at `error`. The client's answer stays Salesforce's; the line says what happened.
//!
//! Refusals are what an attacker can cause at will, so past `REFUSALS_PER_SECOND` lines in a
//! second they are counted instead of written, and the first refusal of a later second writes
//! one line saying how many were left out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use idforce_core::OAuthError;
use idforce_core::error::Cause;

/// Refusal lines written per second at most.
pub const REFUSALS_PER_SECOND: u64 = 50;

/// Marks a response whose failure has been reported: the access log then records it at
/// `debug`, so a failed request writes one `info` line, not two.
#[derive(Clone)]
pub struct Reported(pub Reason);

/// Why a request was refused, carried on its response. Only `serve --explain` sends it
/// (`explain.rs`); otherwise it is dropped with the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason(pub Arc<str>);

impl Reason {
    pub fn of(e: &OAuthError) -> Reason {
        Reason(match e.cause() {
            Cause::Refused(why) => Arc::from(why.as_ref()),
            Cause::Store(why) => Arc::from(format!("the store failed: {why}")),
            Cause::Fault(why) => Arc::from(format!("server fault: {why}")),
        })
    }

    pub fn new(why: impl Into<Arc<str>>) -> Reason {
        Reason(why.into())
    }

    /// `r`, carrying this reason.
    pub fn attach(self, mut r: axum::response::Response) -> axum::response::Response {
        r.extensions_mut().insert(self);
        r
    }
}

/// The refusals written and left out in the current second.
struct Budget {
    /// The second the counts are for.
    second: AtomicU64,
    written: AtomicU64,
    suppressed: AtomicU64,
}

static BUDGET: Budget = Budget {
    second: AtomicU64::new(0),
    written: AtomicU64::new(0),
    suppressed: AtomicU64::new(0),
};

impl Budget {
    /// Whether a refusal line may be written now; starting a new second reports how many
    /// lines the previous ones left out.
    fn admit(&self, now_secs: u64) -> bool {
        let current = self.second.load(Ordering::Acquire);
        if now_secs != current
            && self
                .second
                .compare_exchange(current, now_secs, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.written.store(0, Ordering::Release);
            let left_out = self.suppressed.swap(0, Ordering::AcqRel);
            if left_out > 0 {
                tracing::info!(
                    suppressed = left_out,
                    "refusal lines left out (more than {REFUSALS_PER_SECOND} a second)"
                );
            }
        }
        if self.written.fetch_add(1, Ordering::AcqRel) < REFUSALS_PER_SECOND {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            false
        }
    }
}

/// `refused`, carrying why its bearer token was refused: computed only under `--explain`
/// (it costs a store read).
pub async fn refused_bearer(
    s: &crate::state::AppState,
    token: Option<&str>,
    refused: axum::response::Response,
) -> axum::response::Response {
    if !s.explain {
        return refused;
    }
    let why = match token {
        None => "no access token: expected an Authorization: Bearer header".to_owned(),
        Some(t) => {
            idforce_core::session::why_not_live(s.store.as_ref(), &s.hasher, t, s.clock.now()).await
        }
    };
    Reason::new(why).attach(refused)
}

/// Writes the line of a failed request: `what` names the request ("token", "SOAP login").
pub fn failure(what: &'static str, e: &OAuthError, database: &str) -> Reported {
    match e.cause() {
        Cause::Refused(why) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if BUDGET.admit(now) {
                tracing::info!(request = what, error = e.code.as_str(), cause = %why, "refused");
            }
        }
        Cause::Store(why) => {
            tracing::warn!(request = what, database, cause = %why, "store failed");
        }
        Cause::Fault(why) => tracing::error!(request = what, cause = %why, "server fault"),
    }
    Reported(Reason::of(e))
}

/// Stores the Login History row of a refusal of a known user before it is answered (so the row
/// is there when the client hears of it). A store that fails loses the row, which the log says,
/// never the answer. One write, as a wrong password's failure count already costs: measured,
/// it does not set such refusals apart from an unknown user's (password_attacks), where a write
/// left running beside the next login did.
pub async fn record_refusal(
    s: &crate::state::AppState,
    ctx: &idforce_core::grant::TokenContext<'_>,
    error: &OAuthError,
    subtype: idforce_core::login_history::LoginSubtype,
) {
    let Some(event) = idforce_core::login_history::refusal(ctx, error, subtype) else {
        return;
    };
    let throttle = &s.throttles.refused_logins_per_user;
    if throttle.take(event.user_id.as15(), ctx.now).is_err() {
        tracing::debug!(user = %event.user_id, "refused login not recorded: too many for this user");
        return;
    }
    if let Err(e) = s.store.record_login(&event).await {
        tracing::warn!(error = %e, user = %event.user_id, "a refused login is not in Login History");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines `work` logs, as the server's plain format writes them.
    fn logged(work: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        let bytes = out.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn store_failures_warn_with_the_store_and_faults_are_errors() {
        let store = OAuthError::store_failure("store unavailable: disk I/O error");
        let lines = logged(|| {
            failure("token", &store, "sqlite:///var/lib/idforce.db");
        });
        assert!(
            lines.contains("WARN")
                && lines.contains("store failed")
                && lines.contains("database=\"sqlite:///var/lib/idforce.db\"")
                && lines.contains("disk I/O error"),
            "{lines}"
        );
        let fault = OAuthError::fault("no signing key for an id_token");
        let lines = logged(|| {
            failure("token", &fault, "-");
        });
        assert!(
            lines.contains("ERROR") && lines.contains("no signing key"),
            "{lines}"
        );
        // The control: a refusal is an info line with its cause.
        let refused = OAuthError::invalid_code().because("an unknown code");
        let lines = logged(|| {
            failure("token", &refused, "-");
        });
        assert!(
            lines.contains("INFO") && lines.contains("cause=an unknown code"),
            "{lines}"
        );
    }

    #[test]
    fn past_the_budget_refusals_are_counted_and_a_new_second_resets_it() {
        let budget = Budget {
            second: AtomicU64::new(0),
            written: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        };
        let admitted = (0..200).filter(|_| budget.admit(7)).count() as u64;
        assert_eq!(admitted, REFUSALS_PER_SECOND);
        assert_eq!(
            budget.suppressed.load(Ordering::Acquire),
            200 - REFUSALS_PER_SECOND
        );
        assert!(budget.admit(8), "a new second starts a new budget");
        assert_eq!(
            budget.suppressed.load(Ordering::Acquire),
            0,
            "and reports the count"
        );
    }
}
