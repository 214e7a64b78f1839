//! shoehub-exporter: a lightweight Prometheus exporter for the Shoe Store Hub host.
//!
//! The binary (`src/main.rs`) only dispatches; everything it runs lives here so the
//! integration tests and the benchmarks drive the same code the operators run.

pub mod bundle;
pub mod check;
pub mod cli;
pub mod collectors;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod dbus;
pub mod exposition;
pub mod jobs;
pub mod logging;
pub mod procfile;
pub mod regular;
pub mod rtnetlink;
pub mod scrape;
pub mod server;
pub mod state;
pub mod sys;
pub mod text;
pub mod value;
pub mod writes;

/// An error and its causes, outermost first, as `outer: cause: root cause`. Each error
/// says only its own part, so this is the one place a chain is put together.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The crate version, as `shoehub_exporter_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision the binary was built from (`unknown` outside a git checkout).
pub const REVISION: &str = env!("SHOEHUB_REVISION");
