#!/bin/sh
# Regenerate the checked-in vmlinux.h from a BTF blob.
# usage: vmlinux/gen.sh [BTF_FILE] [ARCH]   (defaults: /sys/kernel/btf/vmlinux, x86)
# CO-RE relocations make the result usable on other kernels; regenerate only
# to pick up new types (e.g. a new tracepoint or enum), not per target kernel.
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
arch=${2:-x86}
dir=$(dirname "$0")/$arch
[ -r "$btf" ] || { echo "vmlinux/gen.sh: cannot read $btf (pass a BTF file, or boot a kernel with CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 2; }
mkdir -p "$dir"
bpftool btf dump file "$btf" format c > "$dir/vmlinux.h.tmp"
mv "$dir/vmlinux.h.tmp" "$dir/vmlinux.h"
echo "wrote $dir/vmlinux.h from $btf"
