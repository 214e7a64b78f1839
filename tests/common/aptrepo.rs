//! A local apt repository and a private apt configuration that reads only it: packages
//! `shoehub-test-*` built with `dpkg-deb`, indexed with `apt-ftparchive`, fetched by
//! `apt-get update` through `APT_CONFIG`, so that the host's own sources, lists and
//! preferences are neither read nor touched. Packages are installed with the host's real
//! dpkg (the tests run as root) and purged again when the repository is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_tool;

/// What a repository's `Release` says of itself; apt shows it as the origin of every
/// package it offers (`Label:Version/Suite`).
pub struct Archive<'a> {
    pub origin: &'a str,
    pub label: &'a str,
    pub suite: &'a str,
    pub version: &'a str,
}

/// Debian's security archive, as apt names it.
pub const SECURITY: Archive<'static> = Archive {
    origin: "Debian",
    label: "Debian-Security",
    suite: "stable-security",
    version: "12",
};

pub struct AptRepo {
    dir: tempfile::TempDir,
    installed: Vec<String>,
}

impl AptRepo {
    /// An empty repository, and the configuration that reads it (world-readable: the
    /// exporter asks apt as an unprivileged user).
    pub fn new() -> AptRepo {
        require_tool("dpkg-deb", "dpkg");
        require_tool("apt-ftparchive", "apt-utils");
        require_tool("apt-get", "apt");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "repo",
            "lists/partial",
            "cache/archives/partial",
            "sources.list.d",
            "preferences.d",
            "build",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("sources.list"),
            format!("deb [trusted=yes] file:{} ./\n", d.join("repo").display()),
        )
        .unwrap();
        std::fs::write(
            d.join("apt.conf"),
            format!(
                "Dir::Etc::SourceList \"{d}/sources.list\";\n\
                 Dir::Etc::SourceParts \"{d}/sources.list.d\";\n\
                 Dir::Etc::PreferencesParts \"{d}/preferences.d\";\n\
                 Dir::State::Lists \"{d}/lists\";\n\
                 Dir::Cache \"{d}/cache\";\n\
                 Acquire::Languages \"none\";\n\
                 APT::Sandbox::User \"root\";\n",
                d = d.display()
            ),
        )
        .unwrap();
        let repo = AptRepo {
            dir,
            installed: Vec::new(),
        };
        repo.publish(&[], &SECURITY);
        repo
    }

    /// The file `APT_CONFIG` names.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("apt.conf")
    }

    /// A package of nothing but its name and version, and a `postinst` script if given.
    pub fn build(&self, name: &str, version: &str, postinst: Option<&str>) -> PathBuf {
        let scripts: Vec<(&str, &str)> = postinst.map(|p| ("postinst", p)).into_iter().collect();
        tiny_deb(&self.dir.path().join("build"), name, version, &scripts)
    }

    /// The repository offers exactly `debs` (earlier ones are withdrawn), as `archive`;
    /// apt's lists are refreshed.
    pub fn publish(&self, debs: &[&Path], archive: &Archive) {
        let repo = self.dir.path().join("repo");
        for e in std::fs::read_dir(&repo).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
        for deb in debs {
            std::fs::copy(deb, repo.join(deb.file_name().unwrap())).unwrap();
        }
        let packages = Command::new("apt-ftparchive")
            .args(["packages", "."])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(packages.status.success(), "apt-ftparchive packages failed");
        std::fs::write(repo.join("Packages"), packages.stdout).unwrap();
        let field = |k: &str, v: &str| format!("-oAPT::FTPArchive::Release::{k}={v}");
        let release = Command::new("apt-ftparchive")
            .arg(field("Origin", archive.origin))
            .arg(field("Label", archive.label))
            .arg(field("Suite", archive.suite))
            .arg(field("Version", archive.version))
            .args(["release", "."])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(release.status.success(), "apt-ftparchive release failed");
        std::fs::write(repo.join("Release"), release.stdout).unwrap();
        run(self.apt_get().arg("update"));
        let mut chmod = Command::new("chmod");
        run(chmod.arg("-R").arg("a+rX").arg(self.dir.path()));
    }

    /// `apt-get` reading the private configuration.
    pub fn apt_get(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", self.config()).env("LC_ALL", "C");
        c
    }

    /// Installs a package file with the host's dpkg; it is purged on drop.
    pub fn install(&mut self, deb: &Path) {
        let name = deb
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split('_')
            .next()
            .unwrap()
            .to_owned();
        if !self.installed.contains(&name) {
            self.installed.push(name);
        }
        run(Command::new("dpkg").arg("-i").arg(deb));
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        for name in &self.installed {
            let _ = Command::new("dpkg")
                .args(["--purge", name])
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A package of its name and version and the `scripts` given: maintainer scripts
/// (`("postinst", "#!/bin/sh …")`) and files of the package by their path
/// (`("usr/lib/…", …)`), built with dpkg-deb into `dir`; its path.
pub fn tiny_deb(dir: &Path, name: &str, version: &str, scripts: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("{name}-{version}"));
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).unwrap();
    std::fs::write(
        debian.join("control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: Shoe Store Hub operators <ops@example.org>\n\
             Description: a package of the shoehub-exporter tests\n"
        ),
    )
    .unwrap();
    for (name, text) in scripts {
        // A maintainer script by its name (`postinst`), or a file of the package by its
        // path (`usr/lib/…`), executable when it starts with `#!`.
        let (p, mode) = if name.contains('/') {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            (p, if text.starts_with("#!") { 0o755 } else { 0o644 })
        } else {
            (debian.join(name), 0o755)
        };
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    run(Command::new(require_tool("dpkg-deb", "dpkg"))
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&root)
        .arg(&deb));
    deb
}

/// Writes to `path` the shipped inventory (`packaging/ansible/inventory.ini`) with its
/// host's validation given this test's paths: the built binary's check with `config`.
pub fn validating_inventory(path: &Path, config: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/ansible/inventory.ini");
    std::fs::write(
        path,
        std::fs::read_to_string(shipped).unwrap()
            + &format!(
                "\n[shoe_store_hub:vars]\n\
                 shoehub_validate=\"{} check --only exporter,probes --config {}\"\n",
                super::BIN,
                config.display()
            ),
    )
    .unwrap();
}
