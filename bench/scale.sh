#!/usr/bin/env bash
# Cost against size: shoehub-exporter and node_exporter side by side while what they
# read grows, each with only the collector under test, in namespaces of their own.
#
# Dimensions:
#   mounts    N tmpfs mounts in a private mount namespace (with its own PID 1, so that
#             both read that namespace's /proc/1 mount table), one mount and one unmount
#             between every two scrapes (a host of containers changes its table all the
#             time), and again with no change (mounts_unchanged); node_exporter's
#             filesystem collector against this exporter's.
#   netdevs   N ifb devices in a private network namespace with its own sysfs (this
#             kernel has no dummy module); node_exporter's netclass and netdev against netclass and network.
#   textfile  one textfile of N series (`m{a="N"} 1`); the textfile collectors.
#   tables    N tables in one MariaDB schema; mysqld_exporter with the table sizes of
#             that schema (and its default collectors) against this exporter's mysql
#             collector reading them on every scrape (`table_sizes_interval: 0s`).
# For each N both exporters are started fresh and scraped one at a time (gzip), each in
# turn. Reported per exporter and N: CPU per scrape, median latency, peak anonymous
# memory (RssAnon) and open descriptors after the scrapes; then each exporter's growth
# exponent (the slope of CPU per scrape against N on a log-log scale, from the smallest
# N to the largest), and an SVG plot per dimension (both exporters, log-log) in OUT.
#
# Needs root (namespaces, mounts, devices). Usage:
#   bench/scale.sh [OUT] [SCRAPES]   (OUT: bench-scale/, 20 scrapes per exporter and N)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-bench-scale}")
scrapes=${2:-20}
mkdir -p "$out"

if [ "${SCALE_INSIDE:-}" = "" ]; then
  work=$(mktemp -d)
  . bench/lib.sh
  install_missing prometheus-node-exporter:prometheus-node-exporter curl:curl bc:bc \
    unshare:util-linux ip:iproute2 readelf:binutils mariadbd:mariadb-server \
    mariadb:mariadb-client prometheus-mysqld-exporter:prometheus-mysqld-exporter
  export PATH="$PATH:/usr/sbin"
  [ "$(id -u)" = 0 ] || { echo "bench/scale.sh needs root: namespaces, mounts and devices" >&2; exit 1; }
  bin=$(realpath "$(scripts/build-release)")
  "$bin" generate docs --out "$work/docs" >/dev/null
  export SCALE_BIN=$bin SCALE_WORK=$work SCALE_OUT=$out SCALE_SCRAPES=$scrapes
  : >"$out/results.txt"
  SCALE_INSIDE=mounts unshare --mount --propagation private --pid --fork --mount-proc "$0" "$@"
  SCALE_INSIDE=netdevs unshare --net --mount --propagation private "$0" "$@"
  SCALE_INSIDE=textfile "$0" "$@"
  SCALE_INSIDE=tables "$0" "$@"
  python3 bench/scale_plot.py "$out/results.txt" "$out"
  echo
  machine
  echo "node_exporter $(prometheus-node-exporter --version 2>&1 | awk 'NR==1 {print $3}'), shoehub-exporter $("$bin" --version | awk '{print $2}')"
  column -t "$out/results.txt"
  rm -rf "$work"
  exit 0
fi

# Inside one dimension's namespaces.
work=$SCALE_WORK
bin=$SCALE_BIN
scrapes=$SCALE_SCRAPES
pids=()
. bench/lib.sh
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
dim=$SCALE_INSIDE
dir="$work/$dim"
mkdir -p "$dir"
# node_exporter on the port `run` is given, its own collectors off but the tested ones.
node=(prometheus-node-exporter --collector.disable-defaults)
node_listen() { echo "--web.listen-address=127.0.0.1:$peer_port"; }

# A config with every host collector off but `only` (and the others off).
config() { # ONLY... -> prints a config
  local c
  echo "system:"
  for c in $(sed -n 's/^| \[`\([a-z_]*\)`\].*/\1/p' "$work/docs/collectors.md"); do
    if [[ " $* " != *" $c "* ]]; then printf '  %s:\n    enabled: false\n' "$c"; fi
  done
  printf 'jobs:\n  enabled: false\nupdates:\n  apt: false\nbackup:\n  enabled: false\nbackuppc:\n  enabled: false\n'
  if [[ " $* " != *" textfile "* ]]; then printf 'textfile:\n  enabled: false\n'; else printf 'textfile:\n  directory: %s\n' "$dir/textfile"; fi
  printf '%s' "${extra_yaml:-}"
}

between() { :; } # what changes between two scrapes (a dimension sets it)

# The CPU time of every thread of PID, in nanoseconds (schedstat's first field: finer
# than the clock ticks of /proc/PID/stat, which a millisecond of work does not reach).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s}'; }

