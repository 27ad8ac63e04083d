//! What every handler shares.

use std::sync::Arc;

use idforce_core::grant::IssuerSettings;
use idforce_core::token::CredentialHasher;
use idforce_store::Backend;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::passwords::Argon2Verifier;
use crate::throttle::{Rate, Throttle};

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Backend>,
    pub hasher: CredentialHasher,
    pub passwords: Argon2Verifier,
    pub settings: IssuerSettings,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub keys: crate::keys::Keys,
    /// The store's URL without its password: which store a failure was.
    pub database: String,
    pub throttles: Throttles,
    /// Seals and opens what the store keeps sealed (see `secrets.rs`).
    pub secrets: crate::secrets::SystemSecret,
    /// `serve --explain`: refusals carry idforce's reason on the wire (`http/explain.rs`).
    pub explain: bool,
    /// Whose `X-Forwarded-For` names the client (`http::request::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The login host, My Domains and sites: which one each request came through.
    pub hosts: crate::hosts::Hosts,
    /// Apps' key sets at their `jwks_uri`, fetched and kept.
    pub key_sets: crate::key_sets::RemoteKeySets,
    /// Verifies SAML bearer assertions (xmlsec with the `saml-bearer` feature, else none).
    pub saml: Box<dyn idforce_core::ports::SamlVerifier>,
}

/// What each node throttles in memory (see `throttle.rs`).
pub struct Throttles {
    /// Device authorization requests, per client id: generous, because a public client
    /// (PlatformCLI, the `sf` CLI's) is shared by everyone who uses it.
    pub device_per_client: Throttle,
    /// The same, per source address.
    pub device_per_address: Throttle,
    /// User codes typed on the verification page, per user.
    pub user_codes_per_user: Throttle,
    /// Login History rows of refused logins, per user: a flood of refusals (a locked-out user
    /// costs no password check) must not push every org's history out past the row cap.
    pub refused_logins_per_user: Throttle,
}

impl Default for Throttles {
    fn default() -> Self {
        Throttles {
            device_per_client: Throttle::new(Rate {
                burst: 100,
                every_ms: 100,
            }),
            device_per_address: Throttle::new(Rate {
                burst: 10,
                every_ms: 6_000,
            }),
            user_codes_per_user: Throttle::new(Rate {
                burst: 10,
                every_ms: 6_000,
            }),
            refused_logins_per_user: Throttle::new(Rate {
                burst: 20,
                every_ms: 3_000,
            }),
        }
    }
}

impl AppState {
    /// What the protocol layer needs for one request: the store, the keys that sign, and the
    /// clock read once.
    /// `peer` is the TCP peer: the client's address is read from it and `X-Forwarded-For`
    /// (`http::request::client_ip`).
    /// `entry` is where the request came through (`http::Through`); none: the login host.
    pub fn token_context<'a>(
        &'a self,
        headers: &'a axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        ring: &'a crate::keys::KeyRing,
        entry: Option<&'a idforce_core::hosts::Entry>,
    ) -> idforce_core::grant::TokenContext<'a> {
        idforce_core::grant::TokenContext {
            store: self.store.as_ref(),
            hasher: &self.hasher,
            passwords: &self.passwords,
            settings: &self.settings,
            signer: ring,
            key_sets: &self.key_sets,
            saml: self.saml.as_ref(),
            secrets: &self.secrets,
            now: self.clock.now(),
            host: crate::http::request::host(headers),
            entry: entry.unwrap_or(self.hosts.login()),
            caller: idforce_core::login_history::Caller {
                ip: crate::http::request::client_ip(peer, headers, &self.trusted_proxies),
                user_agent: headers
                    .get(axum::http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
            },
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
