//! The weekly update rolled out over a fleet: three Debian 12 hosts booted with systemd
//! as PID 1 (`common/booted.rs`) on a network of their own, each with its own dpkg
//! database, its own shop (a package whose service answers the exporter's probe) and the
//! package installed as the README says. The controller, `localhost` of the shipped
//! inventory, reaches the other two over SSH, as an account that becomes root through
//! sudo, with the shipped playbook; its inventory lists them (addresses substituted)
//! with `web2` in the `canary` group, and its config sets `updates.batch: 1`.
//!
//! - An update whose new shop version answers 500 breaks the canary: its validation
//!   (`shoehub-exporter check --only exporter,probes` there) fails and the rollout stops;
//!   the controller and `web3` keep the old version. `update status`, the controller's
//!   metrics and the shipped rules through Alertmanager (at a webhook) say that `web2`
//!   failed, at which step, and why.
//! - An update whose shop breaks some seconds after it starts passes the canary's check;
//!   with `updates.prometheus_url` set (the test's Prometheus, which scrapes the
//!   controller and the canary with the shipped rules), ShopDown fires for the canary
//!   within `updates.soak`, and the rollout stops there too.
//! - A good update with `web3` down after the review updates the canary, fails `web3`
//!   as unreachable and does not touch the controller, the batch after it.
//! - Once `web3` is back, the update reaches every host, each validated, and the alert
//!   ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::alerting::{generated_rules, start_prometheus, Alertmanager, Webhook};
use common::booted::{
    base_tree, build_deb, forward_to_loopback, install_as_readme, publish, shop_deb, text,
    wait_for, with_shop_probe, Host, Shop, Zone,
};

/// The shop's version on `host`, as dpkg has it.
fn version(host: &Host) -> String {
    host.ok("dpkg-query -W -f '${Version}' shoe-store-hub")
        .trim()
        .to_owned()
}

/// Every host's apt reads the repository `/srv/repo` on it, offering `debs`.
fn publish_all(hosts: &[&Host], debs: &[&Path]) {
    for h in hosts {
        publish(h, debs);
        h.ok("apt-get update -q");
    }
}

/// Plans on the controller through the timer's unit (its sandbox), approves the plan as
/// alice and applies it; the apply's output, and whether it succeeded.
fn plan_approve_apply(ctl: &Host) -> (bool, String) {
    plan_approve_then_apply(ctl, || {})
}

/// As [`plan_approve_apply`], with `meanwhile` done between the approval and the apply.
fn plan_approve_then_apply(ctl: &Host, meanwhile: impl FnOnce()) -> (bool, String) {
    let planned = ctl.sh("systemctl start shoehub-update-plan.service");
    assert!(
        planned.status.success(),
        "the plan failed: {}\n{}",
        text(&planned),
        text(&ctl.sh("shoehub-exporter update status; journalctl -u shoehub-update-plan --no-pager | tail -n 40"))
    );
    let status = ctl.ok("shoehub-exporter update status");
    let id = status
        .lines()
        .find_map(|l| l.split("--plan ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no plan id in {status}"));
    ctl.ok(&format!(
        "shoehub-exporter update approve --plan {id} --by alice --comment 'changelog read'"
    ));
    meanwhile();
    let applied = ctl.sh("shoehub-exporter update apply");
    (applied.status.success(), text(&applied))
}

