#!/usr/bin/env bash
# rigger's compatibility suite: ansible-core's own integration targets, run with
# ansible-core (to learn which can pass on this machine at all) and with rigger on
# the local connection and on an sshd test host. Every run happens inside an
# isolated root (private mount/PID/UTS namespaces, overlays on /etc /usr /var /root
# /home /opt /run, private /tmp and /srv): no target changes this machine.
#
#   scripts/compat.sh                 # the full measurement; writes docs/compat.md and
#                                     # tests/compat/passing.txt (reuses the committed
#                                     # ansible-core results, tests/compat/ansible-results.json)
#   scripts/compat.sh --rerun-ansible # measure ansible-core again too (slow: ~1 hour on 2 cores)
#   scripts/compat.sh --only NAME...  # just these targets (report not rewritten)
#   scripts/compat.sh --ci            # the passing list only, rigger on both connections;
#                                     # exits 1 naming every target that regressed
#   scripts/compat.sh --help          # every option (scripts/compat.py)
#
# Environment:
#   RIGGER_BIN            the rigger binary (default: `cargo build`, then target/debug/rigger)
#   RIGGER_ANSIBLE_SDIST  where the ansible-core sdist is cached (default /var/tmp/rigger-ansible-sdist)
#
# Needs root (namespaces, overlays, sshd). Python 3.11 stdlib only (Debian's /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

# The ansible-core whose integration targets are the suite: the same pin as
# scripts/ansible-venv.sh, so the comparison runs the version whose tests these are.
VERSION=2.19.14
SDIST_DIR=${RIGGER_ANSIBLE_SDIST:-/var/tmp/rigger-ansible-sdist}
SRC="$SDIST_DIR/ansible_core-$VERSION"

if [[ $(id -u) -ne 0 ]]; then
    echo "compat: needs root (mount namespaces, overlays, sshd test hosts)" >&2
    exit 1
fi

VENV_BIN=$(scripts/ansible-venv.sh)

if [[ ! -d $SRC/test/integration/targets ]]; then
    mkdir -p "$SDIST_DIR"
    exec 8>"$SDIST_DIR.lock"
    flock 8
    if [[ ! -d $SRC/test/integration/targets ]]; then
        if [[ ! -f $SDIST_DIR/ansible_core-$VERSION.tar.gz ]]; then
            echo "compat: downloading the ansible-core $VERSION sdist into $SDIST_DIR" >&2
            if ! "$VENV_BIN/pip" download --quiet --disable-pip-version-check --no-deps \
                --no-binary :all: "ansible-core==$VERSION" -d "$SDIST_DIR" >&2; then
                echo "compat: 'pip download ansible-core==$VERSION' failed (is PyPI reachable?)" >&2
                exit 1
            fi
        fi
        rm -rf -- "$SRC.partial"
        mkdir -p "$SRC.partial"
        tar -xzf "$SDIST_DIR/ansible_core-$VERSION.tar.gz" -C "$SRC.partial" --strip-components=1
        mv -- "$SRC.partial" "$SRC"
    fi
    exec 8>&-
fi

if [[ -z ${RIGGER_BIN:-} ]]; then
    cargo build --quiet --bin rigger
    RIGGER_BIN=$PWD/target/debug/rigger
fi

exec /usr/bin/python3 scripts/compat.py --sdist "$SRC" --ansible-bin "$VENV_BIN" --rigger "$RIGGER_BIN" "$@"
