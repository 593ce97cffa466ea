#!/usr/bin/env bash
# The README's first command: build rigger and run its main job on an embedded
# default.
#  1. `rigger quickstart`: the built-in playbook configures a small service in a
#     directory on this machine, then runs again to show changed=0.
#  2. Three throwaway OpenSSH test hosts on loopback (started here, stopped on
#     exit): `rigger adhoc` fans out to them and `rigger run` applies the same
#     kind of playbook over SSH, with strict host key checking.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust >= 1.85 (https://rustup.rs) first" >&2
    exit 1
fi

cargo build --release --quiet
bin=target/release/rigger

echo "== 1. rigger quickstart (this machine)"
"$bin" quickstart --dest "${QUICKSTART_DIR:-$(mktemp -d /tmp/rigger-quickstart.XXXXXX)}"

if [[ $(id -u) -ne 0 ]] || ! command -v /usr/sbin/sshd >/dev/null 2>&1; then
    echo "(skipping the SSH part: it needs root and openssh-server; run scripts/test-deps.sh as root)"
    exit 0
fi

echo
echo "== 2. three loopback sshd hosts"
work=$(mktemp -d /tmp/rigger-quickstart-hosts.XXXXXX)
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh
trap 'testhosts_stop; rm -rf "$work"' EXIT
testhosts_start 3 "$work"

"$bin" adhoc testhosts -i "$work/inventory.ini" --known-hosts "$work/known_hosts" -m command -a 'uname -sr'
"$bin" run playbooks/quickstart-ssh.yml -i "$work/inventory.ini" --known-hosts "$work/known_hosts" \
    -e "workdir=$work/managed"
