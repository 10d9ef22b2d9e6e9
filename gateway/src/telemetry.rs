//! Logging: tracing to stderr, as text or JSON lines, filtered by `RUST_LOG` or the configured
//! level. Every line written during a request carries its request id (the request span).
//! Nothing here ever receives personal data: handlers log ids only.

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (in tests) keeps the first subscriber; that is fine.
    let _ = result;
}
