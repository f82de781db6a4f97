#!/usr/bin/env bash
# Quick start, main job: install what the exporter needs, then run it in the foreground.
# Usage: scripts/run.sh [exporter flags]   (see scripts/run.sh --help)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/prereqs.sh

# --help needs neither root nor a build.
case " $* " in *" --help "* | *" -h "*)
	require_node
	[ -d node_modules/tsx ] || ensure_node_modules
	exec node --import tsx src/main.ts --help
	;;
esac

require_root "$@"
require_btf
require_cgroup2
require_node
ensure_packages ca-certificates
ensure_bpftool
ensure_bpffs
ensure_node_modules
ensure_build
exec node dist/src/main.js "$@"
