//! Command-line dispatch: parse, run, print the error chain once, return an exit code.

use std::error::Error;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use shoehub_exporter::cli::{
    BackupCommand, Cli, Command, GenerateCommand, JobCommand, JobRunArgs, ListFormat, ServeArgs,
    UpdateCommand,
};
use shoehub_exporter::collectors;
use shoehub_exporter::config::webfile::WebFile;
use shoehub_exporter::config::Config;

/// Exit code for a configuration that cannot be used (as sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig(args)) => match Config::load(Some(&args.config))
            .map_err(|e| Box::new(e) as Box<dyn Error>)
            .and_then(|c| collectors::build(&c, false).map_err(|e| Box::new(e) as Box<dyn Error>))
            .and_then(|_| load_web_file(args.web_config_file.as_deref()))
            .and_then(|w| {
                shoehub_exporter::server::access(&w).map_err(|e| Box::new(e) as Box<dyn Error>)
            }) {
            Ok(_) => {
                println!("{}: valid", args.config.display());
                if let Some(w) = &args.web_config_file {
                    println!("{}: valid", w.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.as_ref(), EXIT_CONFIG),
        },
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Job(JobCommand::Run(args))) => job_run(args),
        Some(Command::Update(cmd)) => update(cmd),
        Some(Command::Backup(cmd)) => backup(cmd),
        Some(Command::Generate(cmd)) => generate(cmd),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    limit_malloc_arenas();
    limit_mysql_buffers();
    tracing_subscriber::fmt()
        .with_max_level(args.log_level.as_tracing())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    if let Some(addr) = args.listen_address {
        config.web.listen_address = addr;
    }
    if let Some(path) = args.telemetry_path {
        config.web.telemetry_path = path;
    }
    let web = match load_web_file(args.web_config_file.as_deref()) {
        Ok(w) => w,
        Err(e) => return fail(e.as_ref(), EXIT_CONFIG),
    };
    let collectors = match collectors::build(&config, true) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    match shoehub_exporter::server::run(&config, &web, collectors) {
        Err(e @ shoehub_exporter::server::RunError::WebConfig(_)) => fail(&e, EXIT_CONFIG),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, 1),
    }
}

/// The web config file, or none (plain HTTP, no authentication).
fn load_web_file(path: Option<&std::path::Path>) -> Result<WebFile, Box<dyn Error>> {
    match path {
        None => Ok(WebFile::default()),
        Some(p) => WebFile::load(p).map_err(|e| Box::new(e) as Box<dyn Error>),
    }
}

/// Commands other than `serve` log warnings only, to stderr.
fn init_command_logging() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn job_run(args: JobRunArgs) -> ExitCode {
    init_command_logging();
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let run = shoehub_exporter::jobs::runner::JobRun {
        state_dir: &config.jobs.state_dir,
        job: &args.name,
        timeout: args.timeout.map(|t| t.get()),
        kill_grace: config.jobs.kill_grace.get(),
        command: &args.command,
    };
    match shoehub_exporter::jobs::runner::run(&run) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(1);
            fail(&e, code)
        }
    }
}

