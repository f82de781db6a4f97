#!/usr/bin/env bash
# Builds the BPF objects that the exporter and the lab load with bpftool:
#   bpf/*.bpf.c          -> bpf/dist/<name>.bpf.o
#   test/lab/bpf/*.bpf.c -> test/lab/bpf/dist/<name>.bpf.o
# The objects are committed (users need no compiler), so the build is reproducible: same
# sources and same clang give the same bytes, wherever the repository is checked out.
#
# usage: scripts/build-bpf.sh           build and replace the objects
#        scripts/build-bpf.sh --check   build into a temporary directory and compare with the
#                                       objects in the tree; exit 1 naming the stale ones
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLANG="${CLANG:-clang}"
LLVM_STRIP="${LLVM_STRIP:-llvm-strip}"
# Source dir -> output dir. The lab's programs share bpf/ headers (vmlinux.h, dns.h).
SOURCE_DIRS=(bpf test/lab/bpf)
# -mcpu=v3 (ALU32 + JMP32, kernel 5.1+): fewer instructions and fewer verifier states than
# v1/v2 with clang 14; every kernel we support (5.10+) has it.
# -fdebug-prefix-map: BTF line info names source files; keep the checkout path out of it.
CFLAGS=(-g -O2 -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -I bpf
	"-fdebug-prefix-map=$ROOT=.")
TOOLCHAIN_FILE=bpf/dist/TOOLCHAIN

die() {
	echo "build-bpf: $*" >&2
	exit 2
}

need_tools() {
	command -v "$CLANG" >/dev/null ||
		die "'$CLANG' not found: install it with 'apt-get install clang llvm libbpf-dev'"
	command -v "$LLVM_STRIP" >/dev/null ||
		die "'$LLVM_STRIP' not found: install it with 'apt-get install llvm'"
	echo '#include <bpf/bpf_helpers.h>' | "$CLANG" -target bpf -E -x c - >/dev/null 2>&1 ||
		die "<bpf/bpf_helpers.h> not found: install it with 'apt-get install libbpf-dev'"
}

toolchain() {
	"$CLANG" --version | head -n 1
}

# build OUT_ROOT: compiles every source into OUT_ROOT/<dir>/dist/, printing the object paths.
build_all() {
	local out_root=$1 dir src name obj
	for dir in "${SOURCE_DIRS[@]}"; do
		[[ -d $dir ]] || continue
		for src in "$dir"/*.bpf.c; do
			[[ -e $src ]] || continue
			name=$(basename "$src" .c)
			obj="$out_root/$dir/dist/$name.o"
			mkdir -p "$(dirname "$obj")"
			"$CLANG" "${CFLAGS[@]}" -c "$src" -o "$obj.full" ||
				die "compiling $src failed"
			# Drop DWARF, keep .BTF (map layouts for bpftool) and .BTF.ext (func and
			# line info: the global functions need it, and verifier logs show source).
			"$LLVM_STRIP" -g "$obj.full" -o "$obj"
			rm -f "$obj.full"
			echo "$dir/dist/$name.o"
		done
	done
}

cd "$ROOT"
need_tools
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build_all "$tmp" >"$tmp/objects" # not in a subshell: a failed compile must stop us
mapfile -t built <"$tmp/objects"

if [[ ${1:-} == --check ]]; then
	stale=()
	for obj in "${built[@]}"; do
		cmp -s "$tmp/$obj" "$obj" || stale+=("$obj")
	done
	# Committed objects whose source is gone.
	for dir in "${SOURCE_DIRS[@]}"; do
		for obj in "$dir"/dist/*.bpf.o; do
			[[ -e $obj ]] || continue
			[[ -e $dir/$(basename "$obj" .o).c ]] || stale+=("$obj (no source)")
		done
	done
	if ((${#stale[@]})); then
		echo "build-bpf: stale BPF objects (run scripts/build-bpf.sh and commit them):" >&2
		printf '  %s\n' "${stale[@]}" >&2
		if [[ -f $TOOLCHAIN_FILE && "$(cat "$TOOLCHAIN_FILE")" != "$(toolchain)" ]]; then
			echo "build-bpf: note: committed objects were built with '$(cat "$TOOLCHAIN_FILE")'," \
				"this machine has '$(toolchain)'; other clang versions give other bytes" >&2
		fi
		exit 1
	fi
	echo "build-bpf: ${#built[@]} objects up to date"
	exit 0
elif [[ $# -gt 0 ]]; then
	die "unknown argument '$1' (usage: scripts/build-bpf.sh [--check])"
fi

for obj in "${built[@]}"; do
	mkdir -p "$(dirname "$obj")"
	cp "$tmp/$obj" "$obj"
	echo "built $obj ($(stat -c %s "$obj") bytes)"
done
mkdir -p "$(dirname "$TOOLCHAIN_FILE")"
toolchain >"$TOOLCHAIN_FILE"
