//! The weekly update end to end, with the shipped playbook and inventory, real apt and
//! real dpkg: a local apt repository of `shoehub-test-*` packages (built with dpkg-deb,
//! indexed with apt-ftparchive) read through a private apt configuration, so the
//! machine's own sources are neither read nor changed; what the tests install is purged
//! at the end. Plan, review, approval, apply, and every refusal, with the metrics the
//! exporter serves meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::aptrepo::{AptRepo, SECURITY};
use common::{require_tool, Exporter, BIN};

/// dpkg takes one installation at a time: these tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn shipped(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/ansible")
        .join(p)
}

struct Setup {
    dir: tempfile::TempDir,
    repo: AptRepo,
    package: String,
    /// The shipped inventory, its host's validation given the paths of this test: the
    /// host's exporter is [`Setup::exporter`], which probes a page of its own.
    inventory: PathBuf,
    _exporter: Exporter,
}

impl Setup {
    /// Version 1.0 of `package` installed, 1.1 published as a security update, and a
    /// config that uses the shipped playbook and inventory.
    fn new(package: &str, max_age: &str) -> Setup {
        require_tool("ansible-playbook", "ansible-core");
        require_tool("apt-get", "apt");
        let mut repo = AptRepo::new();
        let v10 = repo.build(package, "1.0", None);
        repo.install(&v10);
        let v11 = repo.build(package, "1.1", None);
        repo.publish(&[&v10, &v11], &SECURITY);
        let dir = tempfile::tempdir().unwrap();
        let exporter = Exporter::start("");
        let check = dir.path().join("check.yml");
        std::fs::write(
            &check,
            format!(
                "check:\n  exporter_url: http://127.0.0.1:{port}/metrics\n\
                 probes:\n  - name: shop\n    url: http://127.0.0.1:{port}/\n",
                port = exporter.port
            ),
        )
        .unwrap();
        let inventory = dir.path().join("inventory.ini");
        common::aptrepo::validating_inventory(&inventory, &check);
        let s = Setup {
            dir,
            repo,
            package: package.to_owned(),
            inventory,
            _exporter: exporter,
        };
        s.config(&s.inventory, max_age);
        s
    }

