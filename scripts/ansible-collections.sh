#!/usr/bin/env bash
# Installs a small Ansible collection from PyPI (python.dist, a pip-packaged
# collection with one module) into a cached directory, for the test of
# Ansible modules rigger runs through ansible-core (tests/it/ansible_modules.rs).
# Idempotent: a directory that has the pinned version is reused.
#
#   scripts/ansible-collections.sh     # prints the directory holding ansible_collections/
#
# Environment:
#   RIGGER_ANSIBLE_COLLECTIONS   where it goes (default /var/tmp/rigger-ansible-collections)
#
# Uses the pip of the ansible-core venv (scripts/ansible-venv.sh). Exits
# non-zero, saying why, when PyPI cannot be reached.
set -euo pipefail

PIN="ansible-collections-python-dist-boo==0.1.2"
DIR=${RIGGER_ANSIBLE_COLLECTIONS:-/var/tmp/rigger-ansible-collections}
STAMP="$DIR/.rigger-installed"

if [[ -f $STAMP && $(cat "$STAMP") == "$PIN" && -d $DIR/ansible_collections ]]; then
    echo "$DIR"
    exit 0
fi
BIN=$(bash "$(dirname "$0")/ansible-venv.sh")
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if [[ -f $STAMP && $(cat "$STAMP") == "$PIN" && -d $DIR/ansible_collections ]]; then
    echo "$DIR"
    exit 0
fi
rm -rf -- "$DIR"
if ! "$BIN/pip" install --quiet --disable-pip-version-check --no-deps --target "$DIR" "$PIN" >&2; then
    echo "ansible-collections: 'pip install $PIN' failed (is PyPI reachable?)" >&2
    exit 1
fi
echo "$PIN" >"$STAMP"
echo "$DIR"
