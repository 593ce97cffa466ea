#!/usr/bin/env bash
# Installs ansible-core from PyPI into a venv made with Debian's python3, for the
# differential test (tests/it/differential.rs). Idempotent and cached: a venv that
# already has the pinned version is reused, so CI on the same machine pays once.
#
#   scripts/ansible-venv.sh          # prints the venv's bin directory on stdout
#
# Environment:
#   RIGGER_ANSIBLE_VENV   where the venv lives (default /var/tmp/rigger-ansible-venv)
#   RIGGER_ANSIBLE_CORE   the pip requirement (default the pinned version below)
#
# Exits non-zero, saying why, when the venv or the package cannot be had (for
# example PyPI is unreachable): the differential test then fails loudly.
set -euo pipefail

# The newest ansible-core whose controller supports Debian 12's Python 3.11.
PIN="ansible-core==2.19.14"
REQ=${RIGGER_ANSIBLE_CORE:-$PIN}
VENV=${RIGGER_ANSIBLE_VENV:-/var/tmp/rigger-ansible-venv}
PY=/usr/bin/python3
STAMP="$VENV/.rigger-installed"

if [[ -x $VENV/bin/ansible-playbook && -f $STAMP && $(cat "$STAMP") == "$REQ" ]]; then
    echo "$VENV/bin"
    exit 0
fi

if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "ansible-venv: $PY has no venv/ensurepip module; install python3-venv (scripts/test-deps.sh)" >&2
    exit 1
fi

# One installer at a time (parallel test processes); the stamp is written last,
# so a half-made venv is never reused but rebuilt.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [[ -x $VENV/bin/ansible-playbook && -f $STAMP && $(cat "$STAMP") == "$REQ" ]]; then
    echo "$VENV/bin"
    exit 0
fi
echo "ansible-venv: creating $VENV with $REQ" >&2
rm -rf -- "$VENV"
"$PY" -m venv "$VENV" >&2
if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "$REQ" >&2; then
    echo "ansible-venv: 'pip install $REQ' failed (is PyPI reachable?)" >&2
    exit 1
fi
"$VENV/bin/ansible-playbook" --version >/dev/null
echo "$REQ" >"$STAMP"
echo "$VENV/bin"
