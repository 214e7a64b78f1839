# Shared by the benchmarks: package install, ports, wrk runs and medians.
# Source it after setting `secs` (seconds per wrk run) and `work` (a scratch directory).

# install_missing CMD:PACKAGE ... — installs the Debian packages of missing commands.
install_missing() {
  local need=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair##*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http PORT — until /metrics answers (10 s at most).
wait_http() {
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/metrics" >/dev/null && return 0; sleep 0.1; done
  echo "nothing answers on port $1" >&2
  return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Peak resident memory of every kind (VmHWM): code and shared libraries included.
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# anon_sampler PID NAME — in the background, samples the process's anonymous resident
# memory (RssAnon: heap and stacks, what the host really spends on it; the kernel keeps
# no peak of it) ten times a second while it lives, and keeps the highest in
# $work/NAME.anon. Its pid joins `pids`.
anon_sampler() {
  local pid=$1 out="$work/$2.anon"
  echo 0 >"$out"
  (
    max=0
    while [ -r "/proc/$pid/status" ]; do
      while read -r key value _; do
        if [ "$key" = RssAnon: ]; then
          if [ "$value" -gt "$max" ]; then max=$value; echo "$max" >"$out"; fi
          break
        fi
      done <"/proc/$pid/status" 2>/dev/null || break
      sleep 0.1
    done
  ) &
  pids+=("$!")
}
# peak_anon_kb NAME — the highest RssAnon anon_sampler saw, in kB.
peak_anon_kb() { cat "$work/$1.anon"; }

# run NAME PID PORT CONNS -> appends "rps p50_us p99_us cpu_s_per_1000" to $work/NAME.CONNS
run() {
  local name=$1 pid=$2 port=$3 conns=$4
  local t0 t1 out reqs rps p50 p99 hz
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  # As Prometheus scrapes: it asks for gzip.
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H 'Accept-Encoding: gzip' \
    "http://127.0.0.1:$port/metrics")
  t1=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(latency_us 50% <<<"$out")
  p99=$(latency_us 99% <<<"$out")
  echo "$rps $p50 $p99 $(echo "($t1 - $t0) / $hz * 1000 / $reqs" | bc -l)" >>"$work/$name.$conns"
}

# latency_us PERCENTILE < wrk output -> microseconds
latency_us() {
  awk -v p="$1" '$1 == p {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else if (v ~ /us$/) {sub(/us/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000000}; print v}'
}

# Median of a column of a results file.
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# linkage BINARY -> "statically linked" or "dynamically linked"
linkage() {
  if LC_ALL=C readelf -lW "$1" 2>/dev/null | grep -q 'INTERP'; then
    echo "dynamically linked"
  else
    echo "statically linked"
  fi
}

machine() {
  echo "machine: $(nproc) CPUs, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), kernel $(uname -r)"
}

# start_mariadb — a scratch MariaDB server in $work on a free loopback port (db_port),
# run as this user (db_user); its pid joins `pids`. Returns once it answers.
start_mariadb() {
  db_user=root
  [ "$(id -u)" = 0 ] || db_user=$(id -un)
  db_port=$(free_port)
  mariadb-install-db --no-defaults --datadir="$work/data" --user="$db_user" \
    --auth-root-authentication-method=socket --skip-test-db >"$work/install.log" 2>&1
  mariadbd --no-defaults --datadir="$work/data" --socket="$work/mysqld.sock" --port="$db_port" \
    --bind-address=127.0.0.1 --user="$db_user" --innodb-buffer-pool-size=64M \
    --log-error="$work/mysqld.log" &
  pids+=("$!")
  for _ in $(seq 100); do sql 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "MariaDB did not answer; see $work/mysqld.log" >&2
  return 1
}
sql() { mariadb --no-defaults --socket="$work/mysqld.sock" --user="$db_user" --batch -e "$1"; }

# exporter_account FILE — the exporters' account with the grants of docs/mysql.md and a random
# password, the shop's schema with two tables, and FILE: a my.cnf-style client file.
exporter_account() {
  local password
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  sql "CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY '$password';
       GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'127.0.0.1';
       CREATE DATABASE shoe_store_hub;
       CREATE TABLE shoe_store_hub.products (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100));
       CREATE TABLE shoe_store_hub.orders (id INT PRIMARY KEY AUTO_INCREMENT, product INT, KEY (product));"
  (umask 077; printf '[client]\nuser = exporter\npassword = "%s"\nhost = 127.0.0.1\nport = %s\n' \
    "$password" "$db_port" >"$1")
}
