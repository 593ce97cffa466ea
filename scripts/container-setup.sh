#!/usr/bin/env bash
# Installs podman (rootful, with runc) and docker.io for the container module
# tests and writes the engine settings podman needs on this machine
# (idempotent). No daemon is started here: podman needs none, the docker test
# starts its own dockerd, and the tests build their images locally from
# busybox-static (no registry is reachable).
#
#   podman            the container engine the container modules drive over SSH
#   runc              its OCI runtime: crun fails on this machine's hybrid cgroups
#   catatonit         the init of the pause image podman builds for `kube play` pods
#   busybox-static    the root file system of the test images (`podman import`)
#   docker.io         dockerd 20.10 (+ containerd, tini) for tests/it/docker.rs, which starts
#                     its own dockerd in network/mount/PID namespaces of its own; the package's
#                     service is not started (no init system, and policy-rc.d says no), no
#                     docker0 bridge or iptables rule appears, podman's tests still pass
#
# /etc/containers/containers.conf (written only when absent, or when it is
# the one this script wrote):
#   default_ulimits   podman's defaults exceed the machine's hard limits
#   runtime = runc, cgroup_manager = cgroupfs (no systemd), events_logger = file (no journald)
#
# Skip with RIGGER_SKIP_CONTAINERS=1.
set -euo pipefail

[[ -n ${RIGGER_SKIP_CONTAINERS:-} ]] && exit 0

PKGS=(podman runc catatonit busybox-static docker.io)

missing=()
for pkg in "${PKGS[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: installing packages needs root; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    t0=$SECONDS
    echo "container setup: installing ${missing[*]}"
    # docker.io's package starts dockerd where an init system runs services:
    # in this network namespace, with its docker0 bridge and iptables rules,
    # under the other tests. The docker test starts its own in namespaces of
    # its own, so no service may start during this install: a policy-rc.d
    # that refuses every start (exit 101, as in Debian's container images),
    # only for the install, where the machine has none.
    guard=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# written by scripts/container-setup.sh for one install\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    rc=0
    "$(dirname "$0")/apt-get.sh" update -qq || rc=$?
    ((rc == 0)) && { "$(dirname "$0")/apt-get.sh" install -y -qq --no-install-recommends "${missing[@]}" || rc=$?; }
    [[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || exit "$rc"
    echo "container setup: installed ${missing[*]} in $((SECONDS - t0)) s"
else
    echo "container setup: all installed (${PKGS[*]})"
fi

conf=/etc/containers/containers.conf
marker="# written by rigger's scripts/container-setup.sh"
if [[ -e $conf ]] && ! grep -qxF "$marker" "$conf"; then
    echo "container setup: $conf exists and was not written by this script; left as it is" >&2
    echo "  it needs: [containers] default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]" >&2
    echo "            [engine] runtime = \"runc\", cgroup_manager = \"cgroupfs\", events_logger = \"file\"" >&2
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: writing $conf needs root" >&2
    exit 1
fi
mkdir -p /etc/containers
tmp=$(mktemp /etc/containers/.containers.conf.XXXXXX)
cat >"$tmp" <<CONF
$marker
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
chmod 0644 "$tmp"
mv -f "$tmp" "$conf"
echo "container setup: wrote $conf"
