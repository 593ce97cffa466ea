#!/usr/bin/env bash
# Inventory benchmark (a measurement, not a test; issue #24): generated inventories
# of N hosts in 100 groups (under ten dc groups and one `fleet` group, every group
# with a group_vars file, three variables per host; bench/geninv.py), as INI, YAML
# and a dynamic inventory script. For each it times
#   list-hosts   rigger run -i INV --list-hosts play.yml
#   list         rigger inventory -i INV --list  (output to /dev/null)
#   first-task   rigger run -i INV play.yml      (a run_once debug, then meta: end_play)
# and reports the median wall time and the largest peak RSS of REPS runs
# (/usr/bin/time -v), with the load average before each row (the machine is shared).
#
#   bench/inventory.sh [SIZES] [REPS]      default "10000 100000" 3
#   RIGGER=path/to/rigger (default target/release/rigger); FORMATS="ini yaml script";
#   COMMANDS="list-hosts list first-task"
#   KEEP=DIR keeps (and reuses) the generated inventories in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${1:-10000 100000}
reps=${2:-3}
formats=${FORMATS:-ini yaml script}
commands=${COMMANDS:-list-hosts list first-task}
rigger=$(realpath -m "${RIGGER:-target/release/rigger}")
[[ -x $rigger ]] || { echo "error: $rigger not found (cargo build --release)" >&2; exit 1; }

if [[ -n ${KEEP:-} ]]; then
    dir=$KEEP
    mkdir -p "$dir"
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rigger-invbench.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
fi

inv_path() {
    case $1 in
    ini) echo "$2/ini/hosts.ini" ;;
    yaml) echo "$2/yaml/hosts.yml" ;;
    script) echo "$2/script/inventory.py" ;;
    esac
}

# One timed run: prints "WALL_S MAXRSS_KB"; fails loudly if the command fails.
timed() {
    local out=$dir/time.txt
    if ! /usr/bin/time -v -o "$out" "$@" >"$dir/stdout.txt" 2>"$dir/stderr.txt"; then
        echo "error: failed: $*" >&2
        tail -5 "$dir/stderr.txt" >&2
        return 1
    fi
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; w = s }
        /Maximum resident set size/ { r = $2 }
        END { printf "%.3f %d\n", w, r }' "$out"
}

printf '| hosts | source | command | wall (median of %d) | peak RSS | load avg before |\n' "$reps"
printf '|---:|---|---|---:|---:|---:|\n'
for n in $sizes; do
    d=$dir/n$n
    [[ -e $d/play.yml ]] || /usr/bin/python3 bench/geninv.py "$n" "$d"
    for f in $formats; do
        inv=$(inv_path "$f" "$d")
        for what in $commands; do
            case $what in
            list-hosts) cmd=("$rigger" run -i "$inv" --list-hosts "$d/play.yml") ;;
            list) cmd=("$rigger" inventory -i "$inv" --list) ;;
            first-task) cmd=("$rigger" run -i "$inv" "$d/play.yml") ;;
            esac
            "${cmd[@]}" >"$dir/check.txt" 2>&1 || { echo "error: ${cmd[*]} failed:" >&2; tail -5 "$dir/check.txt" >&2; exit 1; }
            case $what in
            list-hosts) grep -q "hosts ($n)" "$dir/check.txt" || { echo "error: --list-hosts did not list $n hosts" >&2; head -3 "$dir/check.txt" >&2; exit 1; } ;;
            list) [[ $(grep -c '"serial": "SN' "$dir/check.txt") == "$n" ]] || { echo "error: inventory --list did not show $n hosts' vars" >&2; exit 1; } ;;
            first-task) grep -q "\"$n hosts, first node000000" "$dir/check.txt" || { echo "error: the first task did not run as expected:" >&2; tail -5 "$dir/check.txt" >&2; exit 1; } ;;
            esac
            load=$(cut -d' ' -f1 /proc/loadavg)
            walls=() rss=0
            for ((r = 0; r < reps; r++)); do
                read -r w k < <(timed "${cmd[@]}")
                walls+=("$w")
                ((k > rss)) && rss=$k
            done
            med=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
            printf '| %d | %s | %s | %.2f s | %.0f MB | %s |\n' "$n" "$f" "$what" "$med" "$((rss * 1024))e-6" "$load"
        done
    done
done
