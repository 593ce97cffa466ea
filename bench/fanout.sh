#!/usr/bin/env bash
# Fan-out benchmark (a measurement, not a test): N loopback sshd hosts, then for
# each host count
#   (a) the floor: OpenSSH `ssh HOST uname -r` to every host in parallel (fresh
#       connections, one client process per host);
#   (b) rigger: `rigger adhoc all -i INV -m command -a 'uname -r' -f N`;
# interleaved (floor, rigger, floor, rigger, ...), RUNS timed runs each after one
# checked warm-up. Reports the median wall time, the largest peak RSS of one
# controller process (for the floor: of one ssh client) and the median CPU
# (user + system of the controller and its children: for the floor, all N ssh
# clients) from /usr/bin/time -v, and the load average before each host count
# (the machine's 2 cores are shared: sshd on the hosts runs on them too).
#
#   bench/fanout.sh [HOSTS...]     default 50; e.g. bench/fanout.sh 10 100 250 500 1000
#   RIGGER=path/to/rigger (default target/release/rigger); RUNS=5;
#   TIMEOUT=rigger's connection timeout in seconds (`-T`, default 10 as
#   Ansible's). The floor's `ssh` waits as long as its handshake takes; on 2
#   cores, 1,000 hosts' sshd need ~20 ms of CPU each for a fresh handshake,
#   so with 1,000 at once some take longer than 10 s: use TIMEOUT=60 there.
#
# The largest count's hosts are started once; smaller counts use the first N.
# Hosts past 250 go into further 127.B.C.x ranges (scripts/testhosts.sh); the
# open-files limit is raised to the hard limit for rigger's N connections.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh

counts=("${@:-50}")
rigger=$(realpath -m "${RIGGER:-target/release/rigger}")
runs=${RUNS:-5}
timeout=${TIMEOUT:-10}
max=0
for n in "${counts[@]}"; do ((n > max)) && max=$n; done

ulimit -n "$(ulimit -Hn)"
if ((max * 3 + 100 > $(ulimit -n))); then
    echo "error: open-files limit $(ulimit -n) is too low for $max hosts (raise the hard limit)" >&2
    exit 1
fi
if [[ ! -x $rigger ]]; then
    echo "rigger: SKIPPED: $rigger not found; build it with: cargo build --profile dist"
    exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/rigger-fanout.XXXXXX")
cleanup() {
    testhosts_stop
    rm -rf "$dir"
}
trap cleanup EXIT

start=$(date +%s.%N)
testhosts_start "$max" "$dir"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$max" 'BEGIN { printf "started %d sshd hosts in %.2f s\n", n, e - s }'

for n in "${counts[@]}"; do
    head -n $((n + 1)) "$dir/inventory.ini" >"$dir/inventory-$n.ini"
    # The floor: one OpenSSH client per host, all at once; fails if any host fails.
    cat >"$dir/floor-$n.sh" <<FLOOR
#!/usr/bin/env bash
pids=()
for ((i = 1; i <= $n; i++)); do
    ssh -F "$dir/ssh_config" "host\$i" uname -r >/dev/null &
    pids+=(\$!)
done
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
FLOOR
    # rigger, with a client HOME holding the standard ~/.ssh/known_hosts and key.
    cat >"$dir/rigger-$n.sh" <<RIGGER
#!/usr/bin/env bash
HOME="$dir/home" exec "$rigger" adhoc all -i "$dir/inventory-$n.ini" -m command -a 'uname -r' -f $n -T $timeout
RIGGER
    chmod +x "$dir/floor-$n.sh" "$dir/rigger-$n.sh"
done

# One run under /usr/bin/time -v: "WALL_S MAXRSS_KB CPU_S"; fails if the command fails.
timed() {
    if ! /usr/bin/time -v -o "$dir/time.txt" "$1" >"$dir/out.txt" 2>&1; then
        echo "error: $1 failed:" >&2
        tail -5 "$dir/out.txt" >&2
        return 1
    fi
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; w = s }
        /Maximum resident set size/ { r = $2 } /User time/ { u = $2 } /System time/ { y = $2 }
        END { printf "%.3f %d %.2f\n", w, r, u + y }' "$dir/time.txt"
}
median() { sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }

printf '\n| hosts | floor wall | rigger wall | rigger / floor | rigger peak RSS | rigger CPU | floor CPU (N ssh) | load avg before |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in "${counts[@]}"; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    # Warm-up, checked: rigger must print every host's kernel release (all
    # hosts share this machine's kernel), or its time would mean nothing.
    "$dir/floor-$n.sh" || { echo "error: the floor failed at $n hosts" >&2; exit 1; }
    out=$("$dir/rigger-$n.sh" 2>&1) && rc=0 || rc=$?
    seen=$(grep -cF -- "$(uname -r)" <<<"$out" || true)
    if ((rc != 0 || seen < n)); then
        echo "error: rigger adhoc exited $rc and printed the kernel release for $seen of $n hosts:" >&2
        # The hosts that did not answer (not the last lines: those are
        # mostly hosts that did).
        grep -v -e '| CHANGED |' -e "$(uname -r)" <<<"$out" | head -40 >&2
        exit 1
    fi
    fw=() fc=() rw=() rc_=() rr=0
    for ((r = 0; r < runs; r++)); do
        read -r w _ c < <(timed "$dir/floor-$n.sh")
        fw+=("$w") fc+=("$c")
        read -r w k c < <(timed "$dir/rigger-$n.sh")
        rw+=("$w") rc_+=("$c")
        ((k > rr)) && rr=$k
    done
    f=$(printf '%s\n' "${fw[@]}" | median) g=$(printf '%s\n' "${rw[@]}" | median)
    cf=$(printf '%s\n' "${fc[@]}" | median) cr=$(printf '%s\n' "${rc_[@]}" | median)
    awk -v n="$n" -v f="$f" -v g="$g" -v rr="$rr" -v cr="$cr" -v cf="$cf" -v l="$load" -v runs="$runs" \
        'BEGIN { printf "| %d | %.2f s | %.2f s | %.2f | %.1f MiB | %.2f s | %.2f s | %s |\n", n, f, g, g / f, rr / 1024, cr, cf, l }'
    echo "  (medians of $runs; rigger walls: ${rw[*]}; floor walls: ${fw[*]})" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
