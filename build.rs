//! Records the git revision for `shoehub_exporter_build_info{revision}`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SHOEHUB_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("SHOEHUB_REVISION").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    println!(
        "cargo:rustc-env=SHOEHUB_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
}
