#!/bin/bash
# numafollow-nri against a stand-in runtime and agent (tests/nri/fake.py):
# NRI's multiplexer and ttRPC as containerd 1.7.24 speaks them, the answers'
# content, the re-pin's steps in order, a plugin killed mid-move, a runtime
# that goes away and comes back, a pre-launched plugin. No VM: the real
# runtime is tests/vm/t-nri.sh's.
set -eu -o pipefail
py=/usr/bin/python3 # Debian's, with python3-grpc-tools
[ -x build/numafollow-nri ] || { echo "SKIP: build/numafollow-nri is not built"; exit 77; }
$py -c 'import grpc_tools.protoc' 2>/dev/null || { echo "SKIP: python3-grpc-tools is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/stubs"
(cd plugin/nri/proto && $py -m grpc_tools.protoc -I. -I/usr/lib/python3/dist-packages/grpc_tools/_proto \
	--python_out="$T/stubs" api.proto ttrpc/request.proto google/rpc/status.proto)
STUBS=$T/stubs PYTHONPATH=tests/nri timeout 300 $py tests/nri/fake-test.py build/numafollow-nri "$T" ||
	{ rc=$?; echo "--- the plugin's log:"; tail -n 60 "$T/plugin.log"; exit $rc; }
