#!/usr/bin/env bash
# Fan-out benchmark (a measurement, not a test): N loopback sshd hosts (default 50),
# then the wall time of
#   (a) the floor: OpenSSH `ssh HOST uname -r` to every host in parallel;
#   (b) rigger: `rigger adhoc all -i INV -m command -a 'uname -r' -f N`.
# Uses hyperfine when installed, else the median of 5 timed runs (after 1 warm-up).
#
#   bench/fanout.sh [HOSTS]        RIGGER=path/to/rigger (default target/release/rigger)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh

hosts=${1:-50}
rigger=${RIGGER:-target/release/rigger}
runs=5

dir=$(mktemp -d "${TMPDIR:-/tmp}/rigger-fanout.XXXXXX")
cleanup() {
    testhosts_stop
    rm -rf "$dir"
}
trap cleanup EXIT

start=$(date +%s.%N)
testhosts_start "$hosts" "$dir"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$hosts" 'BEGIN { printf "started %d sshd hosts in %.2f s\n", n, e - s }'

# (a) The floor: one OpenSSH client per host, all at once; fails if any host fails.
cat >"$dir/floor.sh" <<FLOOR
#!/usr/bin/env bash
pids=()
for ((i = 1; i <= $hosts; i++)); do
    ssh -F "$dir/ssh_config" "host\$i" uname -r >/dev/null &
    pids+=(\$!)
done
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
FLOOR
chmod +x "$dir/floor.sh"

# (b) rigger, with a client HOME holding the standard ~/.ssh/known_hosts and key.
cat >"$dir/rigger.sh" <<RIGGER
#!/usr/bin/env bash
HOME="$dir/home" exec "$(realpath -m "$rigger")" adhoc all -i "$dir/inventory.ini" -m command -a 'uname -r' -f $hosts >/dev/null
RIGGER
chmod +x "$dir/rigger.sh"

# Median wall time of $runs runs of a command (after one warm-up run that must succeed).
median_time() {
    local cmd=$1 i s e times=()
    "$cmd" || return 1
    for ((i = 0; i < runs; i++)); do
        s=$(date +%s.%N)
        "$cmd" || return 1
        e=$(date +%s.%N)
        times+=("$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f", e - s }')")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "%.3f s (median of %d; min %.3f, max %.3f)\n", t[int((NR + 1) / 2)], NR, t[1], t[NR] }'
}

measure() {
    local label=$1 cmd=$2
    if command -v hyperfine >/dev/null; then
        hyperfine --warmup 1 --runs "$runs" --command-name "$label" "$cmd"
    else
        local result
        if result=$(median_time "$cmd"); then
            echo "$label: $result"
        else
            echo "$label: FAILED (see the error above)"
            return 1
        fi
    fi
}

# Both sides share the machine's 2 cores with whatever else runs: say how busy it was.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
measure "openssh floor ($hosts x ssh uname -r)" "$dir/floor.sh"

echo
if [[ ! -x $rigger ]]; then
    echo "rigger: SKIPPED: $rigger not found; build it with: cargo build --release"
    exit 1
fi
# Check up front that this build has the command at all, so a missing feature
# reads as such and not as a slow or failing run.
if ! "$rigger" adhoc --help >/dev/null 2>&1; then
    echo "rigger: NOT SUPPORTED YET: '$rigger adhoc --help' fails; output:"
    "$rigger" adhoc --help 2>&1 | head -5 | sed 's/^/  /'
    exit 1
fi
# One checked run: it must succeed and print every host's kernel release
# (all hosts share this machine's kernel), or its time would mean nothing.
out=$(HOME="$dir/home" "$rigger" adhoc all -i "$dir/inventory.ini" -m command -a 'uname -r' -f "$hosts" 2>&1) && rc=0 || rc=$?
seen=$(grep -cF -- "$(uname -r)" <<<"$out" || true)
if ((rc != 0 || seen < hosts)); then
    echo "rigger: FAILED: 'rigger adhoc all -i INV -m command -a \"uname -r\" -f $hosts' exited $rc and printed the kernel release for $seen of $hosts hosts; output:"
    tail -20 <<<"$out" | sed 's/^/  /'
    exit 1
fi
measure "rigger adhoc ($hosts hosts, -f $hosts)" "$dir/rigger.sh"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