    fn config(&self, inventory: &Path, max_age: &str) {
        std::fs::write(
            self.path("config.yml"),
            format!(
                "jobs:\n  state_dir: {}\nupdates:\n  apt: false\n  playbook: {}\n  inventory: {}\n  max_plan_age: {max_age}\n",
                self.path("state").display(),
                shipped("update.yml").display(),
                inventory.display(),
            ),
        )
        .unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn publish(&self, versions: &[&str]) {
        let debs: Vec<PathBuf> = versions
            .iter()
            .map(|v| self.repo.build(&self.package, v, None))
            .collect();
        let refs: Vec<&Path> = debs.iter().map(PathBuf::as_path).collect();
        self.repo.publish(&refs, &SECURITY);
    }

    fn update_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("update")
            .args(args)
            .arg("--config")
            .arg(self.path("config.yml"))
            .env("APT_CONFIG", self.repo.config())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOME", self.path("ansible-home"))
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .env_remove("SUDO_USER");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn update(&self, args: &[&str]) -> Output {
        self.update_env(args, &[])
    }

    fn plan(&self) -> String {
        let out = self.update(&["plan"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("plan "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned()
    }

    /// The installed version of the package.
    fn installed(&self) -> String {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", &self.package])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn what_was_reviewed_is_exactly_what_is_applied() {
    let _one = serial();
    let s = Setup::new("shoehub-test-boots", "7d");
    refused(&s.update(&["apply"]), "there is no update plan yet");
    let id = s.plan();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("state/update/plan.json")).unwrap())
            .unwrap();
    // The lists were refreshed, and the one pending package recorded as apt sees it.
    assert!(
        plan["refresh"]
            .as_str()
            .unwrap()
            .starts_with("apt-get update"),
        "{plan}"
    );
    let packages = plan["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{plan}");
    assert_eq!(packages[0]["package"], "shoehub-test-boots");
    assert_eq!(packages[0]["from"], "1.0");
    assert_eq!(packages[0]["to"], "1.1");
    assert_eq!(packages[0]["security"], true);
    assert!(packages[0]["origin"]
        .as_str()
        .unwrap()
        .contains("Debian-Security"));
    assert_eq!(plan["check"]["exit_code"], 0);
    assert!(
        plan["check"]["recap"]["localhost"]["changed"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // The same state makes the same plan.
    assert_eq!(s.plan(), id);

    // What the reviewer reads: every package, the diff per task and host.
    let status = s.update(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.contains("shoehub-test-boots 1.0 -> 1.1 (Debian-Security"),
        "{text}"
    );
    assert!(text.contains("SECURITY"), "{text}");
    assert!(
        text.contains("TASK [Install exactly the reviewed package files]"),
        "{text}"
    );
    // The reviewed file, fetched through apt, kept root's alone with its SHA-256.
    let debs = plan["debs"].as_array().unwrap();
    assert_eq!(debs.len(), 1, "{plan}");
    assert_eq!(debs[0]["version"], "1.1");
    let file = PathBuf::from(debs[0]["file"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    {
        use sha2::Digest;
        assert_eq!(
            debs[0]["sha256"],
            format!("{:x}", sha2::Sha256::digest(&bytes))
        );
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert!(text.contains("changed: [localhost]"), "{text}");
    assert!(text.contains("not approved"), "{text}");

    let e = Exporter::start(&std::fs::read_to_string(s.path("config.yml")).unwrap());
    assert_eq!(
        e.metrics().value("shoehub_update_pending_approval", &[]),
        Some(1.0)
    );
    refused(
        &s.update(&["apply"]),
        &format!("update approve --plan {id} --by NAME"),
    );
    refused(
        &s.update(&["approve", "--plan", "0000000000000000", "--by", "alice"]),
        "is not the current plan",
    );
    // An approval has a name: --by, or the sudo user.
    refused(&s.update(&["approve", "--plan", &id]), "needs a name");
    let ok = s.update_env(
        &["approve", "--plan", &id, "--comment", "read the changelog"],
        &[("SUDO_USER", "alice")],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&s.update(&["status"]).stdout).into_owned();
    assert!(
        text.contains("approved by alice") && text.contains("read the changelog"),
        "{text}"
    );
    assert_eq!(
        e.metrics().value("shoehub_update_pending_approval", &[]),
        Some(0.0)
    );

    // 1.2 is published after the review: it waits for the next plan.
    s.publish(&["1.0", "1.1", "1.2"]);
    let applied = s.update(&["apply"]);
    let printed = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{printed}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(s.installed(), "1.1", "{printed}");
    refused(&s.update(&["apply"]), "was already applied");
    let m = e.metrics();
    assert_eq!(
        m.value("shoehub_job_last_exit_code", &[("job_name", "update")]),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "shoehub_ansible_last_run_tasks",
            &[
                ("job_name", "update"),
                ("host", "localhost"),
                ("status", "changed")
            ]
        ),
        Some(1.0),
        "{printed}"
    );
    // 1.2 was published after the review: status says so.
    let text = String::from_utf8_lossy(&s.update(&["status"]).stdout).into_owned();
    assert!(
        text.contains("NEWER since the review: shoehub-test-boots 1.2 (this plan has 1.1)"),
        "{text}"
    );
    // The next plan offers 1.2.
    s.plan();
    let text = String::from_utf8_lossy(&s.update(&["status"]).stdout).into_owned();
    assert!(text.contains("shoehub-test-boots 1.1 -> 1.2"), "{text}");
}

#[test]
fn a_withdrawn_version_is_installed_from_its_file_and_an_altered_file_an_edited_inventory_and_a_stale_plan_are_refused(
) {
    let _one = serial();
    let s = Setup::new("shoehub-test-sandals", "7d");
    let id = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id, "--by", "bob"])
            .status
            .code(),
        Some(0)
    );
    // 1.1 is withdrawn (1.2 replaces it) after the review, as a Debian suite keeps one
    // version: the reviewed file is installed all the same, and its cache removed.
    s.publish(&["1.0", "1.2"]);
    let out = s.update(&["apply", "--foreground"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.installed(), "1.1");
    assert!(
        !s.path("state/update/debs").exists(),
        "the applied plan's files stay"
    );

    // A cached file altered after the review: refused, nothing installed.
    let id = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id, "--by", "bob"])
            .status
            .code(),
        Some(0)
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("state/update/plan.json")).unwrap())
            .unwrap();
    let file = PathBuf::from(plan["debs"][0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(0);
    std::fs::write(&file, bytes).unwrap();
    let out = s.update(&["apply", "--foreground"]);
    refused(&out, "SHA-256 differs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("update plan"));
    assert_eq!(s.installed(), "1.1", "nothing was installed");
    // `update status` says so, with the reason, until an apply runs.
    let status = s.update(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("last apply REFUSED") && status.contains("SHA-256 differs"),
        "{status}"
    );

    // An inventory edited after the approval: plan again.
    let id2 = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id2, "--by", "bob"])
            .status
            .code(),
        Some(0)
    );
    let edited = s.path("edited.ini");
    std::fs::write(
        &edited,
        std::fs::read_to_string(&s.inventory).unwrap() + "# edited\n",
    )
    .unwrap();
    s.config(&edited, "7d");
    refused(&s.update(&["apply"]), "changed since plan");
    assert_eq!(s.installed(), "1.1");

    // A plan older than updates.max_plan_age.
    s.config(&s.inventory, "1s");
    let id3 = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id3, "--by", "bob"])
            .status
            .code(),
        Some(0)
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    refused(&s.update(&["apply"]), "older than updates.max_plan_age");
    assert_eq!(s.installed(), "1.1");
}

