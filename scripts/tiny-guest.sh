#!/usr/bin/env bash
# Builds the tiny test guest for rigger's libvirt boot test: a Debian cloud
# kernel (from `apt-get download`, unpacked with dpkg-deb -x, no install) and a
# busybox-static initramfs whose /init loads the CD-ROM drivers, mounts the
# cloud-init NoCloud seed (label cidata), prints `local-hostname` from its
# meta-data to the serial console and powers off. Cached: a second call is
# instant. Prints the output directory (vmlinuz, initrd.gz).
#
#   scripts/tiny-guest.sh [OUT_DIR]     default /var/tmp/rigger-tiny-guest
set -euo pipefail

OUT=${1:-/var/tmp/rigger-tiny-guest}
if [[ -s $OUT/vmlinuz && -s $OUT/initrd.gz ]]; then
    echo "$OUT"
    exit 0
fi
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || { echo "error: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/rigger-tiny-guest-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The metapackage names the current cloud kernel package.
pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
[[ -n $pkg ]] || { echo "error: cannot find the package behind linux-image-cloud-amd64" >&2; exit 1; }
# apt's sandbox user cannot write here; that is fine (download runs as root).
apt-get download -q "$pkg" >/dev/null 2>&1 || apt-get download "$pkg"
dpkg-deb -x ./*.deb kernel
kver=$(ls kernel/lib/modules)
mods=kernel/lib/modules/$kver/kernel

mkdir -p root/bin root/mod root/proc root/sys root/dev root/mnt
cp "$BUSYBOX" root/bin/busybox
for m in drivers/scsi/scsi_common.ko drivers/scsi/scsi_mod.ko drivers/ata/libata.ko drivers/ata/ata_piix.ko \
    drivers/cdrom/cdrom.ko drivers/scsi/sr_mod.ko fs/isofs/isofs.ko; do
    cp "$mods/$m" root/mod/
done
cat >root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in scsi_common scsi_mod libata ata_piix cdrom sr_mod isofs; do insmod /mod/$m.ko; done
echo "TINY-GUEST: booted"
seed=
for i in $(seq 1 50); do
    for d in /dev/sr0 /dev/sr1 /dev/sr2 /dev/sr3; do
        [ -b $d ] || continue
        if mount -t iso9660 -o ro $d /mnt 2>/dev/null; then
            if [ -f /mnt/meta-data ]; then seed=$d; break 2; fi
            umount /mnt
        fi
    done
    sleep 0.2
done
if [ -n "$seed" ]; then
    host=$(sed -n 's/^local-hostname: *//p' /mnt/meta-data | tr -d "\"'")
    echo "TINY-GUEST: cidata on $seed"
    echo "TINY-GUEST: local-hostname=$host"
else
    echo "TINY-GUEST: no cidata seed found"
fi
sync
poweroff -f
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc --quiet | gzip -1) >initrd.gz
mkdir -p "$OUT"
cp "kernel/boot/vmlinuz-$kver" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp initrd.gz "$OUT/initrd.gz.tmp" && mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
chmod 644 "$OUT/vmlinuz" "$OUT/initrd.gz"
echo "$OUT"
