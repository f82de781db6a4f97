#!/bin/busybox sh
# /init of the kernel-matrix initramfs: load the virtio/9p modules (Debian builds them as
# modules), mount the host's / read-only over virtio-9p and hand over to $km_init there.
# Kernel command line parameters arrive as environment variables (km_*).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /m/order); do
	insmod "/m/$m" || echo "km-initramfs: insmod $m failed"
done
fatal() {
	echo "km-initramfs: $*"
	echo "{\"fatal\":\"initramfs: $*\"}" >/dev/ttyS1
	poweroff -f
}
# cache=loose: exec'ing bash, node and bpftool from the share is 3-4x faster than cache=none
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot ||
	fatal "cannot mount the host root over 9p"
[ -x "/newroot$km_init" ] || fatal "no $km_init on the host root"
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$km_init"
