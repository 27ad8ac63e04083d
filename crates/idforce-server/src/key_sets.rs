//! Clients' key sets published at a `jwks_uri`, fetched over HTTP and kept for as long as the
//! publisher's `Cache-Control` says (within bounds). Each fetch is bounded: https (or plain
//! http to this machine, for development), no redirects, a timeout, a size limit. A set that
//! lacks an assertion's key is fetched again at most once a minute per URL, so a client
//! naming unknown keys cannot make this server fetch at every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use idforce_core::jwks::JwkSet;
use idforce_core::ports::KeySets;
use idforce_core::registration::is_fetchable_jwks_uri;

/// The largest key set read; a set of 32 RSA keys is well below it.
const MAX_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a set is kept without a `max-age`, and the bounds put on one.
const DEFAULT_KEEP: Duration = Duration::from_secs(300);
const MIN_KEEP: Duration = Duration::from_secs(60);
const MAX_KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a failed fetch is remembered (its error answered without fetching).
const FAILURE_KEEP: Duration = Duration::from_secs(10);
/// The least time between two fetches of one URL asked for by unknown keys.
const REFETCH_EVERY: Duration = Duration::from_secs(60);
const MAX_URLS: usize = 1024;

struct Kept {
    set: Result<Arc<JwkSet>, String>,
    fetched: Instant,
    until: Instant,
    /// When an unknown key last made it fetch again.
    refetched: Option<Instant>,
}

pub struct RemoteKeySets {
    http: reqwest::Client,
    kept: Mutex<HashMap<String, Kept>>,
    /// Whether plain http to this machine is fetched: on a development server only.
    loopback_http: bool,
}

/// Whether a server at `public_url` is a development one: plain http on this machine. Only
/// such a server fetches key sets over plain http (from this machine too).
pub fn is_development(public_url: &str) -> bool {
    idforce_core::registration::is_loopback_http(public_url)
}

impl RemoteKeySets {
    pub fn new(loopback_http: bool) -> RemoteKeySets {
        // reqwest is built without a default TLS provider: aws-lc, as everywhere in idforce.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        RemoteKeySets {
            http,
            kept: Mutex::new(HashMap::new()),
            loopback_http,
        }
    }

    /// Whether this is a development server (see `is_development`).
    pub fn development(&self) -> bool {
        self.loopback_http
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fetch(&self, uri: &str) -> (Result<Arc<JwkSet>, String>, Duration) {
        match self.download(uri).await {
            Ok((body, keep)) => match std::str::from_utf8(&body)
                .map_err(|_| "not text".to_owned())
                .and_then(JwkSet::from_json)
            {
                Ok(set) => (Ok(Arc::new(set)), keep),
                Err(e) => (Err(format!("{uri}: {e}")), FAILURE_KEEP),
            },
            Err(e) => (Err(format!("{uri}: {e}")), FAILURE_KEEP),
        }
    }

    async fn download(&self, uri: &str) -> Result<(Vec<u8>, Duration), String> {
        if !is_fetchable_jwks_uri(uri) {
            return Err("not https (nor http to this machine)".into());
        }
        if !uri.starts_with("https://") && !self.loopback_http {
            return Err("plain http, which only a development server fetches".into());
        }
        let mut response = self
            .http
            .get(uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("cannot fetch: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let keep = keep_for(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("cannot read: {e}"))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, keep))
    }
}

/// How long to keep a set, from its `Cache-Control`: its `max-age` within bounds; the least
/// for `no-cache` or `no-store` (refetching at every assertion is not on offer).
fn keep_for(cache_control: Option<&str>) -> Duration {
    let Some(cc) = cache_control else {
        return DEFAULT_KEEP;
    };
    let directives = cc.split(',').map(|d| d.trim().to_ascii_lowercase());
    let mut keep = DEFAULT_KEEP;
    for d in directives {
        if d == "no-cache" || d == "no-store" {
            return MIN_KEEP;
        }
        if let Some(secs) = d
            .strip_prefix("max-age=")
            .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
        {
            keep = Duration::from_secs(secs);
        }
    }
    keep.clamp(MIN_KEEP, MAX_KEEP)
}

#[async_trait]
impl KeySets for RemoteKeySets {
    async fn key_set(&self, uri: &str, refetch: bool) -> Result<Arc<JwkSet>, String> {
        let now = Instant::now();
        let mut refetched = None;
        if let Some(k) = self.lock().get(uri) {
            let fresh = now < k.until;
            let refetched_lately = k
                .refetched
                .is_some_and(|at| now.duration_since(at) < REFETCH_EVERY);
            if fresh && (!refetch || refetched_lately) {
                return k.set.clone();
            }
            refetched = if refetch { Some(now) } else { k.refetched };
        }
        let (set, keep) = self.fetch(uri).await;
        let mut kept = self.lock();
        if kept.len() >= MAX_URLS && !kept.contains_key(uri) {
            let oldest = kept
                .iter()
                .min_by_key(|(_, k)| k.fetched)
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                kept.remove(&u);
            }
        }
        let fetched = Instant::now();
        kept.insert(
            uri.to_owned(),
            Kept {
                set: set.clone(),
                fetched,
                until: fetched + keep,
                refetched,
            },
        );
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_bounds_how_long_a_set_is_kept() {
        assert_eq!(keep_for(None), DEFAULT_KEEP);
        assert_eq!(
            keep_for(Some("public, max-age=3600")),
            Duration::from_secs(3600)
        );
        assert_eq!(keep_for(Some("max-age=1")), MIN_KEEP);
        assert_eq!(keep_for(Some("max-age=99999999")), MAX_KEEP);
        assert_eq!(keep_for(Some("no-store")), MIN_KEEP);
        assert_eq!(keep_for(Some("max-age=nonsense")), DEFAULT_KEEP);
    }
}
