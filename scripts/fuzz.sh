#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (issue #22):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s, every target)
# Needs the nightly toolchain and cargo-fuzz (installed from crates.io when
# missing). The committed corpus (fuzz/corpus/TARGET) seeds each run and is
# not written to; what a run adds goes to fuzz/corpus-new/TARGET (ignored by
# git). A crash leaves its input in fuzz/artifacts/TARGET/ and fails this
# script: copy the input into fuzz/corpus/TARGET/ (tests/it/fuzz.rs replays
# that corpus on stable in every test run) and fix the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

# CI mode (--ci BUILD_SECONDS): never installs a toolchain (CI reaches only
# the package registries, not static.rust-lang.org) and gives the build at
# most BUILD_SECONDS; without nightly, or when the build does not finish in
# time, it says so plainly and exits 0 (the corpus replay in tests/it/fuzz.rs
# has run in the test phase either way). A crash still fails.
ci_build_secs=
if [[ ${1:-} == --ci ]]; then
    ci_build_secs=${2:?--ci needs the seconds the build may take}
    shift 2
fi
secs=${1:-30}
shift || true
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    if [[ -n $ci_build_secs ]]; then
        echo "fuzz: SKIPPED: no nightly toolchain on this machine (cargo-fuzz needs one; installing it needs static.rust-lang.org)"
        exit 0
    fi
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
cd fuzz
if [[ -n $ci_build_secs ]]; then
    rc=0
    timeout "$ci_build_secs" cargo +nightly fuzz build || rc=$?
    if ((rc == 124)); then
        echo "fuzz: SKIPPED: building the fuzz targets took over ${ci_build_secs}s (the CI time budget); nothing was fuzzed"
        exit 0
    elif ((rc != 0)); then
        exit "$rc"
    fi
else
    cargo +nightly fuzz build
fi
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus-new/$t" "corpus/$t"
    echo "--- fuzzing $t for ${secs}s"
    if ! cargo +nightly fuzz run "$t" "corpus-new/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1; then
        failed+=("$t")
    fi
done
if ((${#failed[@]} > 0)); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
