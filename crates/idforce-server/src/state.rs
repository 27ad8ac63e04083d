//! What every handler shares.

use std::sync::Arc;

use idforce_core::grant::IssuerSettings;
use idforce_core::token::CredentialHasher;
use idforce_store::Backend;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::passwords::Argon2Verifier;

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
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
