#!/bin/sh
# Regenerate the checked-in vmlinux.h from a BTF blob.
# usage: vmlinux/gen.sh [BTF_FILE | debian:SUITE] [ARCH]
#   defaults: /sys/kernel/btf/vmlinux, x86
#   debian:SUITE takes the BTF of the kernel Debian's linux-image-ARCH picks
#   in SUITE (downloaded with scripts/apt-local, cut out of the boot image by
#   vmlinux/btf-of-image): how vmlinux/arm64/vmlinux.h is made on an x86 host,
#   `make vmlinux ARCH=arm64 BTF=debian:bookworm-backports`.
# CO-RE relocations make the result usable on other kernels; regenerate only
# to pick up new types (e.g. a new tracepoint or enum), not per target kernel.
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
arch=${2:-x86}
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/vmlinux/$arch
case $btf in
debian:*)
	suite=${btf#debian:}
	case $arch in x86) deb=amd64 ;; *) deb=$arch ;; esac
	tmp=$top/.output/vmlinux-$arch
	rm -rf "$tmp" && mkdir -p "$tmp/deb"
	pkg=$("$top/scripts/apt-local" "$top/.output/vm/apt/$deb-$suite" "$suite" "$deb" \
		apt-cache depends "linux-image-$deb" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || { echo "vmlinux/gen.sh: $suite has no linux-image-$deb" >&2; exit 1; }
	(cd "$tmp/deb" && "$top/scripts/apt-local" "$top/.output/vm/apt/$deb-$suite" "$suite" "$deb" \
		apt-get -qq download "$pkg:$deb")
	dpkg-deb -x "$tmp"/deb/*.deb "$tmp/root"
	"$top/vmlinux/btf-of-image" "$tmp"/root/boot/vmlinuz-* "$tmp/btf"
	btf=$tmp/btf
	;;
esac
[ -r "$btf" ] || { echo "vmlinux/gen.sh: cannot read $btf (pass a BTF file, or boot a kernel with CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 2; }
mkdir -p "$dir"
bpftool btf dump file "$btf" format c > "$dir/vmlinux.h.tmp"
mv "$dir/vmlinux.h.tmp" "$dir/vmlinux.h"
echo "wrote $dir/vmlinux.h from $btf${pkg:+ ($pkg)}"
