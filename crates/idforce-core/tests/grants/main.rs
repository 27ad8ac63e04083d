//! The token endpoint's grants without HTTP: each grant's rules and every error of spec §6.1
//! it can answer, on the in-memory store with a fixed clock. The HTTP suite (crates/idforce)
//! proves the wiring; these prove the rules.
#![allow(clippy::unwrap_used, clippy::panic)]

mod world;

mod app_settings;
mod asset_token;
mod authorization_code;
mod client_assertion;
mod client_credentials;
mod device;
mod exchange;
mod frozen_blocked;
mod jwt_bearer;
mod login_history;
mod login_restrictions;
mod org_settings;
mod password;
mod refresh_token;
mod saml_bearer;
mod token_exchange;
