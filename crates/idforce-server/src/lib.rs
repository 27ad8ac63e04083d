//! idforce's HTTP server: configuration, seeding, routes and the serve loop.

pub mod app;
pub mod clock;
pub mod config;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod seed;
pub mod state;

pub use app::{Application, ServeOptions};

/// Installs the tracing subscriber: human-readable or JSON lines on stderr, filtered by
/// `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
