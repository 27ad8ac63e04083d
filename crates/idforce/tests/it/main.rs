//! idforce's integration tests: one binary, a real server per test, real HTTP clients.
#![allow(clippy::unwrap_used, clippy::panic, clippy::type_complexity)]

mod browser;
mod helpers;

mod browser_flows;
mod chromium;
mod client_credentials;
mod client_library;
mod clients;
mod config_cli;
mod connections;
mod device_flow;
mod explain;
mod fuzz;
mod hosts;
mod identity_rest;
mod introspect_revoke;
mod jwt_bearer;
mod login_cli;
mod login_history;
mod multinode;
mod oidc;
mod password;
mod password_attacks;
mod policies;
mod process;
mod refresh_tokens;
mod registration;
mod replay_races;
mod saml_bearer;
mod seeds;
mod sessions;
mod setup;
mod setup_apps;
mod setup_sessions;
mod setup_users;
mod soap_login;
mod token_endpoint;
mod token_exchange;
mod webdriver;