# measure NAME PID PORT N -> appends "dim exporter N cpu_ms lat_ms anon_kB fds" to results
measure() {
  local name=$1 pid=$2 port=$3 n=$4 t0 t1 i
  : >"$dir/$name.times"
  curl -s -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" # warm
  t0=$(cpu_ns "$pid")
  for i in $(seq "$scrapes"); do
    between "$i"
    curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total}\n' \
      "http://127.0.0.1:$port/metrics" >>"$dir/$name.times"
  done
  t1=$(cpu_ns "$pid")
  sleep 0.3 # the sampler's last look
  printf '%s %s %s %.3f %.3f %s %s\n' "$dim" "$name" "$n" \
    "$(echo "($t1 - $t0) / 1000000 / $scrapes" | bc -l)" \
    "$(echo "$(median "$dir/$name.times" 1) * 1000" | bc -l)" \
    "$(peak_anon_kb "$name")" "$(ls "/proc/$pid/fd" | wc -l)" >>"$SCALE_OUT/results.txt"
}

# run N PEER PEER_COMMAND... -- OUR_COLLECTORS... (the peer listens on $peer_port)
run() {
  local n=$1 peer=$2 peer_cmd=() ours=() ours_port node_pid ours_pid
  shift 2
  while [ "$1" != -- ]; do peer_cmd+=("$1"); shift; done
  shift
  ours=("$@")
  ours_port=$(free_port)
  "${peer_cmd[@]}" >"$dir/peer.log" 2>&1 &
  node_pid=$!; pids+=("$node_pid")
  local node_port=$peer_port
  config "${ours[@]}" >"$dir/shoehub.yml"
  "$bin" --config "$dir/shoehub.yml" --web.listen-address "127.0.0.1:$ours_port" --log.level warn \
    >"$dir/ours.log" 2>&1 &
  ours_pid=$!; pids+=("$ours_pid")
  anon_sampler "$node_pid" "$peer"
  anon_sampler "$ours_pid" shoehub-exporter
  wait_http "$node_port"; wait_http "$ours_port"
  measure "$peer" "$node_pid" "$node_port" "$n"
  measure shoehub-exporter "$ours_pid" "$ours_port" "$n"
  kill "$node_pid" "$ours_pid"; wait "$node_pid" "$ours_pid" 2>/dev/null || true
  echo "$dim: $n done" >&2
}

case $dim in
  mounts)
    mount -t tmpfs scale "$dir"
    mkdir -p "$dir/m" "$dir/churn"
    churn() { mount -t tmpfs churn "$dir/churn"; umount "$dir/churn"; }
    have=0
    for n in 100 400 1600 6400; do
      while [ "$have" -lt "$n" ]; do
        mkdir -p "$dir/m/$have"; mount -t tmpfs "m$have" "$dir/m/$have"; have=$((have + 1))
      done
      # With a change before every scrape, then with none.
      for dim in mounts mounts_unchanged; do
        if [ "$dim" = mounts ]; then between() { churn; }; else between() { :; }; fi
        peer_port=$(free_port)
        run "$n" node_exporter "${node[@]}" "$(node_listen)" --collector.filesystem \
          --collector.filesystem.mount-points-exclude='^/(dev|proc|sys)($|/)' -- filesystem
      done
    done
    ;;
  netdevs)
    # The namespace's own sysfs, so that both read its devices' attributes.
    mount -t sysfs sysfs /sys
    ip link set lo up
    have=0
    for n in 100 300 1000; do
      while [ "$have" -lt "$n" ]; do ip link add "ifb$have" type ifb; have=$((have + 1)); done
      peer_port=$(free_port)
      run "$n" node_exporter "${node[@]}" "$(node_listen)" --collector.netclass --collector.netdev -- netclass network
    done
    ;;
  textfile)
    mkdir -p "$dir/textfile"
    for n in 1000 10000 100000; do
      python3 -c "
import sys
with open('$dir/textfile/scale.prom', 'w') as f:
    for i in range($n):
        f.write('m{a=\"%d\"} 1\n' % i)
"
      peer_port=$(free_port)
      run "$n" node_exporter "${node[@]}" "$(node_listen)" --collector.textfile \
        "--collector.textfile.directory=$dir/textfile" -- textfile
    done
    ;;
  tables)
    work=$dir start_mariadb
    work=$dir exporter_account "$dir/exporter.cnf"
    work=$dir sql "CREATE DATABASE scale"
    extra_yaml=$(printf 'mysql:\n  defaults_file: %s\n  schemas: [scale]\n  table_sizes_interval: 0s\n' "$dir/exporter.cnf")
    have=0
    for n in 100 400 1600; do
      stmts=""
      while [ "$have" -lt "$n" ]; do
        stmts+="CREATE TABLE scale.t$have (id INT PRIMARY KEY, v VARCHAR(20));"
        have=$((have + 1))
      done
      work=$dir sql "$stmts"
      peer_port=$(free_port)
      # mysqld_exporter with the table sizes of the same schema, as this exporter reads
      # them; everything else of both at their defaults.
      run "$n" mysqld_exporter prometheus-mysqld-exporter --config.my-cnf="$dir/exporter.cnf" \
        --web.listen-address="127.0.0.1:$peer_port" --collect.info_schema.tables \
        --collect.info_schema.tables.databases=scale -- none
    done
    ;;
esac
