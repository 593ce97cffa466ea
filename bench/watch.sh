#!/usr/bin/env bash
# Watch benchmark (a measurement, not a test): N loopback sshd hosts (default 100)
# watched by `rigger watch` at a 10 s interval for DURATION seconds (default 120,
# after a 30 s warm-up). Reports the controller's RSS (VmRSS, split into heap
# and file-backed pages, and the peak VmHWM) and its CPU use as % of one core
# over the measured window (utime+stime from /proc/PID/stat). Targets: < 50 MB
# RSS, < 2 % of one core.
#
# Memory is only meaningful with the in-memory rings full, which takes an hour
# of collection. With PREFILL=1 (the default) the bench first runs rigger until
# every series is in the state file, stops it, writes PREFILL_POINTS (default
# 730) past samples 10 s apart per series into the state file, and measures a
# second rigger that restores its rings from it: the rings hold what an hour
# (or, for ring sizes counted in samples, PREFILL_POINTS samples) of
# collection leaves. PREFILL=0 measures a fresh start.
#
#   bench/watch.sh [HOSTS] [DURATION]   RIGGER=path/to/rigger (default target/release/rigger)
#   INTERVAL=10 (the sampling interval in seconds; hosts count as down after 6 of them).
#   Every sample runs ~12 short processes on its host (df, timeout, virsh and zpool
#   where installed, sleep): 1,000 hosts at 10 s are over 1,000 process starts a
#   second, all on this machine's 2 cores. TESTHOSTS_HIDE="virsh zpool" (see
#   scripts/testhosts.sh) makes the hosts plain storage hosts (~7 processes a
#   sample); docs/scale.md says how the 1,000-host figure was taken.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh

hosts=${1:-100}
duration=${2:-120}
warmup=${WARMUP:-30}
prefill=${PREFILL:-1}
prefill_points=${PREFILL_POINTS:-730}
rigger=${RIGGER:-target/release/rigger}
port=${PORT:-$((20000 + $$ % 20000))}
interval=${INTERVAL:-10}

dir=$(mktemp -d "${TMPDIR:-/tmp}/rigger-watchbench.XXXXXX")
pid=
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    testhosts_stop
    rm -rf "$dir"
}
trap cleanup EXIT

testhosts_start "$hosts" "$dir"
cat >"$dir/watch.yml" <<CFG
interval: ${interval}s
host_down_after: $((interval * 6))s
services: [sshd]
rules:
  - alert: DiskAlmostFull
    metric: disk_used_pct
    threshold: "> 95"
    for: 5m
  - alert: DiskFillsSoon
    metric: disk_used_pct
    predict: {window: 30m, horizon: 4h, threshold: "> 100"}
  - alert: LoadAnomaly
    metric: load1
    anomaly: {z: 4, warmup: 30, min_stddev: 0.5}
  - alert: HighMemory
    metric: mem_used_pct
    threshold: "> 99"
route:
  receiver: hook
receivers:
  - name: hook
    webhook: {url: "http://127.0.0.1:9/none"}
CFG

start() {
    "$rigger" watch -c "$dir/watch.yml" -i "$dir/inventory.ini" --known-hosts "$dir/known_hosts" \
        --listen "127.0.0.1:$port" >>"$dir/watch.log" 2>&1 &
    pid=$!
}
series_in_db() { sqlite3 "$dir/watch.db" 'SELECT COUNT(DISTINCT series) FROM samples' 2>/dev/null || echo 0; }

if [[ "$prefill" == 1 ]]; then
    start
    # The first downsampled bucket is written within persist_every (60 s) of the
    # first samples; wait until the number of persisted series stops growing.
    deadline=$((SECONDS + 240)) last=-1
    while ((SECONDS < deadline)); do
        sleep 15
        n=$(series_in_db)
        ((n > 0 && n == last)) && break
        last=$n
    done
    kill "$pid" && wait "$pid" 2>/dev/null || true
    pid=
    now=$(date +%s)
    sqlite3 "$dir/watch.db" "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < $prefill_points)
        INSERT INTO samples(series, ts, value)
        SELECT s.series, $now - 10 * k.n, s.value FROM (SELECT series, MAX(value) AS value FROM samples GROUP BY series) s, k;
        DELETE FROM samples WHERE ts > $now - 5;"
    echo "prefilled $(series_in_db) series with $prefill_points samples each" >&2
fi

start
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
if [[ "$prefill" == 1 ]]; then
    # Once the rings are restored, leave the state file as a running rigger keeps
    # it (an hour of 60 s buckets), so the measurement does not include deleting
    # the pre-fill's extra rows.
    # PREFILL_THIN=0 leaves the rows as inserted (for 1,000 hosts: deleting
    # 25 million rows took longer than 10 minutes on 2 cores shared with the
    # hosts, while the watch waited for the write lock); use it with
    # PREFILL_POINTS no longer than an hour (360), which the watch's own
    # clean-up then ages out.
    for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
    if [[ "${PREFILL_THIN:-1}" == 1 ]]; then
        sqlite3 "$dir/watch.db" "PRAGMA busy_timeout=10000; DELETE FROM samples WHERE ts < $now - 3660 OR CAST(ts AS INTEGER) % 60 != 0;" >/dev/null
    fi
fi
sleep "$warmup"
fired0=$(grep -c 'Pending -> Firing' "$dir/watch.log" || true)
c0=$(cpu)
t0=$(date +%s.%N)
sleep "$duration"
c1=$(cpu)
t1=$(date +%s.%N)
status() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
fired=$(($(grep -c 'Pending -> Firing' "$dir/watch.log" || true) - fired0))
rss=$(status VmRSS) hwm=$(status VmHWM) anon=$(status RssAnon) file=$(status RssFile)
health=$(curl -s "http://127.0.0.1:$port/health" || true)
connected=$(grep -o '"connected":true' <<<"$health" | wc -l)
store=$(grep -o '"store":{[^}]*}' <<<"$health" || echo '?')
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rss="$rss" -v hwm="$hwm" \
    -v anon="$anon" -v file="$file" -v n="$hosts" -v con="$connected" -v st="$store" -v pre="$prefill" -v fired="$fired" 'BEGIN {
    printf "hosts=%d connected=%d prefilled=%s %s\n", n, con, pre, st
    printf "rss=%.1f MB (heap/anon %.1f MB, file-backed %.1f MB) peak=%.1f MB\n", rss / 1024, anon / 1024, file / 1024, hwm / 1024
    printf "cpu=%.2f %% of one core over %.0f s\n", 100 * (c1 - c0) / hz / (t1 - t0), t1 - t0
    printf "alerts that fired in the window: %d\n", fired
}'
uptime
