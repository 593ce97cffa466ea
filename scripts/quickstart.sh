#!/usr/bin/env bash
# The README's first command: build rigger and run its main job on an embedded
# default.
#  1. `rigger quickstart`: the built-in playbook configures a small service in a
#     directory on this machine, then runs again to show changed=0.
#  2. Three throwaway OpenSSH test hosts on loopback (started here, stopped on
#     exit): `rigger adhoc` fans out to them and `rigger run` applies the same
#     kind of playbook over SSH, with strict host key checking.
#
# The build is `cargo build --profile quick` (Cargo.toml: optimised, no
# whole-program LTO): minutes from scratch where the fat-LTO release build
# takes 12+ on 2 cores. QUICKSTART_PROFILE=release (or dist) builds that instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust >= 1.85 (https://rustup.rs) first" >&2
    exit 1
fi

# The SSH part needs root (its test hosts are sshd processes in their own
# namespaces) and openssh-server, installed here when missing; said first,
# so nobody waits for the build to learn it.
ssh_part=yes
missing=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || missing+=(openssh-server)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
if [[ $(id -u) -ne 0 ]] && ((${#missing[@]} > 0)); then
    ssh_part="no: it needs ${missing[*]} (sudo apt-get install ${missing[*]}) and root (sudo scripts/quickstart.sh)"
elif [[ $(id -u) -ne 0 ]]; then
    ssh_part="no: the SSH test hosts need root (run: sudo scripts/quickstart.sh)"
elif ((${#missing[@]} > 0)); then
    if command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${missing[*]} (for the SSH test hosts)"
        scripts/apt-get.sh update -qq
        scripts/apt-get.sh install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        ssh_part="no: install ${missing[*]} with your package manager, then run this again"
    fi
fi
if [[ $ssh_part != yes ]]; then
    echo "note: the SSH part will be skipped ($ssh_part)"
fi

profile=${QUICKSTART_PROFILE:-quick}
target_dir=${CARGO_TARGET_DIR:-target}
case $profile in
    dev) bin=$target_dir/debug/rigger ;;
    *) bin=$target_dir/$profile/rigger ;;
esac
build=(cargo build --profile "$profile" --locked --bin rigger)
echo "== building rigger (${build[*]}; from scratch a few minutes, no fat LTO)"
start=$SECONDS
if [[ -t 2 ]]; then
    # cargo's own progress bar.
    "${build[@]}"
else
    # No terminal for a progress bar: a line every 30 s (QUICKSTART_PROGRESS_SECS),
    # and cargo's messages after it ends.
    every=${QUICKSTART_PROGRESS_SECS:-30}
    log=$(mktemp)
    "${build[@]}" --quiet >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        for _ in $(seq "$every"); do
            sleep 1
            kill -0 "$pid" 2>/dev/null || break
        done
        kill -0 "$pid" 2>/dev/null && echo "building... $((SECONDS - start))s"
    done
    if ! wait "$pid"; then
        cat "$log" >&2
        rm -f "$log"
        echo "error: the build failed" >&2
        exit 1
    fi
    cat "$log" >&2
    rm -f "$log"
fi
echo "== built $bin in $((SECONDS - start))s"
echo

echo "== 1. rigger quickstart (this machine)"
"$bin" quickstart --dest "${QUICKSTART_DIR:-$(mktemp -d /tmp/rigger-quickstart.XXXXXX)}"

if [[ $ssh_part != yes ]]; then
    echo
    echo "== skipped the SSH part ($ssh_part)"
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
