#!/usr/bin/env bash
# Builds the tiny test guest for rigger's libvirt boot test: a Debian cloud
# kernel (from `apt-get download`, unpacked with dpkg-deb -x, no install) and a
# busybox-static initramfs whose /init loads the CD-ROM drivers, mounts the
# cloud-init NoCloud seed (label cidata), prints `local-hostname` from its
# meta-data to the serial console and powers off. Cached: a second call is
# instant; the cache is rebuilt when this script changes (its sha256 is in
# OUT/VERSION). Prints the output directory (vmlinuz, initrd.gz).
#
# It also plays an OS installer for the ISO-install test: when its kernel
# command line asks for an answer file (kickstart `inst.ks=hd:LABEL=OEMDRV:/ks.cfg`,
# autoinstall `autoinstall ds=nocloud` with a cidata CD, preseed
# `preseed/file=/preseed.cfg` inside the initrd), it prints
# `TINY-GUEST: answer-kind=KIND` and `TINY-GUEST: answer=<first line>` (after
# a `#cloud-config` header), then "installs" by writing a boot sector to the
# first disk (vda or sda) that prints `TINY-DISK: installed answer=<first line>`
# on the serial port and halts, and powers off itself.
#
#   scripts/tiny-guest.sh [OUT_DIR]     default /var/tmp/rigger-tiny-guest
set -euo pipefail

OUT=${1:-/var/tmp/rigger-tiny-guest}
VERSION=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
if [[ -s $OUT/vmlinuz && -s $OUT/initrd.gz && "$(cat "$OUT/VERSION" 2>/dev/null)" == "$VERSION" ]]; then
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

mkdir -p root/bin root/mod root/proc root/sys root/dev root/mnt root/tmp
cp "$BUSYBOX" root/bin/busybox
for m in drivers/scsi/scsi_common.ko drivers/scsi/scsi_mod.ko drivers/ata/libata.ko drivers/ata/ata_piix.ko \
    drivers/cdrom/cdrom.ko drivers/scsi/sr_mod.ko fs/isofs/isofs.ko drivers/scsi/sd_mod.ko \
    drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_modern_dev.ko \
    drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko; do
    cp "$mods/$m" root/mod/
done
cat >root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in scsi_common scsi_mod libata ata_piix cdrom sr_mod isofs sd_mod \
    virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    insmod /mod/$m.ko
done
echo "TINY-GUEST: booted"
# find_cd FILE: mounts the CD-ROM holding FILE on /mnt and prints its device.
find_cd() {
    for i in $(seq 1 50); do
        for d in /dev/sr0 /dev/sr1 /dev/sr2 /dev/sr3; do
            [ -b $d ] || continue
            if mount -t iso9660 -o ro $d /mnt 2>/dev/null; then
                if [ -f "/mnt$1" ]; then echo $d; return 0; fi
                umount /mnt
            fi
        done
        sleep 0.2
    done
    return 1
}
kind=
answer=
for arg in $(cat /proc/cmdline); do
    case $arg in
        inst.ks=hd:*) kind=kickstart; ks=${arg##*:} ;;
        autoinstall) kind=autoinstall ;;
        preseed/file=*|file=*) kind=preseed; answer=${arg#*=} ;;
    esac
done
if [ -n "$kind" ]; then
    echo "TINY-GUEST: answer-kind=$kind"
    case $kind in
        kickstart) d=$(find_cd "$ks") && answer=/mnt$ks && echo "TINY-GUEST: answer file on $d" ;;
        autoinstall) d=$(find_cd /user-data) && answer=/mnt/user-data && echo "TINY-GUEST: answer file on $d" ;;
    esac
    if [ -n "$answer" ] && [ -f "$answer" ]; then
        # The first line that is not the `#cloud-config` header.
        line=$(grep -v '^#cloud-config' "$answer" | head -n1 | tr -d '\r' | cut -c1-100)
        echo "TINY-GUEST: answer=$line"
        disk=
        for i in $(seq 1 50); do
            for b in /dev/vda /dev/sda; do [ -b $b ] && { disk=$b; break 2; }; done
            sleep 0.2
        done
        if [ -n "$disk" ]; then
            # A boot sector (real mode, loaded at 0x7c00): cli; cld; ds=0; si=msg (0x7c17);
            # dx=0x3f8 (COM1); print bytes up to the NUL; then hlt forever (the OS "runs").
            { printf '\372\374\061\300\216\330\276\027\174\272\370\003\254\204\300\164\003\356\353\370'
              printf '\364\353\375'
              printf 'TINY-DISK: installed answer=%s\r\n\000' "$line"; } >/tmp/mbr
            if dd if=/tmp/mbr of=$disk bs=480 count=1 conv=notrunc,sync 2>/dev/null &&
                printf '\125\252' | dd of=$disk bs=1 seek=510 conv=notrunc 2>/dev/null && sync; then
                echo "TINY-GUEST: installed on $disk"
            else
                echo "TINY-GUEST: writing to $disk failed"
            fi
        else
            echo "TINY-GUEST: no disk to install on"
        fi
    else
        echo "TINY-GUEST: answer file not found"
    fi
else
    seed=$(find_cd /meta-data) || seed=
    if [ -n "$seed" ]; then
        host=$(sed -n 's/^local-hostname: *//p' /mnt/meta-data | tr -d "\"'")
        echo "TINY-GUEST: cidata on $seed"
        echo "TINY-GUEST: local-hostname=$host"
    else
        echo "TINY-GUEST: no cidata seed found"
    fi
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
echo "$VERSION" >"$OUT/VERSION"
echo "$OUT"
