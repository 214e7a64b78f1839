#!/usr/bin/env bash
# Host collectors: shoehub-exporter against node_exporter, side by side, one run.
#
# Both serve the same collectors: node_exporter those its names for this exporter's
# host collectors (docs/collectors.md, generated: cpu, stat, meminfo, diskstats, netdev,
# loadavg, time, uname, … and its own process metrics), shoehub-exporter its host
# collectors without PSI (pressure is off on both sides), its jobs, textfile, apt and
# backups collectors off. Each round loads one, then the other, with wrk on loopback:
# first one connection, then eight. Reported per exporter: scrapes/s, p99 latency, CPU
# seconds per 1,000 scrapes (from /proc/PID/stat), peak anonymous memory (RssAnon,
# sampled) and peak RSS (VmHWM); then the ratios. Requests ask for gzip, as Prometheus's do.
#
# Usage: bench/host.sh [ROUNDS] [SECONDS_PER_RUN]     (defaults: 3 rounds of 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}

work=$(mktemp -d)
. bench/lib.sh
install_missing prometheus-node-exporter:prometheus-node-exporter wrk:wrk bc:bc curl:curl readelf:binutils
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

node_port=$(free_port)
ours_port=$(free_port)

# node_exporter runs the collectors this exporter has, named as it names them: the
# list comes from the generated reference (its node_exporter column), so a new host
# collector is compared without an edit here.
"$bin" generate docs --out "$work/docs" >/dev/null
node_flags=(--collector.disable-defaults)
for p in $(sed -n 's/^| \[`[a-z_]*`\]([^)]*) | \([^|]*\) |.*/\1/p' "$work/docs/collectors.md" | tr -d '`,'); do
  case $p in
    none) ;;
    pressure) ;;   # off on both sides (below): not every kernel has it
    systemd) ;;    # this exporter's is off where systemd is not PID 1
    *) node_flags+=("--collector.$p") ;;
  esac
done
[ "${#node_flags[@]}" -gt 15 ] || { echo "no collector list in $work/docs/collectors.md" >&2; exit 1; }
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" "${node_flags[@]}" \
  >"$work/node.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
printf 'system:\n  host:\n    pressure: false\njobs:\n  enabled: false\ntextfile:\n  enabled: false\nupdates:\n  apt: false\nbackup:\n  enabled: false\nbackuppc:\n  enabled: false\n' >"$work/shoehub.yml"
"$bin" --config "$work/shoehub.yml" \
  --web.listen-address "127.0.0.1:$ours_port" --log.level warn >"$work/ours.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
anon_sampler "$node_pid" node
anon_sampler "$ours_pid" ours
wait_http "$node_port"
wait_http "$ours_port"

for r in $(seq "$rounds"); do
  for conns in 1 8; do
    run node "$node_pid" "$node_port" "$conns"
    run ours "$ours_pid" "$ours_port" "$conns"
  done
  echo "round $r of $rounds done" >&2
done

node_rss=$(rss_kb "$node_pid")
ours_rss=$(rss_kb "$ours_pid")
node_anon=$(peak_anon_kb node)
ours_anon=$(peak_anon_kb ours)

echo
machine
echo "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $("$bin" --version | awk '{print $2}')"
echo "binary: $bin ($(linkage "$bin"), as scripts/build-release builds it)"
echo "medians of $rounds alternating runs of ${secs}s each"
printf '%-14s %-6s %12s %12s %18s\n' exporter conns scrapes/s p99_us cpu_s/1000scrapes
for conns in 1 8; do
  for name in node ours; do
    printf '%-14s %-6s %12.0f %12.0f %18.3f\n' "$name" "$conns" \
      "$(median "$work/$name.$conns" 1)" "$(median "$work/$name.$conns" 3)" "$(median "$work/$name.$conns" 4)"
  done
done
printf 'peak anonymous memory (RssAnon: heap and stacks): node %s kB, ours %s kB\n' "$node_anon" "$ours_anon"
printf 'peak RSS (VmHWM, code and libraries too): node %s kB, ours %s kB\n' "$node_rss" "$ours_rss"
echo
echo "ratios (shoehub-exporter against node_exporter; goal in brackets):"
for conns in 1 8; do
  tput=$(echo "$(median "$work/ours.$conns" 1) / $(median "$work/node.$conns" 1)" | bc -l)
  lat=$(echo "$(median "$work/ours.$conns" 3) / $(median "$work/node.$conns" 3)" | bc -l)
  cpu=$(echo "$(median "$work/node.$conns" 4) / $(median "$work/ours.$conns" 4)" | bc -l)
  printf '  %s connection(s): throughput %.1fx [>=10x on 1], p99 %.3f of its [<=0.1 on 1], CPU per scrape 1/%.1f [<=1/12]\n' \
    "$conns" "$tput" "$lat" "$cpu"
done
printf '  peak anonymous memory: %.0f%% of its [<=30%%]\n' "$(echo "$ours_anon * 100 / $node_anon" | bc -l)"
