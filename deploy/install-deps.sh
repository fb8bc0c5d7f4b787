#!/bin/sh
# Installs the Debian packages that numafollow's build, demo and test VM need
# (scdoc for the man pages, debhelper for make deb; with --tests, also what
# only the tests use).
# Idempotent and quiet: does nothing when everything is there.
set -eu

PKGS="build-essential pkg-config libnuma-dev libcgroup-dev libjson-c-dev
libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev numactl jq
qemu-system-x86 busybox-static cpio kmod util-linux clang libclang-rt-14-dev
curl prometheus wrk crun runc podman python3 openssl protobuf-c-compiler
libprotobuf-c-dev scdoc debhelper"
# --tests: what only the VM tests use (tests/vm/t-docker.sh starts its own
# dockerd; on a systemd machine the package also enables docker.service;
# t-kube-events.sh checks events with python3-kubernetes' models; t-progress.sh
# draws in tmux; t-nri.sh's CRI client is Python's grpc, its stubs made by
# grpc-tools; t-man.sh lints the man pages with mandoc, t-completion.sh loads
# bash-completion's library, t-deb.sh runs lintian)
[ "${1:-}" != --tests ] || PKGS="$PKGS docker.io python3-kubernetes tmux python3-grpcio python3-grpc-tools
mandoc bash-completion lintian"

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
