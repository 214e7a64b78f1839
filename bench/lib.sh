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
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# run NAME PID PORT CONNS -> appends "rps p50_us p99_us cpu_s_per_1000" to $work/NAME.CONNS
run() {
  local name=$1 pid=$2 port=$3 conns=$4
  local t0 t1 out reqs rps p50 p99 hz
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/metrics")
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
