#!/bin/bash
# vm: --cgroup v2
# t-docker.sh on cgroup v2: the kernel moves the memory inside docker's write.
. tests/vm/t-docker.sh
