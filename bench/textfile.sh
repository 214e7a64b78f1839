#!/usr/bin/env bash
# The textfile collector at its default limits: shoehub-exporter against node_exporter,
# side by side, one run.
#
# The textfile directory is filled to this exporter's defaults (textfile.max_file_bytes
# per file, textfile.max_total_bytes in all) with the cheapest series a file can hold
# (`m{a="N"} 1`, 14 bytes): the most parsing and the largest answer the defaults allow.
# Both exporters read the same directory with nothing else on (node_exporter: its
# textfile collector; this one: its textfile collector and its own scrape statistics).
# Each scrape asks for gzip, as Prometheus does, one at a time. Reported per exporter:
# median and worst scrape time, CPU seconds per scrape, peak anonymous memory (RssAnon,
# sampled), anonymous memory after the scrapes, and the series served.
#
# Usage: bench/textfile.sh [SCRAPES]   (20)
set -euo pipefail
cd "$(dirname "$0")/.."
scrapes=${1:-20}

work=$(mktemp -d)
. bench/lib.sh
install_missing prometheus-node-exporter:prometheus-node-exporter curl:curl bc:bc readelf:binutils
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The defaults, as the shipped config states them (the packaging test holds it to the
# built-in defaults).
"$bin" generate docs --out "$work/docs" >/dev/null
defaults=$(sed -n '/^textfile:/,/^[a-z]/p' packaging/config.yml)
limit_of() { # KEY -> bytes
  local v
  v=$(awk -v k="$1:" '$1 == k {print $2}' <<<"$defaults")
  case $v in
    *MiB) echo $(( ${v%MiB} * 1024 * 1024 )) ;;
    *KiB) echo $(( ${v%KiB} * 1024 )) ;;
    *) echo "cannot read textfile.$1 from packaging/config.yml: $v" >&2; exit 1 ;;
  esac
}
file_bytes=$(limit_of max_file_bytes)
total_bytes=$(limit_of max_total_bytes)
mkdir -p "$work/textfile"
python3 - "$work/textfile" "$file_bytes" "$total_bytes" <<'PY'
import sys
root, per_file, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n, written = 0, 0
while written < total:
    budget = min(per_file, total - written)
    size = 0
    with open(f"{root}/f{n:03}.prom", "w") as f:
        i = 0
        while True:
            line = f'm{n}{{a="{i}"}} 1\n'
            if size + len(line) > budget:
                break
            f.write(line)
            size += len(line)
            i += 1
    written += size
    n += 1
    if size == 0:
        break
PY
series=$(cat "$work"/textfile/*.prom | wc -l)

node_port=$(free_port)
ours_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$work/textfile" >"$work/node.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
printf 'system:\n' >"$work/shoehub.yml"
for c in $(sed -n 's/^| \[`\([a-z_]*\)`\].*/\1/p' "$work/docs/collectors.md"); do
  printf '  %s:\n    enabled: false\n' "$c" >>"$work/shoehub.yml"
done
printf 'textfile:\n  directory: %s\njobs:\n  enabled: false\nupdates:\n  apt: false\nbackup:\n  enabled: false\nbackuppc:\n  enabled: false\n' \
  "$work/textfile" >>"$work/shoehub.yml"
"$bin" --config "$work/shoehub.yml" --web.listen-address "127.0.0.1:$ours_port" --log.level warn \
  >"$work/ours.log" 2>&1 &
ours_pid=$!; pids+=("$ours_pid")
anon_sampler "$node_pid" node
anon_sampler "$ours_pid" ours
wait_http "$node_port"
wait_http "$ours_port"

# measure NAME PID PORT -> "median_s worst_s cpu_s_per_scrape served"
measure() {
  local name=$1 pid=$2 port=$3 hz t0 t1 served
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  for _ in $(seq "$scrapes"); do
    curl -s -o "$work/$name.body.gz" -H 'Accept-Encoding: gzip' -w '%{time_total}\n' \
      "http://127.0.0.1:$port/metrics" >>"$work/$name.times"
  done
  t1=$(cpu_ticks "$pid")
  served=$(gzip -dc "$work/$name.body.gz" 2>/dev/null | grep -c '^m[0-9]' || true)
  echo "$(median "$work/$name.times" 1) $(sort -g "$work/$name.times" | tail -1) \
$(echo "($t1 - $t0) / $hz / $scrapes" | bc -l) $served"
}
node=$(measure node "$node_pid" "$node_port")
ours=$(measure ours "$ours_pid" "$ours_port")
sleep 1 # the sampler's last look
after() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }

echo
machine
echo "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $("$bin" --version | awk '{print $2}')"
echo "binary: $bin ($(linkage "$bin"), as scripts/build-release builds it)"
echo "textfiles: $(ls "$work/textfile" | wc -l) files, $series series, $(du -sb "$work/textfile" | awk '{print $1}') bytes (this exporter's defaults: $file_bytes per file, $total_bytes in all)"
printf '%-16s %10s %10s %12s %14s %14s %10s\n' exporter median_s worst_s cpu_s/scrape peak_anon_kB anon_after_kB served
read -r nm nw nc ns <<<"$node"
read -r om ow oc os <<<"$ours"
printf '%-16s %10.3f %10.3f %12.3f %14s %14s %10s\n' node_exporter "$nm" "$nw" "$nc" "$(peak_anon_kb node)" "$(after "$node_pid")" "$ns"
printf '%-16s %10.3f %10.3f %12.3f %14s %14s %10s\n' shoehub-exporter "$om" "$ow" "$oc" "$(peak_anon_kb ours)" "$(after "$ours_pid")" "$os"
echo
printf 'ratios (shoehub-exporter against node_exporter): scrape time 1/%.1f, CPU 1/%.1f, peak anonymous memory %.0f%%\n' \
  "$(echo "$nm / $om" | bc -l)" "$(echo "$nc / $oc" | bc -l)" \
  "$(echo "$(peak_anon_kb ours) * 100 / $(peak_anon_kb node)" | bc -l)"
