#!/usr/bin/env bash
# Installs libvirt 11 + QEMU 10 from bookworm-backports and starts virtlogd and
# libvirtd by hand (there is no systemd here), so `virsh -c qemu:///system`
# answers. Idempotent and fast when everything is already in place.
#
#   scripts/libvirt-setup.sh            install (if needed) and start the daemons
#   scripts/libvirt-setup.sh --install  install only (CI's dependency step)
#
# Why backports: Debian 12's qemu-system-x86 7.2 conflicts with the
# preinstalled qemu-utils 10 from bookworm-backports, and seabios must come
# from backports too, so the whole set is installed with `-t bookworm-backports`.
# The backports source copies URIs and Signed-By from the system's own
# debian.sources: never hard-code a mirror.
set -euo pipefail

# genisoimage: seed/answer ISOs (and isoinfo); libarchive-tools: bsdtar, which
# extracts an installer's kernel/initrd from its ISO; ovmf: UEFI firmware.
PKGS=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils genisoimage libarchive-tools ovmf dnsmasq-base iptables)
# The tiny test guest: a Debian kernel + busybox-static initramfs (cpio, gzip).
GUEST_PKGS=(busybox-static cpio)
STATE_DIR=${RIGGER_LIBVIRT_STATE:-/var/tmp/rigger-libvirt}
LOG_FILE="$STATE_DIR/libvirtd.log"
install_only=0
[[ ${1:-} == --install ]] && install_only=1

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: libvirt setup needs root (packages, daemons)" >&2
        exit 1
    fi
}

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

add_backports_source() {
    local src=/etc/apt/sources.list.d/debian.sources
    local dst=/etc/apt/sources.list.d/rigger-backports.sources
    [[ -f $dst ]] && return 0
    if [[ ! -f $src ]]; then
        echo "error: $src not found; cannot derive the backports mirror" >&2
        exit 1
    fi
    # First stanza's URIs and Signed-By (the main archive, not -security).
    local uris signed
    uris=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | head -n1)
    signed=$(sed -n 's/^Signed-By:[[:space:]]*//p' "$src" | head -n1)
    if [[ -z $uris ]]; then
        echo "error: no URIs: line in $src" >&2
        exit 1
    fi
    {
        echo "Types: deb"
        echo "URIs: $uris"
        echo "Suites: bookworm-backports"
        echo "Components: main"
        [[ -n $signed ]] && echo "Signed-By: $signed"
    } >"$dst"
    echo "libvirt setup: added $dst ($uris)"
}

install_packages() {
    local missing=()
    for p in "${PKGS[@]}" "${GUEST_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    need_root
    local t0=$SECONDS
    add_backports_source
    "$(dirname "$0")/apt-get.sh" update -qq
    "$(dirname "$0")/apt-get.sh" install -y -qq --no-install-recommends \
        -t bookworm-backports "${PKGS[@]}" "${GUEST_PKGS[@]}"
    echo "libvirt setup: installed ${missing[*]} in $((SECONDS - t0)) s"
}

virsh_ok() {
    timeout 5 virsh -c qemu:///system version >/dev/null 2>&1
}

start_daemons() {
    if virsh_ok; then
        echo "libvirt setup: libvirtd already answers"
        return 0
    fi
    need_root
    mkdir -p "$STATE_DIR"
    local t0=$SECONDS
    # Daemons started with -d double-fork; PID 1 here does not reap, which is
    # harmless for long-lived daemons that we never stop.
    pgrep -x virtlogd >/dev/null || virtlogd -d
    if ! pgrep -x libvirtd >/dev/null; then
        LIBVIRT_LOG_OUTPUTS="3:file:$LOG_FILE" libvirtd -d
    fi
    for _ in $(seq 1 120); do
        if virsh_ok; then
            echo "libvirt setup: libvirtd answers after $((SECONDS - t0)) s"
            return 0
        fi
        sleep 0.5
    done
    echo "error: libvirtd did not answer within 60 s; see $LOG_FILE" >&2
    exit 1
}

install_packages
((install_only)) && exit 0
start_daemons