#[test]
fn a_playbook_whose_hosts_match_nothing_fails_the_plan() {
    let _one = serial();
    let s = Setup::new("shoehub-test-laces", "7d");
    // An inventory without the playbook's group.
    let other = s.path("other.ini");
    std::fs::write(&other, "[webservers]\nlocalhost ansible_connection=local\n").unwrap();
    s.config(&other, "7d");
    let out = s.update(&["plan"]);
    refused(&out, "matched no host");
    assert!(String::from_utf8_lossy(&out.stderr).contains("updates.inventory"));
    // Without an inventory at all: say what to set.
    std::fs::write(
        s.path("config.yml"),
        format!(
            "jobs:\n  state_dir: {}\nupdates:\n  apt: false\n  playbook: {}\n",
            s.path("state").display(),
            shipped("update.yml").display()
        ),
    )
    .unwrap();
    refused(&s.update(&["plan"]), "set updates.inventory");
}

#[test]
fn apply_without_systemd_runs_in_the_foreground_and_says_so() {
    let _one = serial();
    let s = Setup::new("shoehub-test-insoles", "7d");
    let id = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id, "--by", "carol"])
            .status
            .code(),
        Some(0)
    );
    // Where systemd runs, apply would go to a unit of its own; --foreground keeps it here.
    let systemd = Path::new("/run/systemd/system").exists();
    let out = s.update(if systemd {
        &["apply", "--foreground"]
    } else {
        &["apply"]
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).contains("systemd is not running here"),
        !systemd
    );
    assert_eq!(s.installed(), "1.1");
}

