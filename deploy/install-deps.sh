#!/bin/sh
# Installs the Debian packages that numafollow's build, tests and test VM need.
# Idempotent and quiet: does nothing when everything is there.
set -eu

PKGS="build-essential pkg-config libnuma-dev libcgroup-dev libjson-c-dev
libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev numactl jq
qemu-system-x86 busybox-static cpio kmod util-linux clang libclang-rt-14-dev
curl prometheus wrk crun runc podman python3 python3-kubernetes openssl"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
