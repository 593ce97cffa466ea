#!/usr/bin/env bash
# Installs the Debian packages that rigger's tests need (idempotent: apt is
# skipped when everything is already installed). The one place that lists them.
#
#   openssh-server, openssh-client  test hosts (one `sshd -D` per host) and the reference client
#   sudo                            become tests
#   busybox-static                  `busybox ping` (no ping binary), tiny guest/container trees
#   iproute2                        network namespaces, veth, bridges
#   procps                          ps/pgrep in tests and on test hosts
#   util-linux                      unshare (per-host namespaces), normally already present
#   cron                            on test hosts (cron module) and `crontab` for `rigger check --install`
#   kmod, git, curl                 on test hosts for the modprobe, git, get_url/uri modules
#   perl                            the example user module modules/json_merge.pl (JSON::PP)
#   python3-aiosmtpd                a real SMTP server (Maildir) for email tests (watch, check)
#   sqlite3                         integrity checks of the `rigger check` history in tests
#   time                            /usr/bin/time -v: rigger's peak memory in the output_limits tests
#   libuser                         lgroupadd/lgroupmod/lgroupdel: the group module's `local: true`
#   python3-venv, python3-apt       the differential test: ansible-core from PyPI in a venv
#                                   (scripts/ansible-venv.sh); its apt module needs python3-apt
#   python3-yaml, python3-jinja2    the compat suite's `python` (Debian's) runs targets' own helper
#                                   scripts, which import them (var_precedence's precedence check),
#                                   as ansible-test's Python has them
#   chromium, chromium-driver       the status page test (tests/it/webstatus.rs): headless Chromium
#                                   driven over WebDriver; installing both (--no-install-recommends)
#                                   took 24 s on the 2-core build machine (2026-12-07)
#   golang-go, golang-github-vmware-govmomi-dev
#                                   the vSphere tests (tests/it/vmware.rs): govmomi's simulator package
#                                   (Debian ships no vcsim command), built offline from tests/vcsim/main.go
#                                   by the tests (~25 s once, cached under target/); install ~15 s
#   postgresql                      the state tests on PostgreSQL (src/state/testpg.rs): each starts a
#                                   private PostgreSQL 15 cluster (initdb + postgres as the `postgres`
#                                   user, on 127.0.0.1, data in a temp dir) and stops it; Debian's
#                                   policy-rc.d keeps the packaged cluster from starting on install
#   haproxy                         the load balancer of playbooks/autoscale (tests/it/autoscale.rs):
#                                   started by the playbook on a test host (master-worker, -W -D),
#                                   never as a service (policy-rc.d keeps the packaged one stopped)
set -euo pipefail

# libvirt 11 + QEMU 10 (bookworm-backports), started by hand: its own script,
# since it adds an apt source and starts daemons. Skip with RIGGER_SKIP_LIBVIRT=1.
if [[ -z ${RIGGER_SKIP_LIBVIRT:-} ]]; then
    "$(dirname "$0")/libvirt-setup.sh"
fi

# Storage host tools (nfs-ganesha, tgt, zfs-fuse, lvm2, parted, ...): its own
# script, which documents each package. Skip with RIGGER_SKIP_STORAGE=1.
"$(dirname "$0")/storage-setup.sh"

# podman (rootful, runc) and its containers.conf for this machine, docker.io
# (dockerd, started by tests/it/docker.rs itself), busybox-static for the test
# images: its own script, which documents each package and setting. Skip with
# RIGGER_SKIP_CONTAINERS=1.
"$(dirname "$0")/container-setup.sh"

# scripts/deb.sh, which the .deb test runs when RIGGER_TEST_DEB is set
# (.ci/run's deb phase sets it), packs with cargo-deb.
if [[ -n ${RIGGER_TEST_DEB:-} && ${RIGGER_TEST_DEB} != 0 ]] && ! cargo deb --version >/dev/null 2>&1; then
    echo "test deps: installing cargo-deb (cargo install cargo-deb --locked)"
    t0=$SECONDS
    cargo install cargo-deb --locked
    echo "test deps: cargo-deb installed in $((SECONDS - t0))s"
fi

# man-db: the man page tests render with `man -l`; binutils: `nm` checks the packaged binary is stripped.
TEST_DEPS=(man-db binutils openssh-server openssh-client sudo busybox-static iproute2 procps util-linux cron kmod git curl perl python3-aiosmtpd sqlite3 time libuser python3-venv python3-apt python3-yaml python3-jinja2 openssl chromium chromium-driver golang-go golang-github-vmware-govmomi-dev postgresql haproxy)

missing=()
for pkg in "${TEST_DEPS[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "test deps: all installed (${TEST_DEPS[*]})"
    exit 0
fi

echo "test deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "error: installing packages needs root; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
# Through scripts/apt-get.sh: waits for another apt or dpkg instead of failing on its lock.
"$(dirname "$0")/apt-get.sh" update -qq
"$(dirname "$0")/apt-get.sh" install -y -qq --no-install-recommends "${missing[@]}"
