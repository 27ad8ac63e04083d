//! Prometheus metrics: requests by endpoint, grant and outcome, and latency histograms.

use std::borrow::Cow;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub grant: &'static str,
    pub outcome: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    // Registry encoding needs exclusive access to nothing but is not Sync-friendly to share
    // mutable; keep the encoder path serialised.
    encode_lock: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("idforce");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by endpoint, grant type and outcome (ok or the OAuth error code)",
            requests.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "request_duration_seconds",
            "Time to answer, by endpoint",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            encode_lock: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Exports the password pool's counters too.
    pub fn with_password_checks(counters: &crate::passwords::CheckCounters) -> Metrics {
        let mut m = Metrics::default();
        m.registry.register(
            "password_checks",
            "Passwords checked (Argon2id verifications made)",
            counters.checked.clone(),
        );
        m.registry.register(
            "password_checks_abandoned",
            "Password checks skipped because their client had gone",
            counters.abandoned.clone(),
        );
        m.registry.register(
            "password_checks_overloaded",
            "Logins answered at once because the password-check queue was full",
            counters.overloaded.clone(),
        );
        m
    }

    pub fn observe(
        &self,
        endpoint: &'static str,
        grant: &'static str,
        outcome: Cow<'static, str>,
        secs: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                grant,
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(secs);
    }

    pub fn render(&self) -> String {
        let _guard = self.encode_lock.lock();
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
