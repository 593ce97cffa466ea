#!/usr/bin/env bash
# The benchmark of issue #9: workload W (bench/workload) against N loopback sshd
# hosts with rigger, ansible-core (pipelining off/on), ansible-core + Mitogen,
# pyinfra, jetporch and two OpenSSH floors, interleaved, ≥3 repetitions, every
# cold and warm result verified. Writes bench/results/{results.md,wall-vs-hosts.svg,
# raw-N.json,log-N.txt} and updates the table in bench/README.md.
#
#   bench/run.sh                  N = 1 10 50 100, 3 repetitions, every tool
#   bench/run.sh --quick          N = 10 50, 3 repetitions, rigger + floors + pyinfra
#   bench/run.sh --hosts "10 50" --reps 5 --tools rigger,ssh-floor
#   bench/run.sh --setup          only install the tools (venv, jetp, /usr/bin/time)
#
# RIGGER=path overrides target/release/rigger (built here when missing);
# BENCH_RESULTS=dir writes the results elsewhere than bench/results.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh

host_counts="1 10 50 100"
reps=3
tools="ssh-floor,ssh-cm-floor,rigger,pyinfra,jetporch,ansible,ansible-pipelining,mitogen"
setup_only=0
while (($#)); do
    case $1 in
    --quick)
        host_counts="10 50"
        tools="ssh-floor,ssh-cm-floor,rigger,pyinfra"
        ;;
    --hosts) host_counts=$2 && shift ;;
    --reps) reps=$2 && shift ;;
    --tools) tools=$2 && shift ;;
    --setup) setup_only=1 ;;
    *) echo "usage: bench/run.sh [--quick] [--hosts 'N...'] [--reps R] [--tools a,b] [--setup]" >&2 && exit 2 ;;
    esac
    shift
done

# ---- tools (idempotent; versions pinned: mitogen 0.3.29 supports ansible-core 2.18)
setup_tools() {
    command -v /usr/bin/time >/dev/null || scripts/apt-get.sh install -y -q time
    if [[ ! -x bench/.venv/bin/python3 ]]; then
        /usr/bin/python3 -m venv bench/.venv || { scripts/apt-get.sh install -y -q python3-venv && /usr/bin/python3 -m venv bench/.venv; }
    fi
    if [[ ! -x bench/.venv/bin/pyinfra || ! -x bench/.venv/bin/ansible-playbook ]]; then
        bench/.venv/bin/pip install -q 'ansible-core==2.18.10' 'mitogen==0.3.29' 'pyinfra==3.10.0'
    fi
    if [[ ! -x bench/.jetp/bin/jetp && ! -e bench/results/jetp-build.log ]]; then
        echo "building jetporch (cargo install jetp); the log goes to bench/results/jetp-build.log"
        mkdir -p bench/results
        CARGO_TARGET_DIR=${JETP_TARGET_DIR:-/tmp/jetp-target} cargo install jetp --root bench/.jetp \
            >bench/results/jetp-build.log 2>&1 || echo "jetp failed to build; jetporch will be skipped"
    fi
    if [[ -z ${RIGGER:-} ]]; then
        cargo build --release -q
    fi
}
setup_tools
((setup_only)) && exit 0

results=${BENCH_RESULTS:-bench/results}
mkdir -p "$results"
raws=()
for n in $host_counts; do
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rigger-bench.XXXXXX")
    trap 'testhosts_stop; rm -rf "$dir"' EXIT
    echo "== $n hosts"
    testhosts_start "$n" "$dir"
    log=$results/log-$n.txt
    : >"$log"
    /usr/bin/python3 bench/bench.py measure --hosts-dir "$dir" --n "$n" --reps "$reps" --tools "$tools" \
        --raw "$results/raw-$n.json" --log "$log"
    raws+=("$results/raw-$n.json")
    testhosts_stop
    rm -rf "$dir"
    trap - EXIT
done
/usr/bin/python3 bench/bench.py report --raw "${raws[@]}" --out-dir "$results"
