#!/usr/bin/env bash
# Backup and restore overhead: `shoehub-exporter backup run` against a plain
# `mariadb-dump … | zstd > file` of the same database, and `backup restore --as`
# against `zstd -dc file | mariadb` into a new database, in one run.
#
# One MariaDB started in a scratch directory with a shop-like database of ROWS review
# rows (~200 bytes each) plus products and orders. Both dump it with the same options
# (--single-transaction --routines --triggers --events --hex-blob --quick) and zstd
# level 3; the exporter also hashes, counts rows, writes the manifest, fsyncs and renames
# (backup.paths is empty here, so only the database is compared). The restore also checks
# every checksum first and compares the restored database with the manifest (tables and
# their rows, views, routines, triggers, events) after. Wall time of each, alternating,
# ROUNDS times; medians and the overheads are printed.
#
# Usage: bench/backup.sh [ROWS] [ROUNDS]     (defaults: 2,000,000 rows, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000000}
rounds=${2:-3}

work=$(mktemp -d)
secs=0
. bench/lib.sh
install_missing mariadbd:mariadb-server mariadb:mariadb-client zstd:zstd bc:bc
export PATH="$PATH:/usr/sbin"
bin=$(scripts/build-release)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

user=root
[ "$(id -u)" = 0 ] || user=$(id -un)
mariadb-install-db --no-defaults --datadir="$work/data" --user="$user" \
  --auth-root-authentication-method=socket --skip-test-db >"$work/install.log" 2>&1
mariadbd --no-defaults --datadir="$work/data" --socket="$work/mysqld.sock" --skip-networking \
  --user="$user" --innodb-buffer-pool-size=256M --log-error="$work/mysqld.log" &
pids+=("$!")
sql() { mariadb --no-defaults --socket="$work/mysqld.sock" --user="$user" --batch -e "$1"; }
for _ in $(seq 100); do sql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
echo "loading $rows rows" >&2
sql "CREATE DATABASE shoe_store_hub;
     CREATE TABLE shoe_store_hub.products (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), price DECIMAL(8,2));
     CREATE TABLE shoe_store_hub.reviews (id INT PRIMARY KEY AUTO_INCREMENT, product INT, stars TINYINT, body TEXT, KEY (product));
     INSERT INTO shoe_store_hub.products (name, price) SELECT CONCAT('shoe ', seq), seq % 200 FROM shoe_store_hub.seq_1_to_5000;
     INSERT INTO shoe_store_hub.reviews (product, stars, body)
       SELECT seq % 5000 + 1, seq % 5 + 1, CONCAT('Review ', seq, ': ', REPEAT(SUBSTRING(MD5(seq), 1, 16), 10))
       FROM shoe_store_hub.seq_1_to_${rows};"
(umask 077; printf '[client]\nuser = %s\nsocket = %s\n' "$user" "$work/mysqld.sock" >"$work/backup.cnf")
printf 'jobs:\n  state_dir: %s\nbackup:\n  destination: %s\n  paths: []\n  databases: [shoe_store_hub]\n  keep_min: 1\n  mysql:\n    defaults_file: %s\n' \
  "$work/state" "$work/dest" "$work/backup.cnf" >"$work/config.yml"
dump=$(command -v mariadb-dump || command -v mysqldump)

now() { date +%s.%N; }
for r in $(seq "$rounds"); do
  t0=$(now)
  "$dump" --defaults-extra-file="$work/backup.cnf" --single-transaction --routines --triggers --events \
    --hex-blob --quick --default-character-set=utf8mb4 shoe_store_hub | zstd -3 -q >"$work/plain.sql.zst"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l)" >>"$work/plain"
  rm -rf "$work/dest"
  t0=$(now)
  "$bin" backup run --config "$work/config.yml" 2>/dev/null
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l)" >>"$work/ours"
  sql "CREATE DATABASE plain_restore"
  t0=$(now)
  zstd -dc -q "$work/plain.sql.zst" | mariadb --defaults-extra-file="$work/backup.cnf" plain_restore
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l)" >>"$work/plain_restore"
  sql "DROP DATABASE plain_restore"
  t0=$(now)
  "$bin" backup restore --database shoe_store_hub --as shoe_store_hub_restored \
    --config "$work/config.yml" >/dev/null 2>&1
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l)" >>"$work/ours_restore"
  sql "DROP DATABASE shoe_store_hub_restored"
  echo "round $r of $rounds done" >&2
done
size=$(stat -c %s "$work/plain.sql.zst")
ours_size=$(stat -c %s "$work"/dest/*/db-shoe_store_hub.sql.zst)

echo
machine
echo "$("$dump" --version | sed 's/, for .*//'); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1); shoehub-exporter $("$bin" --version | awk '{print $2}')"
echo "database: $rows reviews; dump compressed: $((size / 1000000)) MB plain, $((ours_size / 1000000)) MB ours; medians of $rounds runs"
p=$(median "$work/plain" 1)
o=$(median "$work/ours" 1)
printf '%-36s %8.2f s\n' "mariadb-dump | zstd -3 > file" "$p"
printf '%-36s %8.2f s\n' "shoehub-exporter backup run" "$o"
printf 'overhead: %.1f%% [goal < 10%%]\n' "$(echo "($o - $p) * 100 / $p" | bc -l)"
pr=$(median "$work/plain_restore" 1)
or=$(median "$work/ours_restore" 1)
printf '%-36s %8.2f s\n' "zstd -dc file | mariadb" "$pr"
printf '%-36s %8.2f s\n' "shoehub-exporter backup restore --as" "$or"
printf 'restore overhead: %.1f%% [goal <= 10%%]\n' "$(echo "($or - $pr) * 100 / $pr" | bc -l)"
