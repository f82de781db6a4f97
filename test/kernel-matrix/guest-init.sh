#!/bin/bash
# PID 1 of a kernel-matrix guest. The host's / is the read-only root (virtio-9p); parameters
# come from the kernel command line as environment variables:
#   km_modules_root  extracted linux-image package (modprobe -d)
#   km_modules       comma-separated modules to load before the probe
#   km_probe         the bundled guest probe (node), run in km_repo; km_kernel: matrix id (6.1, ...)
# The probe writes its JSON report to /dev/ttyS1 (a file on the host); this script writes one
# itself only when the probe cannot.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/run TMPDIR=/run LANG=C.UTF-8 NO_COLOR=1
RESULT=/dev/ttyS1
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "km-guest[$(up)]: $*"; }
poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
}
fatal() {
	say "FATAL: $*"
	dmesg | tail -n 30
	printf '{"fatal":"%s"}\n' "$(echo "$*" | tr -d '"\\' | tr '\n' ' ')" >"$RESULT"
	poweroff_now
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
# A writable /tmp for the guest; when the repository (and with it the kernel cache and the
# probe) lives under the host's /tmp (CI clones anywhere), bind its top directory back in.
case "$km_repo" in
/tmp/*)
	top=${km_repo#/tmp/}
	top=${top%%/*}
	mkdir -p /run/host-tmp && mount --bind /tmp /run/host-tmp
	mount -t tmpfs tmpfs /tmp
	mkdir -p "/tmp/$top" && mount --bind "/run/host-tmp/$top" "/tmp/$top"
	;;
*) mount -t tmpfs tmpfs /tmp ;;
esac
ln -sf /proc/self/fd /dev/fd
mount -t bpf bpf /sys/fs/bpf || fatal "cannot mount bpffs"
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fatal "cannot mount cgroup2"
# The results port is a raw byte channel: no \r\n translation.
stty -F "$RESULT" raw -echo 2>/dev/null
say "kernel $(uname -r) up"

# Make both our modprobe and the kernel's request_module() (nft asks for nf_tables
# expressions that way) use this kernel's modules, which are not under /lib/modules.
printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$km_modules_root" >/run/modprobe
chmod +x /run/modprobe
echo /run/modprobe >/proc/sys/kernel/modprobe
for m in ${km_modules//,/ }; do
	/run/modprobe "$m" || fatal "modprobe $m failed"
done
ip link set lo up || fatal "ip link set lo up failed"
say "modules loaded: ${km_modules//,/ }"

cd "$km_repo" || fatal "no $km_repo"
node "$km_probe"
rc=$?
say "probe exited with $rc"
[ -s /run/km-reported ] || fatal "the probe exited with $rc without a report"
poweroff_now
