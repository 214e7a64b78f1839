//! `backup run|verify|prune|list`: the nightly backup.

use std::path::Path;

use serde::Serialize;

use super::{init_logging, load_config, out, Failure, Outcome};
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
    let fail = |e| Failure::new(1, e);
    match cmd {
        BackupCommand::Run => b.run().map(drop).map_err(fail)?,
        BackupCommand::Verify => out::println(b.verify().map_err(fail)?)?,
        BackupCommand::Restore(a) => {
            let done = b
                .restore(&restore_request(a), &mut out::writer())
                .map_err(fail)?;
            out::println(done)?;
        }
        BackupCommand::Prune => out::println(format_args!(
            "{} backup(s) or leftover(s) removed",
            b.prune().map_err(fail)?
        ))?,
        BackupCommand::List(a) => print_list(&b.list().map_err(fail)?, a.format)?,
    }
    Ok(0)
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

fn print_list(entries: &[Entry], format: ListFormat) -> Result<(), Failure> {
    let rows: Vec<Row<'_>> = entries.iter().map(Row::of).collect();
    match format {
        ListFormat::Json => {
            out::println(serde_json::to_string(&rows).map_err(|e| Failure::new(1, e))?)
        }
        ListFormat::Text => {
            let mut text = format!("{:<18} {:>14} {:<9} state\n", "backup", "bytes", "verified");
            for r in rows {
                let verified = match r.verified {
                    Some(true) => "yes",
                    Some(false) => "FAILED",
                    None => "-",
                };
                text += &format!(
                    "{:<18} {:>14} {:<9} {}\n",
                    r.name, r.size, verified, r.state
                );
            }
            out::print(text)
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
