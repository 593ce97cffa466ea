#!/usr/bin/env bash
# Start N loopback test hosts with the benchmark's inventories and keep them up
# (for profiling and debugging one tool by hand) until this script is killed.
#
#   bench/hosts.sh N DIR     then e.g.:
#   cd bench/workload && RIGGER_DEBUG_ROUNDTRIPS=2 ../../target/release/rigger run \
#       -i DIR/bench/inventory.ini --known-hosts DIR/known_hosts site.yml
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh
n=$1 dir=$2
mkdir -p "$dir"
sleeper=
trap 'testhosts_stop; [[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null' EXIT
trap 'exit 0' TERM INT
testhosts_start "$n" "$dir"
/usr/bin/python3 bench/bench.py inventories --hosts-dir "$dir"
echo "ready: $n hosts in $dir"
while :; do
    sleep 3600 &
    sleeper=$!
    wait "$sleeper" || true
done
