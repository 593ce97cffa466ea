#!/usr/bin/env bash
# Real roles (issue #20 point 6): popular public roles from the most-downloaded Galaxy authors, each run
# twice with ansible-core and twice with rigger on two identical isolated-root sshd hosts, and compared
# file by file (what each run created, changed or deleted; logs and caches aside). The roles and their
# pinned commits are listed in scripts/real_roles.py (ROLES); the results go to docs/real-roles.md.
#
#   scripts/real-roles.sh                      # every role; rewrites docs/real-roles.md
#   scripts/real-roles.sh --only geerlingguy.ntp devsec.ssh_hardening   # just these (report kept
#                                              # unless every role then has results)
#   scripts/real-roles.sh --help               # every option
#
# Run by hand: CI cannot reach GitHub. The roles are git repositories in a cache outside the repository,
# cloned on first use and checked out at the pinned commit:
#   RIGGER_REAL_ROLES         the cache (default /var/tmp/rigger-real-roles; repositories in src/)
#   RIGGER_REAL_ROLES_SOURCE  where to clone from (default https://github.com/{repo}.git; {owner} and
#                             {name} also work, e.g. /srv/mirror/{owner}+{name}/repo)
#   RIGGER_BIN                the rigger binary (default: `cargo build`, then target/debug/rigger)
#   RIGGER_REAL_ROLES_COLLECTIONS  where the collections some roles use (community.general, ansible.posix)
#                             are unpacked (default /var/tmp/rigger-real-roles-collections): taken from
#                             the pinned `ansible` package on PyPI (which bundles them), downloaded once;
#                             both tools find them through ANSIBLE_COLLECTIONS_PATH
#
# Needs root (namespaces, overlays, sshd) and Debian's package mirror (deb.debian.org over http: roles
# install packages; the isolated root reaches the mirror through a relay). Python 3.11 stdlib only.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "real-roles: needs root (mount, PID, UTS and network namespaces, overlays, sshd)" >&2
    exit 1
fi
VENV_BIN=$(scripts/ansible-venv.sh)
if [[ -z ${RIGGER_BIN:-} ]]; then
    cargo build --quiet --bin rigger
    RIGGER_BIN=$PWD/target/debug/rigger
fi
# The collections: the `ansible` package matching the pinned ansible-core (2.19 -> ansible 12) bundles
# every community collection; only the two the roles use are unpacked.
ANSIBLE_PKG="ansible==12.3.0"
COLL=${RIGGER_REAL_ROLES_COLLECTIONS:-/var/tmp/rigger-real-roles-collections}
if [[ ! -f $COLL/.installed || $(cat "$COLL/.installed") != "$ANSIBLE_PKG" ]]; then
    rm -rf -- "$COLL"
    mkdir -p "$COLL/wheel"
    "$VENV_BIN/pip" download --quiet --disable-pip-version-check --no-deps "$ANSIBLE_PKG" -d "$COLL/wheel" >&2
    /usr/bin/python3 -c '
import sys, zipfile, pathlib
d = pathlib.Path(sys.argv[1])
(whl,) = (d / "wheel").glob("ansible-*.whl")
z = zipfile.ZipFile(whl)
want = ("ansible_collections/community/general/", "ansible_collections/ansible/posix/")
z.extractall(d, [n for n in z.namelist() if n.startswith(want)])
' "$COLL"
    rm -rf -- "$COLL/wheel"
    echo "$ANSIBLE_PKG" >"$COLL/.installed"
fi
DEFAULT_SOURCE='https://github.com/{repo}.git'
exec /usr/bin/python3 scripts/real_roles.py --ansible-bin "$VENV_BIN" --rigger "$RIGGER_BIN" \
    --cache "${RIGGER_REAL_ROLES:-/var/tmp/rigger-real-roles}" --collections "$COLL" \
    --source "${RIGGER_REAL_ROLES_SOURCE:-$DEFAULT_SOURCE}" "$@"
