//! idforce's HTTP server: configuration, seeding, routes and the serve loop.

pub mod app;
pub mod app_form;
pub mod clock;
pub mod config;
pub mod hosts;
pub mod http;
pub mod key_sets;
pub mod keys;
pub mod listener;
pub mod login_history;
pub mod metrics;
pub mod operations;
pub mod passwords;
pub mod profiles;
pub mod saml;
pub mod secrets;
pub mod seed;
pub mod state;
pub mod throttle;
pub mod user_form;

pub use app::{Application, Explain, ServeOptions};

/// Installs the tracing subscriber: human-readable or JSON lines on stderr, filtered by
/// `RUST_LOG` (default `info`). Colours only on a terminal (and not under `NO_COLOR`): a pipe
/// or a file gets plain text that a log collector can search, and no time is spent styling
/// the field names of every request's span (3% of a token grant's instructions).
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
