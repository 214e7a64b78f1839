//! The exporter's status page as an operator sees it: Debian's Chromium, headless, loads
//! it through the exporter's basic auth; the tests assert on the DOM Chromium rendered
//! and keep a screenshot of a healthy host and of one with a stale backup
//! (`target/status-page-healthy.png`, `target/status-page-stale.png`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::apache::Apache;
use common::mariadb::MariaDb;
use common::{require_tool, Exporter, BIN};

const BACKUP_PASSWORD: &str = "Bk-s3cret pass";
const USER: &str = "operator";
const PASSWORD: &str = "st4tus-page pass";
/// A probe name that is markup: the page must show it as text and run nothing.
const MARKUP: &str = "<script>document.title='pwned'</script><b>shop</b>";

/// Chromium, headless, with a fresh profile and no background traffic, on `url`;
/// `what` is `--dump-dom` or `--screenshot=FILE`.
fn chromium(url: &str, what: &str) -> Output {
    let bin = require_tool("chromium", "chromium");
    let profile = tempfile::tempdir().unwrap();
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,760",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(what)
        .arg(url)
        .output()
        .unwrap()
}

fn dom(url: &str) -> String {
    let out = chromium(url, "--dump-dom");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn screenshot(url: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("status-page-{name}.png"));
    let _ = std::fs::remove_file(&path);
    let out = chromium(url, &format!("--screenshot={}", path.display()));
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    path
}

/// The status cell of a check's row, as Chromium serialised it.
fn row_status(dom: &str, check: &str) -> String {
    let at = dom
        .find(&format!("id=\"check-{check}\""))
        .unwrap_or_else(|| panic!("no row for {check}: {dom}"));
    let cell = &dom[at..];
    let cls = &cell[cell.find("<td class=\"").unwrap() + 11..];
    cls[..cls.find('"').unwrap()].to_owned()
}

#[test]
fn the_status_page_renders_in_chromium_healthy_and_with_a_stale_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p);
    let db = MariaDb::start();
    db.sql(&common::documented_sql(
        "-- The backup account",
        BACKUP_PASSWORD,
    ));
    let pw = path("backup.password");
    std::fs::write(&pw, format!("{BACKUP_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(path("data")).unwrap();
    std::fs::write(path("data/a.txt"), "a").unwrap();
    let shop = Apache::start(&path("apache"), &path("access.log"));
    let config = format!(
        "jobs:\n  state_dir: {state}\nbackup:\n  destination: {dest}\n  paths: [{data}]\n  mysql:\n    url: mysql://backup@127.0.0.1:{port}/shoe_store_hub\n    password_file: {pw}\nprobes:\n  - name: \"{name}\"\n    url: http://127.0.0.1:{shop}/\nupdates:\n  apt: false\nbackuppc:\n  enabled: false\n",
        state = path("state").display(),
        dest = path("dest").display(),
        data = path("data").display(),
        port = db.port,
        pw = pw.display(),
        name = MARKUP.replace('"', "\\\""),
        shop = shop.port,
    );
    std::fs::write(path("config.yml"), &config).unwrap();
    let run = |args: &[&str], faketime: Option<&str>| {
        let out = common::run_at(&path("config.yml"), args, faketime);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Job names cannot carry markup: `job run` refuses them, so no state file has one.
    let refused = Command::new(BIN)
        .args(["job", "run", "<script>", "--config"])
        .arg(path("config.yml"))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid job name"));
    // A backup and its verify made three days ago, and this week's update.
    run(&["backup", "run"], Some("-3d"));
    run(&["backup", "verify"], Some("-3d"));
    run(&["job", "run", "update", "--", "true"], None);

    let hash = bcrypt::hash(PASSWORD, 6).unwrap();
    std::fs::write(
        path("web.yml"),
        format!("basic_auth_users:\n  {USER}: {hash}\n"),
    )
    .unwrap();
    let web = path("web.yml");
    let e = Exporter::start_with_args(&config, &["--web.config.file", web.to_str().unwrap()]);
    assert_eq!(e.get("/", &[]).status, 401, "the page is behind basic auth");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{PASSWORD}")
        )
    );
    let url = format!(
        "http://{USER}:{}@127.0.0.1:{}/",
        PASSWORD.replace(' ', "%20"),
        e.port
    );

    let stale = dom(&url);
    assert!(
        stale.contains("<title>shoehub-exporter: failed</title>"),
        "{stale}"
    );
    assert_eq!(row_status(&stale, "backups"), "failed");
    assert!(
        stale.contains("the newest complete backup is 3 d old"),
        "{stale}"
    );
    for ok in ["exporter", "probes", "updates"] {
        assert_eq!(row_status(&stale, ok), "ok", "{ok}: {stale}");
    }
    // The probe's name is text: no script element, no title change, the markup shown.
    assert!(!stale.contains("<script"), "{stale}");
    assert!(!stale.contains("<b>shop"), "{stale}");
    assert!(
        stale.contains("probe &lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;shop&lt;/b&gt; answers 200"),
        "{stale}"
    );
    assert!(stale.contains("<td class=\"name\">update</td>"), "{stale}");
    screenshot(&url, "stale");

    // Tonight's backup, then Prometheus' next scrape: every row green.
    run(&["backup", "run"], None);
    assert_eq!(e.get("/metrics", &[("Authorization", &basic)]).status, 200);
    let healthy = dom(&url);
    assert!(
        healthy.contains("<title>shoehub-exporter: ok</title>"),
        "{healthy}"
    );
    for ok in ["exporter", "probes", "backups", "updates"] {
        assert_eq!(row_status(&healthy, ok), "ok", "{ok}: {healthy}");
    }
    // Ages in words, from the scrape's time (the numbers vary with the machine's pace).
    assert!(healthy.contains(">last backup "), "{healthy}");
    assert!(healthy.contains("; verified 3 d ago<"), "{healthy}");
    assert!(healthy.contains("verified 3 d ago"), "{healthy}");
    assert!(healthy.contains("href=\"/metrics\""), "{healthy}");
    assert!(healthy.contains("docs/alerts.md#backuptooold"), "{healthy}");
    screenshot(&url, "healthy");
}
