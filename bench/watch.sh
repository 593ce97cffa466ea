#!/usr/bin/env bash
# Watch benchmark (a measurement, not a test): N loopback sshd hosts (default 100)
# watched by `rigger watch` at a 10 s interval for DURATION seconds (default 120,
# after a 30 s warm-up). Reports the controller's peak/final RSS (VmHWM/VmRSS)
# and its CPU use as % of one core over the measured window (utime+stime from
# /proc/PID/stat). Targets: < 50 MB RSS, < 2 % of one core.
#
#   bench/watch.sh [HOSTS] [DURATION]   RIGGER=path/to/rigger (default target/release/rigger)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh

hosts=${1:-100}
duration=${2:-120}
warmup=${WARMUP:-30}
rigger=${RIGGER:-target/release/rigger}

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
interval: 10s
host_down_after: 60s
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

"$rigger" watch -c "$dir/watch.yml" -i "$dir/inventory.ini" --known-hosts "$dir/known_hosts" >"$dir/watch.log" 2>&1 &
pid=$!
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
sleep "$warmup"
connected=$(grep -c ': connected' "$dir/watch.log" || true)
c0=$(cpu)
t0=$(date +%s.%N)
sleep "$duration"
c1=$(cpu)
t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
series=$(sqlite3 "$dir/watch.db" 'SELECT COUNT(DISTINCT series) FROM samples' 2>/dev/null || echo "?")
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rss="$rss" -v hwm="$hwm" \
    -v n="$hosts" -v con="$connected" -v s="$series" 'BEGIN {
    printf "hosts=%d connected=%d persisted_series=%s\n", n, con, s
    printf "rss=%.1f MB peak=%.1f MB\n", rss / 1024, hwm / 1024
    printf "cpu=%.2f %% of one core over %.0f s\n", 100 * (c1 - c0) / hz / (t1 - t0), t1 - t0
}'
