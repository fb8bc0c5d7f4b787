#!/bin/bash
# Lays out DIR as a cache for tests/vm/vm.sh (NF_VM_CACHE=DIR) with Debian 13's
# kernel (6.12), fetched through a private apt state: nothing of Debian 13 is
# installed on this machine. Then, for example:
#   NF_VM_CACHE=DIR NF_SHAPES="busy heap" tests/vm/vm.sh --node-mem 1536 \
#       --timeout 3000 -- tests/bench/shapes.sh
# (docs/benchmarks.md: what 6.12 changes for memory that threads keep writing).
set -eu -o pipefail
[ $# = 1 ] || { echo "usage: tests/bench/newer-kernel.sh DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
apt_=(-o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache")
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache" "$dir/dl" "$dir/modules"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
	>"$dir/apt/sources.list"
apt-get "${apt_[@]}" update -qq
pkg=$(apt-cache "${apt_[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
(cd "$dir/dl" && apt-get "${apt_[@]}" download -q "$pkg" 2>/dev/null)
rm -rf "$dir/k" && mkdir "$dir/k" && dpkg -x "$dir"/dl/"$pkg"_*.deb "$dir/k"
# 6.12 builds virtio and fscache in; 9pnet needs netfs first. busybox's
# insmod takes no .xz.
mods="netfs 9pnet 9pnet_virtio 9p overlay"
for m in $mods; do
	xz -dc "$(find "$dir/k" -name "$m.ko.xz")" >"$dir/modules/$m.ko"
done
echo "$mods" >"$dir/mods"
cp "$dir"/k/boot/vmlinuz-* "$dir/vmlinuz"
rm -rf "$dir/k" "$dir/dl"
echo "$pkg in $dir"
