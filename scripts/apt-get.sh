#!/usr/bin/env bash
# apt-get that waits for another package manager (an unattended upgrade, a
# second setup script, a developer's apt) instead of failing on its lock.
# Every script of the project that installs packages goes through it.
#
#   scripts/apt-get.sh update -qq
#   scripts/apt-get.sh install -y -qq --no-install-recommends PKG...
#
# Waits up to RIGGER_APT_LOCK_TIMEOUT seconds (default 600) in all. apt's own
# DPkg::Lock::Timeout waits for the dpkg frontend lock only (install, remove);
# `apt-get update` fails at once while /var/lib/apt/lists/lock is held, and a
# download fails on /var/cache/apt/archives/lock, so a run that failed on a
# lock is retried until the time is up. Locks are fcntl locks: `flock(1)` on
# these files does not block apt (tests/it/ecosystem.rs holds them with fcntl).
set -uo pipefail

timeout=${RIGGER_APT_LOCK_TIMEOUT:-600}
deadline=$((SECONDS + timeout))
err=$(mktemp)
trap 'rm -f "$err"' EXIT
said=
while :; do
    left=$((deadline - SECONDS))
    ((left < 1)) && left=1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$left" "$@" 2>"$err"
    rc=$?
    if ((rc != 0)) && ((SECONDS < deadline)) && grep -qE '^E: (Could not get lock|Unable to lock)' "$err"; then
        if [[ -z $said ]]; then
            echo "apt-get: waiting for another package manager ($(grep -m1 -E '^E: Could not get lock' "$err" | sed 's/^E: //'))" >&2
            said=1
        fi
        sleep 2
        continue
    fi
    cat "$err" >&2
    exit "$rc"
done
