#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (issue #22):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# (default 30 s per target, every target).
#
# On the STABLE toolchain: cargo-fuzz builds with `-s none` (no sanitizer).
# libFuzzer's coverage instrumentation is plain rustc flags
# (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*), and only the
# sanitizers (ASan, MSan, ...) need nightly's -Z flags. Rust code is memory
# safe without them; what the fuzzer hunts here are panics (index, slice and
# arithmetic overflow: the build has debug assertions on), endless loops and
# runaway memory, which libFuzzer catches itself (-timeout, -rss_limit_mb).
# cargo-fuzz is installed from crates.io when missing.
#
# The committed corpus (fuzz/corpus/TARGET) seeds each run and is not
# written to; what a run adds goes to fuzz/corpus-new/TARGET (ignored by
# git). A crash leaves its input in fuzz/artifacts/TARGET/ and fails this
# script: copy the input into fuzz/corpus/TARGET/ (tests/it/fuzz.rs replays
# that corpus in every test run) and fix the parser.
#
# CI (.ci/run) runs every target 15 s; the phase is required, not skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true

# The stable toolchain by name where rustup has one by that name; else the
# default toolchain (a machine whose one toolchain is named by its version).
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^stable'; then
    toolchain=(+stable)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    start=$SECONDS
    cargo install cargo-fuzz --locked
    echo "fuzz: installed cargo-fuzz from crates.io in $((SECONDS - start))s"
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cd fuzz && cargo "${toolchain[@]}" fuzz list)
fi
cd fuzz
# FUZZ_BUILD_ARGS adds cargo-fuzz build options (e.g. `--dev`: an unoptimized
# build, quicker to make and slower to run).
read -r -a extra <<<"${FUZZ_BUILD_ARGS:-}"
flags=(-s none --debug-assertions "${extra[@]}")
build=(cargo "${toolchain[@]}" fuzz build "${flags[@]}")
start=$SECONDS
"${build[@]}"
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start))s"
profile_dir=release
if [[ " ${extra[*]} " == *" --dev "* || " ${extra[*]} " == *" -D "* ]]; then
    profile_dir=debug
fi
bin_dir=target/x86_64-unknown-linux-gnu/$profile_dir
failed=()
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "corpus-new/$t" "corpus/$t"
    echo "--- fuzzing $t for ${secs}s"
    rc=0
    # The built binary itself, as `cargo fuzz run` would start it: `cargo fuzz
    # run` builds again first, and rebuilt the whole rigger crate for every
    # target (its build script watches the git checkout), minutes each.
    mkdir -p "artifacts/$t"
    "$bin_dir/$t" -artifact_prefix="artifacts/$t/" "corpus-new/$t" "corpus/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 >"$logs/$t" 2>&1 || rc=$?
    if ((rc != 0)); then
        # The panic or libFuzzer's report, and where the input was written.
        tail -n 60 "$logs/$t"
        failed+=("$t")
    else
        # libFuzzer's closing stats: executions, their rate, coverage.
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$logs/$t" || true
        grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t" | tail -n 1 || true
    fi
done
if ((${#failed[@]} > 0)); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
