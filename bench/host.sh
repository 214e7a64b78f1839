#!/usr/bin/env bash
# Host collectors: shoehub-exporter against node_exporter, side by side, one run.
#
# Both serve the same collectors (node_exporter: cpu, meminfo, filesystem, netdev,
# diskstats, loadavg, stat, time; shoehub-exporter: cpu, memory, filesystem, network,
# disk, host without PSI). Each round loads one, then the other, with wrk on loopback:
# first one connection, then eight. Reported per exporter: scrapes/s, p99 latency, CPU
# seconds per 1,000 scrapes (from /proc/PID/stat), peak RSS (VmHWM); then the ratios.
#
# Usage: bench/host.sh [ROUNDS] [SECONDS_PER_RUN]     (defaults: 3 rounds of 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}

need=()
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v bc >/dev/null 2>&1 || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --locked -q

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
node_port=$(free_port)
ours_port=$(free_port)

prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" \
  --collector.disable-defaults --collector.cpu --collector.meminfo --collector.filesystem \
  --collector.netdev --collector.diskstats --collector.loadavg --collector.stat --collector.time \
  >"$work/node.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
printf 'system:\n  host:\n    pressure: false\n' >"$work/shoehub.yml"
target/release/shoehub-exporter --config "$work/shoehub.yml" \
  --web.listen-address "127.0.0.1:$ours_port" --log.level warn >"$work/ours.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
for port in "$node_port" "$ours_port"; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run NAME PID PORT CONNS -> appends "rps p99_us cpu_s_per_1000" to $work/NAME.CONNS
run() {
  local name=$1 pid=$2 port=$3 conns=$4
  local t0 t1 out reqs rps p99
  t0=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/metrics")
  t1=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else if (v ~ /us$/) {sub(/us/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000000}; print v}' <<<"$out")
  echo "$rps $p99 $(echo "($t1 - $t0) / $hz * 1000 / $reqs" | bc -l)" >>"$work/$name.$conns"
}

for r in $(seq "$rounds"); do
  for conns in 1 8; do
    run node "$node_pid" "$node_port" "$conns"
    run ours "$ours_pid" "$ours_port" "$conns"
  done
  echo "round $r of $rounds done" >&2
done

rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
node_rss=$(rss_kb "$node_pid")
ours_rss=$(rss_kb "$ours_pid")

# Median of a column of a results file.
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "machine: $(nproc) CPUs, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r)"
echo "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $(target/release/shoehub-exporter --version | awk '{print $2}')"
echo "medians of $rounds alternating runs of ${secs}s each"
printf '%-14s %-6s %12s %12s %18s\n' exporter conns scrapes/s p99_us cpu_s/1000scrapes
for conns in 1 8; do
  for name in node ours; do
    printf '%-14s %-6s %12.0f %12.0f %18.3f\n' "$name" "$conns" \
      "$(median "$work/$name.$conns" 1)" "$(median "$work/$name.$conns" 2)" "$(median "$work/$name.$conns" 3)"
  done
done
printf 'peak RSS: node %s kB, ours %s kB\n' "$node_rss" "$ours_rss"
echo
echo "ratios (shoehub-exporter against node_exporter; goal in brackets):"
for conns in 1 8; do
  tput=$(echo "$(median "$work/ours.$conns" 1) / $(median "$work/node.$conns" 1)" | bc -l)
  lat=$(echo "$(median "$work/ours.$conns" 2) / $(median "$work/node.$conns" 2)" | bc -l)
  cpu=$(echo "$(median "$work/node.$conns" 3) / $(median "$work/ours.$conns" 3)" | bc -l)
  printf '  %s connection(s): throughput %.1fx [>=10x on 1], p99 %.3f of its [<=0.1 on 1], CPU per scrape 1/%.1f [<=1/12]\n' \
    "$conns" "$tput" "$lat" "$cpu"
done
printf '  peak RSS: %.0f%% of its [<=30%%]\n' "$(echo "$ours_rss * 100 / $node_rss" | bc -l)"
