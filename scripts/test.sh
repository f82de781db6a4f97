#!/usr/bin/env bash
# Quick start, test suite: install what the tests need (Debian packages, npm ci, bpffs),
# then run every lane: lint, type check, BPF object freshness, unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/prereqs.sh

require_root "$@"
require_btf
require_cgroup2
require_node
# clang/llvm/libbpf-dev: to check that the committed BPF objects match their sources.
# The lab: dnsmasq-base (DNS replicas), musl-tools (musl client), iproute2, iptables, tcpdump,
# bind9-dnsutils (dig), conntrack (netlink statistics), python3 (glibc getaddrinfo client),
# gcc (the conntrack race client); qemu-system-x86, busybox-static, kmod, cpio, xz-utils, zstd
# (the kernel matrix: Debian kernels booted under qemu, test/kernel-matrix/README.md);
# chromium (the drill-down page, driven headless by playwright-core); tshark (the bench's
# comparison with a user-space capture); util-linux (setpriv: the least-privilege test); openssl
# (certificates for the Kubernetes client's TLS tests).
ensure_packages clang llvm libbpf-dev clang-format dnsmasq-base musl-tools iproute2 iptables nftables tcpdump \
	bind9-dnsutils conntrack python3 procps util-linux gcc libc6-dev \
	qemu-system-x86 busybox-static kmod cpio xz-utils zstd chromium tshark openssl
ensure_bpftool
ensure_bpffs
ensure_node_modules

step "lint and type check"
npx eslint . && npx prettier --check . >/dev/null || die "lint failed: run 'npm run format' and 'npx eslint .'"
find bpf test/lab/bpf -name '*.[ch]' ! -name vmlinux.h ! -path '*/dist/*' -print0 |
	xargs -0 clang-format --dry-run --Werror ||
	die "BPF C is not clang-formatted: run clang-format -i on the files named above"
npx tsc -p tsconfig.json --noEmit || die "type check failed"

step "BPF objects match their sources"
scripts/build-bpf.sh --check

step "tests"
exec npx vitest run "$@"
