//! The status page (`/`) and its JSON (`/-/status`): the checks the exporter can judge
//! itself, from the exposition its last scrape served (collectors, probes, backups,
//! updates) and the jobs it reports. Nothing is read or run for the page when a scrape
//! was made within the last minute; else the page makes one.
//!
//! Plain HTML with its style inline: no script, no external asset, every value escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use crate::check::scraped::{self, JobRow, Limits};
use crate::check::{age_words, Check, Report, Status};
use crate::scrape::Engine;

/// A page shows the last scrape when it is younger than this (Prometheus scrapes every
/// 15 s); else, on a host nobody scrapes, it makes one.
const MAX_SNAPSHOT_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// What the page needs from the configuration.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub limits: Limits,
    /// The runbooks' page the alerts link to; each check links to its section.
    pub runbook_url: String,
}

/// The checks and jobs as the last scrape saw them, and when that was.
pub struct Snapshot {
    pub report: Report,
    pub jobs: Vec<JobRow>,
    pub at: Option<SystemTime>,
}

pub async fn snapshot(engine: &Engine, settings: &StatusSettings) -> Snapshot {
    let fresh = |l: &crate::scrape::LastScrape| {
        SystemTime::now()
            .duration_since(l.at)
            .is_ok_and(|age| age < MAX_SNAPSHOT_AGE)
    };
    let last = match engine.last_scrape() {
        Some(l) if fresh(&l) => Some(l),
        _ => {
            engine.scrape(crate::exposition::Format::Text, None).await;
            engine.last_scrape()
        }
    };
    let samples: Vec<scraped::Sample> = last
        .as_ref()
        .map(|l| {
            l.parts
                .iter()
                .flat_map(|p| scraped::samples(p, scraped::wanted))
                .collect()
        })
        .unwrap_or_default();
    let causes: BTreeMap<String, String> = engine.failure_causes();
    let now = last
        .as_ref()
        .and_then(|l| l.at.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or_else(crate::check::now, |d| d.as_secs_f64());
    Snapshot {
        report: Report {
            checks: scraped::checks(&samples, &causes, &settings.limits, now),
        },
        jobs: scraped::jobs(&samples),
        at: last.map(|l| l.at),
    }
}

/// The runbook section that tells what to do when `check` fails.
fn runbook(check: &str) -> &'static str {
    match check {
        "exporter" => "shoehubcollectorfailing",
        "probes" => "shopdown",
        "backups" => "backuptooold",
        "updates" => "nosuccessfulupdate",
        _ => "alerts-and-runbooks",
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn class(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Failed => "failed",
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}\
.ok{background:#1a7f37;color:#fff}.warning{background:#bf8700;color:#fff}.failed{background:#cf222e;color:#fff}\
td.ok,td.warning,td.failed{font-weight:bold;width:6em}.hint{color:#555;font-size:.9em}\
h1 span{font-size:.6em;padding:.2em .5em;border-radius:.3em;vertical-align:middle}";

/// The page: a verdict, a row per check, a row per job, links.
pub fn html(snap: &Snapshot, settings: &StatusSettings, telemetry_path: &str) -> String {
    let now = crate::check::now();
    let worst = snap.report.worst();
    let mut o = String::with_capacity(4096);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>shoehub-exporter: {verdict}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>shoehub-exporter {version} <span id=\"verdict\" class=\"{cls}\">{verdict}</span></h1>\n",
        verdict = class(worst),
        cls = class(worst),
        version = escape(crate::VERSION),
    );
    let seen = match snap
        .at
        .and_then(|t| SystemTime::now().duration_since(t).ok())
    {
        Some(d) => format!("as of the last scrape, {} ago", age_words(d.as_secs_f64())),
        None => "no scrape has been made yet".to_owned(),
    };
    let _ = writeln!(o, "<p id=\"seen\">{}</p>", escape(&seen));
    o.push_str("<h2>Checks</h2>\n<table id=\"checks\"><tr><th>Status</th><th>Check</th><th>Detail</th></tr>\n");
    for c in &snap.report.checks {
        row(&mut o, c, settings);
    }
    o.push_str("</table>\n");
    if !snap.jobs.is_empty() {
        o.push_str("<h2>Jobs</h2>\n<table id=\"jobs\"><tr><th>Status</th><th>Job</th><th>Last run</th><th>Exit code</th></tr>\n");
        for j in &snap.jobs {
            let (status, word) = if j.running {
                (Status::Ok, "running")
            } else if j.completed <= 0.0 {
                (Status::Warning, "never ran")
            } else if j.exit_code != 0.0 {
                (Status::Failed, "failed")
            } else {
                (Status::Ok, "ok")
            };
            let last = if j.completed > 0.0 {
                format!("{} ago", age_words(now - j.completed))
            } else {
                "never".to_owned()
            };
            let _ = writeln!(
                o,
                "<tr class=\"job\"><td class=\"{}\">{}</td><td class=\"name\">{}</td><td>{}</td><td>{}</td></tr>",
                class(status),
                word,
                escape(&j.name),
                escape(&last),
                j.exit_code
            );
        }
        o.push_str("</table>\n");
    }
    let _ = write!(
        o,
        "<h2>Links</h2>\n<ul><li><a href=\"{metrics}\">Metrics</a></li>\
         <li><a href=\"/-/status\">These checks as JSON</a></li>\
         <li><a href=\"{readme}#alerts-and-runbooks\">Alerts and runbooks</a></li>\
         <li><a href=\"/-/healthy\">Health</a></li></ul>\n\
         <p>More checks (Prometheus, Grafana, the backup's files): <code>shoehub-exporter check</code>.</p>\n\
         </body></html>\n",
        metrics = escape(telemetry_path),
        readme = escape(&settings.runbook_url),
    );
    o
}

fn row(o: &mut String, c: &Check, settings: &StatusSettings) {
    let _ = write!(
        o,
        "<tr class=\"check\" id=\"check-{name}\"><td class=\"{cls}\">{status}</td>\
         <td class=\"name\"><a href=\"{readme}#{anchor}\">{name}</a></td><td><div class=\"detail\">{detail}</div>",
        name = escape(&c.name),
        cls = class(c.status),
        status = c.status.as_str(),
        readme = escape(&settings.runbook_url),
        anchor = runbook(&c.name),
        detail = escape(&c.detail),
    );
    if !c.hint.is_empty() {
        let _ = write!(o, "<div class=\"hint\">{}</div>", escape(&c.hint));
    }
    o.push_str("</td></tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let snap = Snapshot {
            report: Report {
                checks: vec![Check::failed("backups", "<b>x</b> & \"y\"", "run 'it'")],
            },
            jobs: vec![JobRow {
                name: "<script>alert(1)</script>".to_owned(),
                completed: 1.0,
                success: 0.0,
                exit_code: 2.0,
                running: false,
            }],
            at: None,
        };
        let settings = StatusSettings {
            limits: Limits::from_config(&crate::config::Config::default()),
            runbook_url: "https://x/?a=1&b=\"2\"".to_owned(),
        };
        let page = html(&snap, &settings, "/metrics\"<");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;"));
        assert!(page.contains("run &#39;it&#39;"));
        assert!(page.contains("href=\"https://x/?a=1&amp;b=&quot;2&quot;#backuptooold\""));
        assert!(page.contains("href=\"/metrics&quot;&lt;\""));
        assert!(page.contains("<span id=\"verdict\" class=\"failed\">failed</span>"));
    }
}
