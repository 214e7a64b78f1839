//! `generate dashboard|alerts|bundle`: the Grafana dashboard, provisioning and alert
//! rules, from the configuration.

use std::path::Path;

use super::{load_config, out, Failure, Outcome};
use crate::bundle::{self, BundleError};
use crate::cli::GenerateCommand;

pub fn run(config: Option<&Path>, cmd: &GenerateCommand) -> Outcome {
    // Manual pages and completions describe the command line, not a configuration.
    match cmd {
        GenerateCommand::Man(a) => return man(&a.out),
        GenerateCommand::Docs(a) => return docs(&a.out),
        GenerateCommand::Completions { shell } => {
            let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli, "shoehub-exporter", &mut script);
            out::print(String::from_utf8_lossy(&script))?;
            return Ok(0);
        }
        _ => {}
    }
    let config = load_config(config)?;
    let fail = |e| match e {
        e @ BundleError::Dashboard(_) => Failure::config(e),
        e => Failure::new(1, e),
    };
    match cmd {
        GenerateCommand::Dashboard => out::print(bundle::dashboard_json(&config).map_err(fail)?)?,
        GenerateCommand::Alerts => out::print(bundle::alert_rules(&config))?,
        GenerateCommand::Bundle(a) => {
            for f in bundle::write(&config, &a.out).map_err(fail)? {
                out::println(a.out.join(f).display())?;
            }
        }
        GenerateCommand::Man(_)
        | GenerateCommand::Docs(_)
        | GenerateCommand::Completions { .. } => {}
    }
    Ok(0)
}

/// `generate docs --out DIR`: the reference generated from the collectors' definitions.
fn docs(out: &Path) -> Outcome {
    let page = bundle::docs::collectors_page().map_err(|e| Failure::new(1, e))?;
    let path = out.join(bundle::docs::COLLECTORS_PAGE);
    std::fs::create_dir_all(out)
        .and_then(|()| crate::writes::replace(&path, page.as_bytes(), crate::writes::PUBLIC))
        .map_err(|e| {
            Failure::new(
                1,
                std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())),
            )
        })?;
    out::println(path.display())?;
    Ok(0)
}

/// `generate man --out DIR`: shoehub-exporter.1 and a page for every subcommand.
fn man(out: &Path) -> Outcome {
    let cli = <crate::cli::Cli as clap::CommandFactory>::command()
        .name("shoehub-exporter")
        .version(crate::VERSION);
    let fail = |e: std::io::Error| {
        Failure::new(
            1,
            std::io::Error::new(
                e.kind(),
                format!("writing manual pages into {}: {e}", out.display()),
            ),
        )
    };
    std::fs::create_dir_all(out).map_err(fail)?;
    clap_mangen::generate_to(cli, out).map_err(fail)?;
    let mut pages: Vec<_> = std::fs::read_dir(out)
        .map_err(fail)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    for p in pages {
        out::println(p.display())?;
    }
    Ok(0)
}
