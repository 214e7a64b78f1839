#!/usr/bin/env bash
# Soak: every collector on, sources that change all the time, a steady scrape rate for a
# long time; reports the exporter's resident memory and open file descriptors over time.
#
# Every collector is on: the host ones, MySQL (a MariaDB started here, with the shop
# querying it), two access logs being written and rotated, textfiles rewritten, a job
# run every few seconds, apt asked, backups listed. wrk scrapes at a fixed rate. Every
# minute a line gives the time, RSS (VmRSS) and the open descriptors (/proc/PID/fd).
# At the end: growth after warm-up (the first quarter of the run), which the goals are
# about: RSS grows less than 1 MB, the descriptor count does not change.
#
# Usage: bench/soak.sh [MINUTES] [SCRAPES_PER_SECOND]     (defaults: 30 minutes, 50/s)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
rate=${2:-50}
secs=1

work=$(mktemp -d)
. bench/lib.sh
install_missing mariadbd:mariadb-server mariadb:mariadb-client wrk:wrk curl:curl
export PATH="$PATH:/usr/sbin"
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_mariadb
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
sql "CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY '$password';
     GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'127.0.0.1';
     CREATE DATABASE shoe_store_hub;
     CREATE TABLE shoe_store_hub.orders (id INT PRIMARY KEY AUTO_INCREMENT, qty INT);"
(umask 077; printf '%s\n' "$password" >"$work/mysql.password")

mkdir -p "$work/textfile" "$work/state" "$work/dest" "$work/logs"
: >"$work/logs/a.log"
: >"$work/logs/b.log"
port=$(free_port)
cat >"$work/shoehub.yml" <<EOF
mysql:
  url: mysql://exporter@127.0.0.1:$db_port/shoe_store_hub
  password_file: $work/mysql.password
textfile:
  directory: $work/textfile
jobs:
  state_dir: $work/state
backup:
  destination: $work/dest
weblogs:
  - name: a
    path: $work/logs/a.log
  - name: b
    path: $work/logs/b.log
updates:
  apt_interval: 1m
EOF
"$bin" --config "$work/shoehub.yml" --web.listen-address "127.0.0.1:$port" --log.level warn \
  >"$work/ours.log" 2>&1 &
pid=$!; pids+=("$pid")
wait_http "$port"

# The host changing underneath: logs written and rotated, textfiles rewritten, jobs
# run, the shop querying MariaDB.
(
  i=0
  while :; do
    i=$((i + 1))
    for l in a b; do
      for _ in $(seq 20); do
        echo "203.0.113.$((i % 250)) - - [30/Nov/2026:10:00:00 +0000] \"GET /shoes/$i HTTP/1.1\" $((200 + (i % 3) * 100)) $i \"-\" \"soak\"" >>"$work/logs/$l.log"
      done
    done
    if [ $((i % 50)) -eq 0 ]; then
      mv "$work/logs/a.log" "$work/logs/a.log.1"; : >"$work/logs/a.log"
      mv "$work/logs/b.log" "$work/logs/b.log.1"; : >"$work/logs/b.log"
    fi
    printf '# TYPE site_orders gauge\nsite_orders{shop="main"} %s\n' "$i" >"$work/textfile/.orders.tmp"
    mv "$work/textfile/.orders.tmp" "$work/textfile/orders.prom"
    if [ $((i % 20)) -eq 0 ]; then
      "$bin" job run soak --config "$work/shoehub.yml" -- sh -c 'echo working; sleep 0.2' >/dev/null 2>&1 || true
    fi
    sql "INSERT INTO shoe_store_hub.orders (qty) VALUES ($i); SELECT COUNT(*) FROM shoe_store_hub.orders" >/dev/null
    sleep 0.2
  done
) &
pids+=("$!")

wrk_rate() {
  # wrk has no rate option: one connection, one request per 1/rate s, from a Lua script.
  cat >"$work/pace.lua" <<EOF
local gap = 1000 / $rate
function delay() return gap end
EOF
  wrk -t1 -c1 -d"${minutes}m" -s "$work/pace.lua" "http://127.0.0.1:$port/metrics" >"$work/wrk.out" 2>&1
}
wrk_rate &
wrk_pid=$!; pids+=("$wrk_pid")

echo "minute rss_kb open_fds"
samples=()
for m in $(seq 0 "$minutes"); do
  [ "$m" -gt 0 ] && sleep 60
  kill -0 "$pid" 2>/dev/null || { echo "the exporter died" >&2; cat "$work/ours.log" >&2; exit 1; }
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  echo "$m $rss $fds"
  samples+=("$m $rss $fds")
done
wait "$wrk_pid" || true
echo
machine
echo "shoehub-exporter $("$bin" --version | awk '{print $2}'), $minutes minutes at $rate scrapes/s"
awk '/Requests\/sec/ {print "scrapes/s achieved: " $2} /requests in/ {print "scrapes: " $1}' "$work/wrk.out"
warm=$((minutes / 4))
printf '%s\n' "${samples[@]}" | awk -v warm="$warm" '
  $1 == warm { r0 = $2 }
  $1 >= warm { r1 = $2; n[$3]++; if (n[$3] > best) { best = n[$3]; mode = $3 }
               if ($3 > fmax) fmax = $3; if (fmin == "" || $3 < fmin) fmin = $3 }
  END {
    printf "after warm-up (minute %d on): RSS %+d kB (goal < 1024); open fds %d in most samples, %d..%d in all (goal: constant; a sample taken while a scrape, a job or a rotation is under way counts its files)\n", warm, r1 - r0, mode, fmin, fmax
  }'
echo "warnings and errors logged: $(grep -c 'WARN\|ERROR' "$work/ours.log" || true)"
