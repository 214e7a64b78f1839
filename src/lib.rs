//! shoehub-exporter: a lightweight Prometheus exporter for the Shoe Store Hub host.
//!
//! The binary (`src/main.rs`) only dispatches; everything it runs lives here so the
//! integration tests and the benchmarks drive the same code the operators run.

pub mod bundle;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod exposition;
pub mod jobs;
pub mod procfile;
pub mod scrape;
pub mod server;
pub mod state;

/// The crate version, as `shoehub_exporter_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision the binary was built from (`unknown` outside a git checkout).
pub const REVISION: &str = env!("SHOEHUB_REVISION");
