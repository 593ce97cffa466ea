#!/usr/bin/env bash
# Installs the storage-host tools the storage tests drive (idempotent: apt is
# skipped when everything is already installed). Daemons (rpcbind,
# ganesha.nfsd, tgtd, zfs-fuse) are NOT started here: each test starts its own
# in the foreground as a child and stops it by PID (PID 1 does not reap).
#
#   nfs-ganesha nfs-ganesha-vfs rpcbind   userspace NFS server (VFS FSAL) + portmapper
#   libnfs-utils                          nfs-ls / nfs-cat: read an export back without a kernel client
#   tgt                                   tgtd + tgtadm (iSCSI target, userspace)
#   libiscsi-bin                          iscsi-ls / iscsi-inq: inspect targets without a kernel initiator
#   zfs-fuse                              zpool / zfs in userspace (no zvols)
#   lvm2 parted dosfstools e2fsprogs      lvg/lvol, parted, filesystem modules
#
# Skip with RIGGER_SKIP_STORAGE=1.
set -euo pipefail

[[ -n ${RIGGER_SKIP_STORAGE:-} ]] && exit 0

PKGS=(nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils tgt libiscsi-bin zfs-fuse lvm2 parted dosfstools e2fsprogs)

missing=()
for pkg in "${PKGS[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "storage setup: all installed (${PKGS[*]})"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: installing packages needs root; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
t0=$SECONDS
echo "storage setup: installing ${missing[*]}"
"$(dirname "$0")/apt-get.sh" update -qq
"$(dirname "$0")/apt-get.sh" install -y -qq --no-install-recommends "${missing[@]}"
echo "storage setup: installed ${missing[*]} in $((SECONDS - t0)) s"
