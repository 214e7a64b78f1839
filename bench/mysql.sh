#!/usr/bin/env bash
# MySQL collector: shoehub-exporter against mysqld_exporter, side by side, one run.
#
# One MariaDB server (started here, in a scratch directory, on a free port) and one
# account for both exporters, read from the same my.cnf-style file. mysqld_exporter runs
# with its default collectors; shoehub-exporter with the mysql collector (one schema's
# table sizes) and its host collectors on as well. Each round loads one exporter, then
# the other, with wrk on loopback, first on one connection, then on four. Reported per
# exporter: scrapes/s, p50 and p99 latency, CPU seconds per 1,000 scrapes (from
# /proc/PID/stat, the exporter's own process only), peak anonymous memory (RssAnon,
# sampled) and peak RSS (VmHWM); then the ratios. Requests ask for gzip, as Prometheus's do.
#
# With DEFAULTS=1, this exporter runs at its defaults too: a config with nothing but the
# database's section (its jobs, textfile, apt, backups and BackupPC collectors on). The
# runs then start once its first background look at apt has ended.
#
# Usage: [DEFAULTS=1] bench/mysql.sh [ROUNDS] [SECONDS_PER_RUN]   (3 rounds of 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}

work=$(mktemp -d)
. bench/lib.sh
install_missing prometheus-mysqld-exporter:prometheus-mysqld-exporter mariadbd:mariadb-server \
  mariadb:mariadb-client wrk:wrk bc:bc curl:curl readelf:binutils
export PATH="$PATH:/usr/sbin"
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_mariadb
exporter_account "$work/exporter.cnf"

peer_port=$(free_port)
ours_port=$(free_port)
prometheus-mysqld-exporter --config.my-cnf="$work/exporter.cnf" \
  --web.listen-address="127.0.0.1:$peer_port" >"$work/peer.log" 2>&1 &
peer_pid=$!; pids+=("$peer_pid")
if [ "${DEFAULTS:-0}" = 1 ]; then
  # Both at their defaults: a config with nothing but the database, every collector on.
  printf 'mysql:\n  defaults_file: %s\n' "$work/exporter.cnf" >"$work/shoehub.yml"
else
  printf 'mysql:\n  defaults_file: %s\n  schemas: [shoe_store_hub]\njobs:\n  enabled: false\ntextfile:\n  enabled: false\nupdates:\n  apt: false\nbackup:\n  enabled: false\nbackuppc:\n  enabled: false\n' "$work/exporter.cnf" >"$work/shoehub.yml"
fi
"$bin" --config "$work/shoehub.yml" \
  --web.listen-address "127.0.0.1:$ours_port" --log.level warn >"$work/ours.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
anon_sampler "$peer_pid" peer
anon_sampler "$ours_pid" ours
wait_http "$peer_port"
wait_http "$ours_port"
# Read whole before matching: grep -q stops at the first match, and curl, cut off,
# would fail the pipeline.
peer_body=$(curl -s "http://127.0.0.1:$peer_port/metrics")
grep -q '^mysql_up 1' <<<"$peer_body" || { echo "mysqld_exporter cannot reach the server" >&2; exit 1; }
ours_body=$(curl -s "http://127.0.0.1:$ours_port/metrics")
grep -q '^mysql_up 1' <<<"$ours_body" || { echo "shoehub-exporter cannot reach the server" >&2; cat "$work/ours.log" >&2; exit 1; }

if [ "${DEFAULTS:-0}" = 1 ]; then
  # At its defaults the exporter asks apt in the background when it starts (then every
  # `updates.apt_interval`, 15 minutes): seconds of a CPU in a child process, which would
  # fall into the first runs and measure apt, not scrapes. Load starts once apt answered.
  for _ in $(seq 240); do
    body=$(curl -s "http://127.0.0.1:$ours_port/metrics")
    grep -q '^apt_upgrades_held' <<<"$body" && break
    sleep 0.5
  done
fi

for r in $(seq "$rounds"); do
  for conns in 1 4; do
    run peer "$peer_pid" "$peer_port" "$conns"
    run ours "$ours_pid" "$ours_port" "$conns"
  done
  echo "round $r of $rounds done" >&2
done

peer_rss=$(rss_kb "$peer_pid")
ours_rss=$(rss_kb "$ours_pid")
peer_anon=$(peak_anon_kb peer)
ours_anon=$(peak_anon_kb ours)

echo
machine
echo "$(mariadbd --version | awk '{print $3}'), mysqld_exporter $(prometheus-mysqld-exporter --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $("$bin" --version | awk '{print $2}')"
echo "binary: $bin ($(linkage "$bin"), as scripts/build-release builds it)"
echo "medians of $rounds alternating runs of ${secs}s each"
printf '%-16s %-6s %12s %10s %10s %18s\n' exporter conns scrapes/s p50_us p99_us cpu_s/1000scrapes
for conns in 1 4; do
  for name in peer ours; do
    printf '%-16s %-6s %12.0f %10.0f %10.0f %18.3f\n' "$name" "$conns" \
      "$(median "$work/$name.$conns" 1)" "$(median "$work/$name.$conns" 2)" \
      "$(median "$work/$name.$conns" 3)" "$(median "$work/$name.$conns" 4)"
  done
done
printf 'peak anonymous memory (RssAnon: heap and stacks): mysqld_exporter %s kB, ours %s kB\n' "$peer_anon" "$ours_anon"
printf 'peak RSS (VmHWM, code and libraries too): mysqld_exporter %s kB, ours %s kB\n' "$peer_rss" "$ours_rss"
echo
echo "ratios (shoehub-exporter against mysqld_exporter; goal in brackets):"
for conns in 1 4; do
  tput=$(echo "$(median "$work/ours.$conns" 1) / $(median "$work/peer.$conns" 1)" | bc -l)
  cpu=$(echo "$(median "$work/peer.$conns" 4) / $(median "$work/ours.$conns" 4)" | bc -l)
  printf '  %s connection(s): throughput %.1fx [>=10x], CPU per scrape 1/%.1f [<=1/10]\n' \
    "$conns" "$tput" "$cpu"
done
printf '  peak anonymous memory: %.0f%% of its [<=30%%]\n' "$(echo "$ours_anon * 100 / $peer_anon" | bc -l)"
