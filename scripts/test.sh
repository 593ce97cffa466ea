#!/usr/bin/env bash
# The test command: installs the test dependencies, then runs every test target.
# CI (.ci/run) calls exactly this script; run it the same way locally.
# Extra arguments go to the test runner (e.g. a test-name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

# The test hosts run sshd as root on loopback addresses and use namespaces.
if [[ $(id -u) -ne 0 ]]; then
    echo "error: the integration tests start sshd test hosts and need root" >&2
    exit 1
fi

if cargo nextest --version >/dev/null 2>&1; then
    # One process per test: a crash or leak in one test cannot take others along.
    # nextest prints the "Summary [...] N tests run: ..." line at the end.
    # The `rigger watch` tests assert alert timings (host_down after seconds,
    # repeat intervals, a group's takeover within its lease, an action's
    # cooldown across flaps): they run after the rest, alone, so CPU-heavy
    # tests (TCG guests, ansible-core, Chromium) cannot starve them. Filters
    # in "$@" apply to both.
    # Most tests wait on processes (sshd hosts, daemons, guests) more than
    # they compute: a full run used 2 cores at about half their capacity
    # with one test per core, so the first pass runs one more test than
    # there are cores (RIGGER_TEST_THREADS overrides).
    threads=${RIGGER_TEST_THREADS:-$(($(nproc) + 1))}
    status=0
    timed='binary(it) & (test(/^watch::/) | test(/^watch_group::/) | test(/^watch_actions::/))'
    cargo nextest run --all-targets --no-fail-fast --test-threads "$threads" -E "not ($timed)" "$@" || status=$?
    cargo nextest run --all-targets --no-fail-fast --no-tests=pass -E "$timed" "$@" || status=$?
    exit $status
else
    exec cargo test --all-targets --no-fail-fast "$@"
fi
