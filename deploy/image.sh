#!/bin/bash
# make image: deploy/image.sh BUILD_DIR IMAGE_NAME. Lays out BUILD_DIR/image/root
# (numafollowd, numafollow, numafollow-nri and every library ldd names, the loader included),
# builds deploy/Containerfile over it with podman into its own vfs storage
# under BUILD_DIR/image (nothing touches the machine's image store), and saves
# BUILD_DIR/numafollowd-image.tar (OCI archive): `podman load -i` it, or push it.
set -eu -o pipefail
B=$1 NAME=$2
ctx=$B/image
rm -rf "$ctx/root"
mkdir -p "$ctx/root/usr/sbin" "$ctx/root/usr/bin" "$ctx/root/run/numafollow" \
	"$ctx/root/var/lib/numafollow" "$ctx/root/etc/numafollow" "$ctx/root/tmp"
chmod 1777 "$ctx/root/tmp"
cp "$B/numafollowd" "$ctx/root/usr/sbin/numafollowd"
cp "$B/numafollow" "$ctx/root/usr/bin/numafollow"
cp "$B/numafollow-nri" "$ctx/root/usr/sbin/numafollow-nri" # the NRI plugin's container
# "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" and the loader's own line
for lib in $(ldd "$B/numafollowd" "$B/numafollow" "$B/numafollow-nri" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do
	mkdir -p "$ctx/root$(dirname "$lib")"
	cp -L "$lib" "$ctx/root$lib"
done
# /lib64 and /lib are symlinks into /usr on Debian 12: the loader's path must resolve
for l in lib lib64; do
	[ -L "/$l" ] && [ ! -e "$ctx/root/$l" ] && ln -s "$(readlink "/$l")" "$ctx/root/$l"
done
cp deploy/Containerfile "$ctx/Containerfile"
pm() { podman --root "$ctx/storage" --runroot "$ctx/run" --storage-driver vfs --events-backend none "$@"; }
pm build --quiet --pull=never -t "$NAME" -f "$ctx/Containerfile" "$ctx" >/dev/null
rm -f "$B/numafollowd-image.tar"
pm save --quiet --format oci-archive -o "$B/numafollowd-image.tar" "$NAME"
pm image prune -f >/dev/null # the previous build's image, untagged now
echo "image $NAME: $B/numafollowd-image.tar ($(du -h "$B/numafollowd-image.tar" | cut -f1)); podman load -i it"
