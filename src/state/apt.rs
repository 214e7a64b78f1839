//! apt's answers, parsed: what an upgrade would install (`apt-get --just-print
//! dist-upgrade`) and remove (`… autoremove`). The apt collector counts them; the update
//! plan records them.

use std::collections::BTreeMap;

/// One package an upgrade would install.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upgrade {
    pub package: String,
    /// The installed version (empty for a new package).
    pub from: String,
    pub to: String,
    /// The archives it comes from, `Debian-Security:12/stable-security`, comma-joined.
    pub origin: String,
    pub arch: String,
    /// From a security archive (`Debian-Security`, `…-security`).
    #[serde(default)]
    pub security: bool,
}

/// The `Inst` lines of a simulated upgrade:
/// `Inst libc6 [2.36-9+deb12u13] (2.36-9+deb12u14 Debian-Security:12/stable-security [amd64])`.
pub fn parse_upgrades(text: &str) -> Vec<Upgrade> {
    text.lines().filter_map(parse_inst).collect()
}

fn parse_inst(line: &str) -> Option<Upgrade> {
    let rest = line.strip_prefix("Inst ")?;
    let (package, rest) = rest.split_once(' ')?;
    let (from, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (v, r) = r.split_once("] ")?;
            (v.to_owned(), r)
        }
        None => (String::new(), rest),
    };
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    let (to, rest) = inner.split_once(' ')?;
    let open = rest.rfind(" [")?;
    let origin = rest[..open].replace(", ", ",");
    let arch = rest[open + 2..].strip_suffix(']')?;
    let security = origin.to_ascii_lowercase().contains("security");
    Some(Upgrade {
        package: package.to_owned(),
        from,
        to: to.to_owned(),
        origin,
        arch: arch.to_owned(),
        security,
    })
}

/// Pending upgrades counted by (origin, arch).
pub fn count_by_origin(upgrades: &[Upgrade]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for u in upgrades {
        *out.entry((u.origin.clone(), u.arch.clone())).or_insert(0) += 1;
    }
    out
}

/// Packages a simulated autoremove would remove (`Remv` lines).
pub fn count_removals(text: &str) -> u64 {
    text.lines().filter(|l| l.starts_with("Remv ")).count() as u64
}

/// Packages `apt-mark showhold` lists.
pub fn count_held(text: &str) -> u64 {
    text.lines().filter(|l| !l.trim().is_empty()).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_dist_upgrade_output() {
        let text = include_str!("../../tests/fixtures/apt/dist-upgrade.txt");
        let ups = parse_upgrades(text);
        let inst = text.lines().filter(|l| l.starts_with("Inst ")).count();
        assert_eq!(ups.len(), inst);
        assert!(ups.len() > 100);
        let bash = ups.iter().find(|u| u.package == "bash").unwrap();
        assert_eq!(bash.from, "5.2.15-2+b8");
        assert_eq!(bash.to, "5.2.15-2+b13");
        assert_eq!(bash.origin, "Debian:12.15/oldstable");
        assert_eq!(bash.arch, "amd64");
        let both = ups.iter().find(|u| u.package == "libgcrypt20-dev").unwrap();
        assert_eq!(
            both.origin,
            "Debian:12.15/oldstable,Debian-Security:12/oldstable-security"
        );
        let counts = count_by_origin(&ups);
        assert_eq!(counts.values().sum::<u64>(), ups.len() as u64);
        assert!(counts.keys().any(|(o, _)| o.contains("-security")));
        assert!(counts.keys().any(|(_, a)| a == "all"));
    }

    #[test]
    fn new_packages_removals_and_holds() {
        let u = parse_inst("Inst linux-image-6.1.0-30-amd64 (6.1.124-1 Debian-Security:12/stable-security [amd64])").unwrap();
        assert_eq!(u.from, "");
        assert_eq!(u.to, "6.1.124-1");
        assert!(parse_inst("Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])").is_none());
        let text = "Reading package lists...\nRemv linux-image-6.1.0-25-amd64 [6.1.106-3]\nRemv libfoo1 [1.0]\n";
        assert_eq!(count_removals(text), 2);
        assert_eq!(count_held("mariadb-server\nlinux-image-amd64\n"), 2);
        assert_eq!(count_held(""), 0);
    }
}
