//! `backup run|verify|prune|list`: the nightly backup.

use std::path::Path;

use serde::Serialize;

use super::{init_logging, load_config, Failure, Outcome};
use crate::cli::{BackupCommand, ListFormat};
use crate::jobs::backup::Backup;
use crate::state::backup::{Entry, State};

pub fn run(config: Option<&Path>, cmd: &BackupCommand) -> Outcome {
    crate::writes::job_umask();
    // Progress and the outcome are told on stderr, so log at info.
    init_logging(tracing::Level::INFO);
    let config = load_config(config)?;
    let b = Backup {
        cfg: &config.backup,
        account: config
            .backup
            .mysql
            .clone()
            .or_else(|| config.mysql.as_ref().map(|m| m.account())),
        state_dir: &config.jobs.state_dir,
        kill_grace: config.jobs.kill_grace.get(),
    };
    let result = match cmd {
        BackupCommand::Run => b.run().map(drop),
        BackupCommand::Verify => b.verify().map(|msg| println!("{msg}")),
        BackupCommand::Restore(a) => b.restore(&restore_request(a)).map(|msg| println!("{msg}")),
        BackupCommand::Prune => b
            .prune()
            .map(|n| println!("{n} backup(s) or leftover(s) removed")),
        BackupCommand::List(a) => b.list().map(|entries| print_list(&entries, a.format)),
    };
    result.map(|()| 0).map_err(|e| Failure::new(1, e))
}

/// One line of `backup list`, as its JSON form has it.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    completed: Option<f64>,
    size: u64,
    state: String,
    verified: Option<bool>,
}

impl<'a> Row<'a> {
    fn of(e: &'a Entry) -> Row<'a> {
        Row {
            name: &e.name,
            completed: e.manifest.as_ref().map(|m| m.completed),
            size: e.size,
            state: match &e.state {
                State::Complete => "complete".to_owned(),
                State::Partial => "partial".to_owned(),
                State::Corrupt(why) => format!("corrupt: {why}"),
            },
            verified: e.verified.as_ref().map(|v| v.ok),
        }
    }
}

fn print_list(entries: &[Entry], format: ListFormat) {
    let rows: Vec<Row<'_>> = entries.iter().map(Row::of).collect();
    match format {
        ListFormat::Json => match serde_json::to_string(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("{}error: {e}", crate::logging::error_prefix()),
        },
        ListFormat::Text => {
            println!("{:<18} {:>14} {:<9} state", "backup", "bytes", "verified");
            for r in rows {
                let verified = match r.verified {
                    Some(true) => "yes",
                    Some(false) => "FAILED",
                    None => "-",
                };
                println!("{:<18} {:>14} {:<9} {}", r.name, r.size, verified, r.state);
            }
        }
    }
}

/// The restore the command line asks for, in the job's own terms.
fn restore_request(a: &crate::cli::RestoreArgs) -> crate::jobs::backup::RestoreRequest {
    crate::jobs::backup::RestoreRequest {
        backup: a.backup.clone(),
        databases: a.database.clone(),
        as_name: a.as_name.clone(),
        files_to: a.files_to.clone(),
        users: a.users,
        dry_run: a.dry_run,
        yes: a.yes,
    }
}