#[test]
fn a_rollout_stops_at_a_sick_canary_and_a_good_update_reaches_every_host() {
    let deb = build_deb();
    let base = base_tree();
    let id = std::process::id();
    let zone = format!("sh{}", id % 100_000);
    let net = format!("10.231.{}", id % 250);
    let _bridge = Zone(zone.clone());
    let (ctl, web2, web3) = std::thread::scope(|s| {
        let boot = |name: &'static str, n: u8| {
            let (base, zone, net) = (&base, &zone, &net);
            s.spawn(move || Host::boot_in_zone(base, zone, &format!("{net}.{n}"), name))
        };
        let (a, b, c) = (boot("ctl", 1), boot("web2", 2), boot("web3", 3));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let hosts = [&ctl, &web2, &web3];

    // Each host: the shop 1.1 and the exporter, installed as the README says, probing
    // the shop.
    let debs = tempfile::tempdir().unwrap();
    let v11 = shop_deb(debs.path(), "1.1", Shop::Good);
    publish_all(&hosts, &[&v11]);
    for h in hosts {
        h.ok(
            "echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list && \
              apt-get update -q && apt-get install -y -q shoe-store-hub=1.1",
        );
        h.ok("systemctl is-active shoe-store-hub");
        for check in install_as_readme(h, &deb) {
            let _ = h.sh(&check);
        }
        let config = h.root().join("etc/shoehub-exporter/config.yml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, with_shop_probe(&text)).unwrap();
        h.ok("systemctl reload shoehub-exporter");
        // The host is healthy before the update: its validation passes.
        h.ok("shoehub-exporter check --only exporter,probes");
    }

    // The controller: its SSH key in the others' deploy accounts, their host keys known,
    // the fleet in the shipped inventory (addresses substituted), batches of one.
    ctl.ok("mkdir -p -m 700 /root/.ssh && ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519");
    let key = std::fs::read_to_string(ctl.root().join("root/.ssh/id_ed25519.pub")).unwrap();
    for (h, n) in [(&web2, 2), (&web3, 3)] {
        // Reached as a deploy account that may become root through sudo.
        h.ok(&format!(
            "useradd -m -s /bin/sh deploy && \
             echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && \
             chmod 440 /etc/sudoers.d/deploy && \
             install -d -m 700 -o deploy -g deploy /home/deploy/.ssh && \
             echo '{}' > /home/deploy/.ssh/authorized_keys && \
             chown deploy:deploy /home/deploy/.ssh/authorized_keys && systemctl is-active ssh",
            key.trim()
        ));
        ctl.ok(&format!(
            "ssh-keyscan -t ed25519 {net}.{n} >> /root/.ssh/known_hosts 2>/dev/null && \
             test -s /root/.ssh/known_hosts"
        ));
    }
    let inventory = ctl.root().join("etc/shoehub-exporter/inventory.ini");
    let shipped = std::fs::read_to_string(&inventory).unwrap();
    assert!(
        shipped.contains("[canary]"),
        "the shipped inventory: {shipped}"
    );
    let fleet = shipped
        .replace(
            "[shoe_store_hub]\n",
            &format!(
                "[shoe_store_hub]\n\
                 web2 ansible_host={net}.2 ansible_user=deploy ansible_python_interpreter=/usr/bin/python3\n\
                 web3 ansible_host={net}.3 ansible_user=deploy ansible_python_interpreter=/usr/bin/python3\n"
            ),
        )
        .replace("[canary]\n", "[canary]\nweb2\n")
        + "\n[shoe_store_hub:vars]\nshoehub_services=[\"shoe-store-hub\"]\n";
    std::fs::write(&inventory, fleet).unwrap();
    let config = ctl.root().join("etc/shoehub-exporter/config.yml");
    let text_config = std::fs::read_to_string(&config).unwrap();
    assert!(text_config.contains("  # batch: 1"), "{text_config}");
    std::fs::write(
        &config,
        text_config.replacen("  # batch: 1", "  batch: 1", 1),
    )
    .unwrap();
    ctl.ok("shoehub-exporter check-config");

    // The shipped rules and Alertmanager, watching the controller's exporter.
    let exporter = ctl.forward(9742);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yml");
    std::fs::copy(&config, &cfg).unwrap();
    let rules = generated_rules(&cfg);
    let hook = Webhook::start();
    let am = Alertmanager::start(&hook);
    // The controller's exporter and the canary's, as Prometheus' targets; the canary's
    // reached over the zone's bridge, which the test runner joins at .254.
    common::booted::run(
        std::process::Command::new(common::require_tool("ip", "iproute2")).args([
            "addr",
            "add",
            &format!("{net}.254/24"),
            "dev",
            &format!("vz-{zone}"),
        ]),
    );
    let prometheus = start_prometheus(
        &format!("127.0.0.1:{exporter}', '{net}.2:9742"),
        am.port,
        &rules,
    );

    // A broken update: the shop's 1.2 answers 500.
    let v12 = shop_deb(debs.path(), "1.2", Shop::Broken);
    publish_all(&hosts, &[&v12]);
    let (ok, out) = plan_approve_apply(&ctl);
    assert!(!ok, "the broken update succeeded: {out}");
    assert_eq!(version(&web2), "1.2", "the canary was updated first");
    assert_eq!(version(&ctl), "1.1", "the rollout went past the canary");
    assert_eq!(version(&web3), "1.1", "the rollout went past the canary");
    let status = ctl.ok("shoehub-exporter update status");
    for expected in [
        "STOPPED at a failed host",
        "web2: FAILED at check:",
        "500",
        "localhost: not reached",
        "web3: not reached",
    ] {
        assert!(status.contains(expected), "{expected:?} not in: {status}");
    }
    let m = common::scrape_port(exporter);
    assert_eq!(
        m.value(
            "shoehub_update_rollout_failed",
            &[("host", "web2"), ("step", "check")]
        ),
        Some(1.0),
        "{:?}",
        m.family("shoehub_update_rollout_failed")
    );
    for (host, outcome) in [
        ("web2", "failed"),
        ("web3", "not_reached"),
        ("localhost", "not_reached"),
    ] {
        assert_eq!(
            m.value(
                "shoehub_update_rollout_host",
                &[("host", host), ("outcome", outcome)]
            ),
            Some(1.0),
            "{host}: {:?}",
            m.family("shoehub_update_rollout_host")
        );
    }
    let plan = ctl.ok("cat /var/lib/shoehub-exporter/jobs/update/plan.json");
    assert!(plan.contains("\"outcome\": \"failed\""), "{plan}");
    let seen = || {
        let alerts = common::http("GET", prometheus.port, "/api/v1/alerts", &[]);
        format!(
            "Prometheus' alerts: {}\nnotified: {:?}",
            String::from_utf8_lossy(&alerts.body),
            hook.all()
                .iter()
                .map(|n| n.name().to_owned())
                .collect::<Vec<_>>()
        )
    };
    wait_for(
        "UpdateRolloutStopped for web2 at its check reaches the pager",
        Duration::from_secs(90),
        || {
            hook.all().iter().any(|n| {
                n.name() == "UpdateRolloutStopped"
                    && n.receiver == "operators-pager"
                    && n.labels.get("host").map(String::as_str) == Some("web2")
                    && n.labels.get("step").map(String::as_str) == Some("check")
                    && n.annotations["description"].contains("web2")
            })
        },
        seen,
    );

    // An update whose shop breaks a while after it starts: the canary's check passes,
    // then the probe fails, ShopDown fires for it within the soak, and the rollout stops.
    let prometheus_url = format!(
        "http://{net}.254:{}",
        forward_to_loopback(&format!("{net}.254"), prometheus.port)
    );
    let soaking = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("  # batch: 1", "  batch: 1", 1)
        .replacen("  soak: 5m", "  soak: 45s", 1)
        .replacen(
            "  # prometheus_url: http://prometheus.example:9090",
            &format!("  prometheus_url: {prometheus_url}"),
            1,
        );
    std::fs::write(&config, &soaking).unwrap();
    ctl.ok("shoehub-exporter check-config");
    let v13 = shop_deb(debs.path(), "1.3", Shop::BreaksAfter(8));
    publish_all(&hosts, &[&v13]);
    let (ok, out) = plan_approve_apply(&ctl);
    assert!(!ok, "the update that breaks later succeeded: {out}");
    assert_eq!(version(&web2), "1.3");
    assert_eq!(version(&web3), "1.1", "the rollout went past the canary");
    let status = ctl.ok("shoehub-exporter update status");
    for expected in ["web2: FAILED at soak:", "ShopDown", "web3: not reached"] {
        assert!(status.contains(expected), "{expected:?} not in: {status}");
    }
    let m = common::scrape_port(exporter);
    assert_eq!(
        m.value(
            "shoehub_update_rollout_failed",
            &[("host", "web2"), ("step", "soak")]
        ),
        Some(1.0),
        "{:?}",
        m.family("shoehub_update_rollout_failed")
    );
    wait_for(
        "UpdateRolloutStopped for web2 at its soak reaches the pager",
        Duration::from_secs(90),
        || {
            hook.all().iter().any(|n| {
                n.name() == "UpdateRolloutStopped"
                    && n.labels.get("step").map(String::as_str) == Some("soak")
            })
        },
        seen,
    );

    // A good update, with batches of one but no soak, while web3 is down after the
    // review: the canary is updated, web3 cannot be reached, and the batch after it
    // (the controller) is not touched.
    std::fs::write(
        &config,
        text_config.replacen("  # batch: 1", "  batch: 1", 1),
    )
    .unwrap();
    let v14 = shop_deb(debs.path(), "1.4", Shop::Good);
    publish_all(&hosts, &[&v14]);
    let (ok, out) = plan_approve_then_apply(&ctl, || {
        web3.ok("systemctl stop ssh.service");
    });
    assert!(!ok, "an update with a host down succeeded: {out}");
    assert_eq!(version(&web2), "1.4");
    assert_eq!(
        version(&ctl),
        "1.1",
        "the rollout went past the host it could not reach"
    );
    let status = ctl.ok("shoehub-exporter update status");
    for expected in [
        "web2: updated and validated",
        "web3: FAILED at unreachable",
        "localhost: not reached",
    ] {
        assert!(status.contains(expected), "{expected:?} not in: {status}");
    }
    web3.ok("systemctl start ssh.service");

    // Once it is back, the update reaches every host, each validated.
    let (ok, out) = plan_approve_apply(&ctl);
    assert!(
        ok,
        "the good update failed: {out}\n{}",
        ctl.ok("shoehub-exporter update status")
    );
    for h in hosts {
        assert_eq!(version(h), "1.4");
        h.ok("shoehub-exporter check --only exporter,probes");
    }
    let status = ctl.ok("shoehub-exporter update status");
    assert!(
        status.contains("every host updated and validated"),
        "{status}"
    );
    for host in ["localhost", "web2", "web3"] {
        assert!(
            status.contains(&format!("{host}: updated and validated")),
            "{status}"
        );
    }
    let m = common::scrape_port(exporter);
    assert!(m.family("shoehub_update_rollout_failed").is_empty());
    wait_for(
        "UpdateRolloutStopped resolves",
        Duration::from_secs(90),
        || {
            let r = common::http("GET", prometheus.port, "/api/v1/alerts", &[]);
            !String::from_utf8_lossy(&r.body).contains("UpdateRolloutStopped")
        },
        seen,
    );
}
