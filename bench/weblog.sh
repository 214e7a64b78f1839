#!/usr/bin/env bash
# Access logs: the weblog collector against mtail on the same combined log, one run.
#
# Generates a combined-format access log of LINES lines (default 1,000,000; a mix of
# methods and status codes, ~190 bytes a line), then:
# - mtail (Debian's) with a program that counts requests by status code, in its
#   one-shot mode (read the log from the start to its end, print, exit);
# - shoehub-exporter following the same log from its beginning, until
#   shoehub_weblog_lines_total reaches LINES.
# Reported: lines/s by wall clock and per CPU-second (the process's own user+system
# time from /proc), peak RSS; the exporter also on a log twice as long, to show that its
# memory does not grow with the file. Each is run ROUNDS times; medians are reported.
#
# Usage: bench/weblog.sh [LINES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
rounds=${2:-3}

work=$(mktemp -d)
secs=0
. bench/lib.sh
install_missing mtail:mtail curl:curl bc:bc time:time
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "generating $lines lines" >&2
awk -v n="$lines" 'BEGIN {
  split("GET GET GET GET GET GET POST POST HEAD PUT DELETE OPTIONS", m, " ");
  split("200 200 200 200 200 200 200 304 301 302 404 404 500 503 403", s, " ");
  srand(42);
  for (i = 0; i < n; i++) {
    printf "203.0.113.%d - - [25/Nov/2026:%02d:%02d:%02d +0000] \"%s /catalog/shoes/%d?size=%d HTTP/1.1\" %s %d \"https://shop.example/catalog\" \"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\"\n",
      i % 256, (i / 3600) % 24, (i / 60) % 60, i % 60, m[1 + int(rand() * 12)], i % 5000, 36 + i % 12, s[1 + int(rand() * 15)], 200 + int(rand() * 50000)
  }
}' >"$work/access.log"
cat "$work/access.log" "$work/access.log" >"$work/access2.log"
bytes=$(stat -c %s "$work/access.log")

mkdir "$work/progs"
cat >"$work/progs/status.mtail" <<'PROG'
counter http_requests_total by code
/^\S+ \S+ \S+ \[[^\]]+\] "[^"]*" (?P<code>\d{3}) / {
  http_requests_total[$code]++
}
PROG

# cpu_of PID -> CPU seconds of all its threads so far, from schedstat (nanoseconds)
cpu_of() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.6f", ns / 1e9}'; }
now() { date +%s.%N; }

# mtail_run -> "lines_per_s lines_per_cpu_s rss_kb"
mtail_run() {
  local t0 t1 out
  t0=$(now)
  /usr/bin/time -o "$work/time" -f '%U %S %M' mtail --progs "$work/progs" --logs "$work/access.log" \
    --one_shot --one_shot_format=prometheus --logtostderr=false >"$work/mtail.out" 2>/dev/null
  out=$(tail -1 "$work/time")
  t1=$(now)
  local counted
  counted=$(awk '/^http_requests_total\{/ {s += $2} END {print s+0}' "$work/mtail.out")
  [ "$counted" = "$lines" ] || { echo "mtail counted $counted of $lines lines" >&2; exit 1; }
  read -r u s rss <<<"$out"
  echo "$(echo "$lines / ($t1 - $t0)" | bc -l) $(echo "$lines / ($u + $s)" | bc -l) $rss"
}

# ours_run LOG LINES -> "lines_per_s lines_per_cpu_s rss_kb"
ours_run() {
  local log=$1 want=$2 port t0 t1 pid got
  port=$(free_port)
  printf 'weblogs:\n  - name: bench\n    path: %s\n    format: combined\n    from_beginning: true\n' "$log" >"$work/ours.yml"
  t0=$(now)
  "$bin" --config "$work/ours.yml" --web.listen-address "127.0.0.1:$port" --log.level warn >"$work/ours.log" 2>&1 &
  pid=$!; pids+=("$pid")
  while :; do
    got=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null | awk '/^shoehub_weblog_lines_total/ {print $2}')
    [ "${got:-0}" -ge "$want" ] 2>/dev/null && break
    sleep 0.005
  done
  t1=$(now)
  local cpu rss m
  cpu=$(cpu_of "$pid")
  rss=$(rss_kb "$pid")
  m=$(curl -s "http://127.0.0.1:$port/metrics")
  local errors requests
  errors=$(awk '/^shoehub_weblog_parse_errors_total/ {print $2}' <<<"$m")
  requests=$(awk '/^shoehub_http_requests_total\{/ {s += $2} END {print s+0}' <<<"$m")
  [ "$errors" = 0 ] && [ "$requests" = "$want" ] || { echo "exporter: $requests requests, $errors parse errors of $want lines" >&2; exit 1; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(echo "$want / ($t1 - $t0)" | bc -l) $(echo "$want / $cpu" | bc -l) $rss"
}

for r in $(seq "$rounds"); do
  mtail_run >>"$work/mtail"
  ours_run "$work/access.log" "$lines" >>"$work/ours"
  ours_run "$work/access2.log" $((2 * lines)) >>"$work/ours2"
  echo "round $r of $rounds done" >&2
done

echo
machine
echo "mtail $(mtail --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $("$bin" --version | awk '{print $2}')"
echo "log: $lines combined lines, $((bytes / 1000000)) MB; medians of $rounds runs"
printf '%-26s %14s %16s %10s\n' run lines/s lines/cpu-s peak_rss_kB
printf '%-26s %14.0f %16.0f %10.0f\n' "mtail" "$(median "$work/mtail" 1)" "$(median "$work/mtail" 2)" "$(median "$work/mtail" 3)"
printf '%-26s %14.0f %16.0f %10.0f\n' "shoehub-exporter" "$(median "$work/ours" 1)" "$(median "$work/ours" 2)" "$(median "$work/ours" 3)"
printf '%-26s %14.0f %16.0f %10.0f\n' "shoehub-exporter, 2x log" "$(median "$work/ours2" 1)" "$(median "$work/ours2" 2)" "$(median "$work/ours2" 3)"
echo
printf 'ratio (shoehub-exporter against mtail): %.1fx lines/s, %.1fx lines per CPU-second [goal >=10x]\n' \
  "$(echo "$(median "$work/ours" 1) / $(median "$work/mtail" 1)" | bc -l)" \
  "$(echo "$(median "$work/ours" 2) / $(median "$work/mtail" 2)" | bc -l)"
printf 'peak RSS with a log twice as long: %s kB against %s kB\n' "$(median "$work/ours2" 3)" "$(median "$work/ours" 3)"