fn update(cmd: UpdateCommand) -> ExitCode {
    use shoehub_exporter::jobs::update::Update;
    init_command_logging();
    let config_path = match &cmd {
        UpdateCommand::Plan(a) | UpdateCommand::Status(a) => a.config.clone(),
        UpdateCommand::Approve(a) => a.common.config.clone(),
        UpdateCommand::Apply(a) => a.common.config.clone(),
    };
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let u = Update {
        state_dir: &config.jobs.state_dir,
        playbook: config.updates.playbook.as_deref(),
        max_age: config.updates.max_plan_age.get(),
        kill_grace: config.jobs.kill_grace.get(),
    };
    let result = match cmd {
        UpdateCommand::Plan(_) => u.plan().map(|_| 0),
        UpdateCommand::Approve(a) => u.approve(a.plan.as_deref(), a.by.as_deref()).map(|_| 0),
        UpdateCommand::Apply(a) => u.apply(a.timeout.map(|t| t.get())),
        UpdateCommand::Status(_) => u.status().map(|_| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => fail(&e, 1),
    }
}

fn backup(cmd: BackupCommand) -> ExitCode {
    use shoehub_exporter::jobs::backup::Backup;
    use shoehub_exporter::state::backup::State;
    // Progress and the outcome are told on stderr, so log at info.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let path = match &cmd {
        BackupCommand::Run(a) | BackupCommand::Verify(a) | BackupCommand::Prune(a) => {
            a.config.clone()
        }
        BackupCommand::List(a) => a.common.config.clone(),
    };
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let b = Backup {
        cfg: &config.backup,
        mysql: config.mysql.as_ref(),
        state_dir: &config.jobs.state_dir,
    };
    let result = match cmd {
        BackupCommand::Run(_) => b.run().map(drop),
        BackupCommand::Verify(_) => b.verify().map(|msg| println!("{msg}")),
        BackupCommand::Prune(_) => b
            .prune()
            .map(|n| println!("{n} backup(s) or leftover(s) removed")),
        BackupCommand::List(a) => b.list().map(|entries| {
            let rows: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let state = match &e.state {
                        State::Complete => "complete".to_owned(),
                        State::Partial => "partial".to_owned(),
                        State::Corrupt(why) => format!("corrupt: {why}"),
                    };
                    serde_json::json!({
                        "name": e.name,
                        "completed": e.manifest.as_ref().map(|m| m.completed),
                        "size": e.size,
                        "state": state,
                        "verified": e.verified.as_ref().map(|v| v.ok),
                    })
                })
                .collect();
            match a.format {
                ListFormat::Json => println!("{}", serde_json::Value::Array(rows)),
                ListFormat::Text => {
                    println!("{:<18} {:>14} {:<9} state", "backup", "bytes", "verified");
                    for r in rows {
                        let verified = match r["verified"].as_bool() {
                            Some(true) => "yes",
                            Some(false) => "FAILED",
                            None => "-",
                        };
                        println!(
                            "{:<18} {:>14} {:<9} {}",
                            r["name"].as_str().unwrap_or(""),
                            r["size"],
                            verified,
                            r["state"].as_str().unwrap_or("")
                        );
                    }
                }
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, 1),
    }
}

fn generate(cmd: GenerateCommand) -> ExitCode {
    use shoehub_exporter::bundle;
    let path = match &cmd {
        GenerateCommand::Dashboard(a) | GenerateCommand::Alerts(a) => a.config.clone(),
        GenerateCommand::Bundle(a) => a.common.config.clone(),
    };
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let result = match cmd {
        GenerateCommand::Dashboard(_) => bundle::dashboard_json(&config).map(|t| print!("{t}")),
        GenerateCommand::Alerts(_) => {
            for (_, text) in bundle::alert_files(&config) {
                println!("---\n{text}");
            }
            Ok(())
        }
        GenerateCommand::Bundle(a) => bundle::write(&config, &a.out).map(|files| {
            for f in files {
                println!("{}", a.out.join(f).display());
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ bundle::BundleError::Dashboard(_)) => fail(&e, EXIT_CONFIG),
        Err(e) => fail(&e, 1),
    }
}

/// glibc gives every thread that allocates its own malloc arena; the exporter's few
/// allocations do not need them, and each costs resident memory.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// mysql_async keeps up to 128 packet buffers for reuse by default, sized for
/// applications with many connections; the collector reads one result at a time.
/// An operator's own setting wins.
fn limit_mysql_buffers() {
    const VAR: &str = "MYSQL_ASYNC_BUFFER_POOL_CAP";
    if std::env::var_os(VAR).is_none() {
        // Called before any thread starts, so nothing reads the environment meanwhile.
        std::env::set_var(VAR, "8");
    }
}

/// Prints `error: outer: cause: root cause` once, on stderr.
fn fail(e: &dyn Error, code: u8) -> ExitCode {
    let mut msg = format!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    eprintln!("{msg}");
    ExitCode::from(code)
}
