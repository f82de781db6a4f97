# shellcheck shell=bash
# Idempotent install and checks shared by scripts/run.sh and scripts/test.sh.
# Each check fails with one line that says what is missing and how to get it.

# Overridable for tests and for hosts with /proc or /sys elsewhere.
BTF_PATH=${DNSRACE_BTF_PATH:-/sys/kernel/btf/vmlinux}
MOUNTINFO=${DNSRACE_MOUNTINFO:-/proc/self/mountinfo}
# DNSRACE_NO_INSTALL=1: check only, never run apt-get (say what to install instead).
NO_INSTALL=${DNSRACE_NO_INSTALL:-0}

die() {
	echo "dnsrace: $*" >&2
	exit 1
}

step() { echo "dnsrace: $*" >&2; }

require_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (BPF load and cgroup attach need CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON); try: sudo $0 $*"
}

require_btf() {
	[ -r "$BTF_PATH" ] ||
		die "kernel has no BTF ($BTF_PATH missing): use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian 11+ and Ubuntu 20.10+ kernels have it)"
}

# The cgroup2 mount point (pure v2 hosts: /sys/fs/cgroup; hybrid hosts: /sys/fs/cgroup/unified).
cgroup2_mount() {
	# The filesystem type follows the '-' separator (optional fields shift its column).
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' "$MOUNTINFO"
}

require_cgroup2() {
	[ -n "$(cgroup2_mount)" ] ||
		die "no cgroup2 mount found: mount it (mount -t cgroup2 none /sys/fs/cgroup/unified) or boot with systemd.unified_cgroup_hierarchy=1"
}

ensure_bpffs() {
	if ! mountpoint -q /sys/fs/bpf; then
		step "mounting bpffs at /sys/fs/bpf"
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf (kernel without CONFIG_BPF_SYSCALL?)"
	fi
}

apt_updated=0
apt_update_once() {
	[ "$apt_updated" = 1 ] && return 0
	step "apt-get update"
	apt-get update -q >/dev/null || die "apt-get update failed: check the Debian mirror in /etc/apt/sources.list.d"
	apt_updated=1
}

# Installs the Debian packages not yet installed (checked without touching the network).
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	[ "$NO_INSTALL" = 1 ] && die "missing Debian packages: ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})"
	command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them with your package manager"
	apt_update_once
	step "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

version_ge() { # version_ge A B: A >= B
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

bpftool_version() {
	bpftool version 2>/dev/null | sed -n 's/^bpftool v\([0-9.]*\).*/\1/p'
}

# bpftool >= 7.2 (autoattach). Debian 12 ships 7.1; bookworm-backports has 7.5 on the same mirror.
ensure_bpftool() {
	local v
	v=$(bpftool_version)
	if [ -n "$v" ] && version_ge "$v" 7.2.0; then return 0; fi
	[ "$NO_INSTALL" = 1 ] && die "bpftool ${v:-missing}${v:+ is too old}: need >= 7.2 for autoattach (Debian 12: apt-get install -t bookworm-backports bpftool)"
	if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
		if ! apt-cache policy 2>/dev/null | grep -q 'bookworm-backports'; then
			step "adding bookworm-backports (for bpftool >= 7.2) in /etc/apt/sources.list.d/dnsrace-bookworm-backports.sources"
			cat >/etc/apt/sources.list.d/dnsrace-bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
			apt_updated=0
		fi
		apt_update_once
		step "installing bpftool from bookworm-backports"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports bpftool >/dev/null ||
			die "cannot install bpftool from bookworm-backports"
	else
		ensure_packages bpftool
	fi
	v=$(bpftool_version)
	[ -n "$v" ] && version_ge "$v" 7.2.0 ||
		die "bpftool ${v:-missing} is too old: need >= 7.2 (Debian 12: apt-get install -t bookworm-backports bpftool; Debian 13 and Ubuntu 24.04 ship new enough versions)"
}

require_node() {
	command -v node >/dev/null || die "node not found: install Node.js 20 (or 22+)"
	local v
	v=$(node -p 'process.versions.node')
	version_ge "$v" 20.19.0 || die "Node.js $v is too old: need >= 20.19"
}

# npm ci only when package-lock.json changed since the last install.
ensure_node_modules() {
	local stamp=node_modules/.dnsrace-lock.sha256 want
	want=$(sha256sum package-lock.json | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
	step "npm ci"
	npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed (is the npm registry reachable?)"
	echo "$want" >"$stamp"
}

ensure_build() {
	step "compiling TypeScript"
	npx tsc -p tsconfig.json || die "TypeScript build failed"
}