/// An approval is bound to one review. The plan's id covers the check run's diff and
/// every file the playbook reads: the shipped play, here with a role and its template
/// in the playbook's directory and vars beside the inventory. A changed diff, role
/// file, template or inventory makes another plan, and apply refuses the approved one;
/// a new plan voids the approval even with the same content; `approve` needs `--plan`;
/// a failed apply needs a new approval before the next.
#[test]
fn an_approval_is_bound_to_what_was_reviewed() {
    let _one = serial();
    let s = Setup::new("shoehub-test-heels", "7d");
    let book = s.path("book");
    std::fs::create_dir_all(book.join("roles/motd/tasks")).unwrap();
    std::fs::create_dir_all(book.join("roles/motd/templates")).unwrap();
    let play = std::fs::read_to_string(shipped("update.yml"))
        .unwrap()
        .replacen("  vars:\n", "  roles:\n    - motd\n  vars:\n", 1);
    assert!(play.contains("    - motd\n"));
    std::fs::write(book.join("update.yml"), play).unwrap();
    std::fs::write(
        book.join("roles/motd/tasks/main.yml"),
        "- name: The message of the day\n  ansible.builtin.template:\n    src: motd.j2\n    dest: \"{{ motd_path }}\"\n    mode: \"0644\"\n",
    )
    .unwrap();
    let template = book.join("roles/motd/templates/motd.j2");
    std::fs::write(&template, "{{ motd_text }}\n").unwrap();
    let inv = s.path("inv");
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    std::fs::copy(shipped("inventory.ini"), inv.join("inventory.ini")).unwrap();
    let vars = inv.join("group_vars/shoe_store_hub.yml");
    let write_vars = |text: &str| {
        std::fs::write(
            &vars,
            format!(
                "motd_path: {}\nmotd_text: \"{text}\"\n",
                s.path("motd").display()
            ),
        )
        .unwrap()
    };
    write_vars("PermitRootLogin no");
    std::fs::write(
        s.path("config.yml"),
        format!(
            "jobs:\n  state_dir: {}\nupdates:\n  apt: false\n  playbook: {}\n  inventory: {}\n",
            s.path("state").display(),
            book.join("update.yml").display(),
            inv.join("inventory.ini").display(),
        ),
    )
    .unwrap();
    let approve = |id: &str| {
        let out = s.update(&[
            "approve",
            "--plan",
            id,
            "--by",
            "alice",
            "--comment",
            "diff reviewed",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The summary of what is approved comes first.
        assert!(text.contains(&format!("plan {id} made")), "{text}");
    };

    // `approve` names its plan.
    let id = s.plan();
    let out = s.update(&["approve", "--by", "alice"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plan"));
    approve(&id);

    // The diff changes (a var the template reads): another plan, the approval void.
    write_vars("PermitRootLogin yes");
    let id2 = s.plan();
    assert_ne!(id2, id);
    let status = String::from_utf8_lossy(&s.update(&["status"]).stdout).into_owned();
    assert!(
        status.contains("PermitRootLogin yes") && status.contains("not approved"),
        "{status}"
    );
    refused(
        &s.update(&["apply"]),
        &format!("plan {id2} is not approved"),
    );
    // Planned again with the same content: still void until approved again.
    approve(&id2);
    assert_eq!(s.plan(), id2);
    refused(&s.update(&["apply"]), "is not approved");

    // After an approval: a template, a role's task, an inventory's vars edited.
    for (what, file, text) in [
        (
            "template",
            template.clone(),
            "{{ motd_text }} edited\n".to_owned(),
        ),
        (
            "role",
            book.join("roles/motd/tasks/main.yml"),
            std::fs::read_to_string(book.join("roles/motd/tasks/main.yml")).unwrap() + "# edited\n",
        ),
        (
            "vars",
            inv.join("group_vars/all.yml"),
            "extra: 1\n".to_owned(),
        ),
    ] {
        let id = s.plan();
        approve(&id);
        let before = std::fs::read(&file).ok();
        std::fs::write(&file, text).unwrap();
        refused(&s.update(&["apply"]), "changed since plan");
        assert_eq!(s.installed(), "1.0", "{what}");
        let id_after = s.plan();
        assert_ne!(id_after, id, "{what}: the same id for other files");
        match before {
            Some(b) => std::fs::write(&file, b).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
    }

    // A failed apply (the new version's postinst fails) needs a new approval.
    let broken = s.repo.build(&s.package, "1.2", Some("#!/bin/sh\nexit 1\n"));
    let v10 = s.repo.build(&s.package, "1.0", None);
    s.repo.publish(&[&v10, &broken], &SECURITY);
    let id = s.plan();
    approve(&id);
    let out = s.update(&["apply", "--foreground"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    refused(
        &s.update(&["apply", "--foreground"]),
        "failed when it was applied",
    );
    let status = String::from_utf8_lossy(&s.update(&["status"]).stdout).into_owned();
    assert!(status.contains("FAILED when applied"), "{status}");
    approve(&id);
    let again = s.update(&["apply", "--foreground"]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("failed when it was applied"),
        "a new approval lets it run again"
    );
}
