#!/bin/bash
# Boot a multi-node NUMA qemu VM that shares the host's root read-only, run one
# command inside it as root (in the current directory, cgroups mounted) and
# return its output and exit status. See BRIEF.md section 3.
set -eu -o pipefail

usage() {
	cat <<'USAGE'
Usage: tests/vm/vm.sh [OPTIONS] [--] COMMAND [ARG...]

Boots a qemu (TCG) VM with NUMA nodes, runs COMMAND as root in the current
directory (which must be on the host's root file system) and exits with its status.

  --nodes N          NUMA nodes (default 2)
  --memory-only K    the last K nodes have memory but no CPU (default 0)
  --node-mem MB      memory per node in MiB (default 1024)
  --cgroup MODE      v2 (default), v1 (cpuset and memory hierarchies), hybrid
                     (v1 cpuset and memory, cgroup2 at /sys/fs/cgroup/unified)
  --timeout S        kill the VM after S seconds (default 600)
  --prepare          only fetch the kernel and build the initramfs
  -h, --help         this text

Environment: NF_VM_CACHE (default ~/.cache/numafollow-vm) holds the kernel and
initramfs, built once (its file mods, if any, lists the modules to load);
NF_VM_KEEP=FILE keeps the VM's console there. Other NF_* variables are passed to
COMMAND. Exit status: COMMAND's, 124 on timeout, 125 when the VM itself failed
(its console log is printed).
USAGE
}

nodes=2 memonly=0 nodemem=1024 mode=v2 tmo=600 prepare=0
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) nodes=$2; shift 2 ;;
	--memory-only) memonly=$2; shift 2 ;;
	--node-mem) nodemem=$2; shift 2 ;;
	--cgroup) mode=$2; shift 2 ;;
	--timeout) tmo=$2; shift 2 ;;
	--prepare) prepare=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) echo "vm.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
case "$mode" in v1 | v2 | hybrid) ;; *) echo "vm.sh: --cgroup must be v1, v2 or hybrid" >&2; exit 2 ;; esac
if [ "$memonly" -ge "$nodes" ]; then
	echo "vm.sh: at least one node needs a CPU" >&2
	exit 2
fi

cache=${NF_VM_CACHE:-${HOME:-/root}/.cache/numafollow-vm}
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci 9pnet 9pnet_virtio netfs fscache 9p overlay"
# another kernel's cache (tests/bench/newer-kernel.sh) names its own modules
[ ! -s "$cache/mods" ] || mods=$(cat "$cache/mods")

# The kernel is the image package linux-image-amd64 depends on, fetched once.
prepare_kernel() {
	[ -e "$cache/vmlinuz" ] && return 0
	mkdir -p "$cache/dl"
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then # a fresh machine may have no package lists yet
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || { echo "vm.sh: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 125; }
	(cd "$cache/dl" && apt-get download -q "$pkg" >/dev/null 2>&1)
	rm -rf "$cache/k" && mkdir -p "$cache/k"
	dpkg -x "$cache"/dl/"$pkg"_*.deb "$cache/k"
	rm -rf "$cache/dl"
	local v
	v=$(ls "$cache/k/lib/modules")
	echo "$v" >"$cache/kversion"
	mkdir -p "$cache/modules"
	for m in $mods; do
		find "$cache/k/lib/modules/$v" -name "$m.ko*" -exec cp {} "$cache/modules/" \;
	done
	cp "$cache"/k/boot/vmlinuz-* "$cache/vmlinuz.tmp"
	rm -rf "$cache/k"
	mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
}

# The VM's /init. The host's root is read-only and unchanged while the VM runs,
# so it is mounted with cache=loose: 20 runs of numafollow-hook took 2.3 s
# instead of 3.6 s (with the settings on the qemu command line below).
init_script() {
	cat <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $mods; do insmod /lib/modules/\$m.ko || echo "init: insmod \$m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose host /lower
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /out
mount -t tmpfs -o size=256m tmpfs /ov
mkdir -p /ov/u /ov/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/ov/u,workdir=/ov/w /newroot
mkdir -p /newroot/nf-out
mount --move /out /newroot/nf-out
chroot /newroot /bin/bash /nf-out/boot.sh
poweroff -f
INIT
}
# named after its /init, so that a changed /init builds a new one
initrd="$cache/initramfs-$(init_script | cksum | cut -d' ' -f1).cpio.gz"

prepare_initramfs() {
	[ -e "$initrd" ] && return 0
	local d
	d=$(mktemp -d)
	mkdir -p "$d"/{bin,sbin,proc,sys,dev,lower,out,ov,newroot,lib/modules}
	cp /bin/busybox "$d/bin/busybox"
	for a in sh mount umount mkdir insmod chroot poweroff cat echo sleep; do
		ln -s busybox "$d/bin/$a"
	done
	cp "$cache"/modules/*.ko "$d/lib/modules/"
	init_script >"$d/init"
	chmod +x "$d/init"
	(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$cache/initramfs.tmp"
	rm -rf "$d"
	rm -f "$cache"/initramfs*.cpio.gz
	mv "$cache/initramfs.tmp" "$initrd"
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
prepare_kernel
prepare_initramfs
flock -u 9
[ "$prepare" = 1 ] && exit 0
[ $# -gt 0 ] || { usage >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/nf-vm.XXXXXX")
trap 'rm -rf "$out"' EXIT

# Runs inside the VM, chrooted into the overlay of the host's root.
{
	cat <<'BOOT'
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ip link set lo up 2>/dev/null || busybox ifconfig lo 127.0.0.1 up # TCP tests use loopback
# /tmp stays the overlay's: the checkout under test may live in the host's /tmp.
mount -t tmpfs tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
BOOT
	case "$mode" in
	v2)
		echo 'mount -t cgroup2 none /sys/fs/cgroup'
		echo 'echo "+cpuset +memory" >/sys/fs/cgroup/cgroup.subtree_control'
		;;
	v1 | hybrid)
		# all the controllers of a v1 host: OCI runtimes need devices, freezer...
		echo 'for c in cpuset memory devices freezer pids blkio cpu,cpuacct; do mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c none /sys/fs/cgroup/$c; done; ln -s cpu,cpuacct /sys/fs/cgroup/cpu; ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct'
		echo 'echo 1 >/sys/fs/cgroup/memory/memory.use_hierarchy 2>/dev/null'
		if [ "$mode" = hybrid ]; then
			echo 'mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified'
		fi
		;;
	esac
	printf 'export NF_VM=1 NF_VM_NODES=%s NF_VM_CGROUP=%s\n' "$nodes" "$mode"
	for v in $(compgen -e | grep '^NF_' | grep -v '^NF_VM'); do # settings for the test
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	# what is running 45 s before the limit, for a test that hangs (vm.sh prints it)
	printf '(sleep %d; cat /proc/loadavg; ps -N --ppid 2 -p 2 -o pid,ppid,stat,wchan:24,etime,args | cut -c 1-200) >/nf-out/stuck 2>&1 &\n' \
		$((tmo > 90 ? tmo - 45 : tmo / 2))
	printf 'cd %q || exit 125\n' "$PWD"
	printf '%q ' "$@"
	echo '>/nf-out/output 2>&1 </dev/null'
	echo 'echo $? >/nf-out/rc'
} >"$out/boot.sh"

cpus=$((nodes - memonly))
total=$((nodes * nodemem))
numa=()
for ((i = 0; i < nodes; i++)); do
	numa+=(-object "memory-backend-ram,id=m$i,size=${nodemem}M")
	if [ "$i" -lt "$cpus" ]; then
		numa+=(-numa "node,nodeid=$i,cpus=$i,memdev=m$i")
	else
		numa+=(-numa "node,nodeid=$i,memdev=m$i")
	fi
done

# The command's output streams back through the 9p share while the VM runs.
#
# Under TCG (QEMU 7.2), a store to a guest page that still holds code QEMU
# translated takes a slow path until those translations are gone (cputlb.c,
# notdirty_write). Such pages are freed all the time (runc 1.1's init, for one,
# runs from a memfd copy of runc), and a process that gets one and clears it can
# stall for seconds: hooks ran past runc's 10 s timeout before their main(), and
# one caught in state R had its CPU in clear_page_erms under a page fault in
# ld.so (sysrq-l), at one or two faults a second. Hence clears by 8-byte stores
# rather than 1-byte ones (-erms) and no clearing of pages that are about to be
# overwritten (init_on_alloc=0): none of it changes what the tests exercise
# (cgroups, cpusets, migration).
: >"$out/output"
timeout -k 5 "$tmo" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max,-erms -smp "$cpus" -m "${total}M" "${numa[@]}" \
	-kernel "$cache/vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 quiet loglevel=5 panic=-1 transparent_hugepage=madvise init_on_alloc=0" \
	-nographic -no-reboot -nodefaults -serial stdio -display none \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
	</dev/null >"$out/console" 2>&1 &
qpid=$!
tail -n +1 -f --pid=$qpid "$out/output"
set +e
wait $qpid
q=$?
set -e
# A guest kernel's report of a lockup or a stall (with its stack, at loglevel 5):
# under TCG a guest CPU can spin for minutes in the kernel (t-docker-v2 saw runc
# and runc's init stuck 425 s, once in many runs); tests/run.sh reruns such a
# failure once.
kernel_report() {
	local re='soft lockup|blocked for more than|rcu_.* detected stalls'
	grep -qE "$re" "$out/console" || return 0
	echo "vm.sh: the guest kernel reported a lockup or a stall; its first report:"
	grep -m1 -A 45 -E "$re" "$out/console"
} >&2
[ -z "${NF_VM_KEEP:-}" ] || cp "$out/console" "$NF_VM_KEEP"
if [ "$q" = 124 ] || [ "$q" = 137 ]; then
	echo "vm.sh: timed out after ${tmo}s" >&2
	[ ! -s "$out/stuck" ] || { echo "vm.sh: the VM's processes before the limit:"; cat "$out/stuck"; } >&2
	kernel_report
	echo "vm.sh: the console's last lines:" >&2
	tail -n 20 "$out/console" >&2
	exit 124
fi
if [ ! -e "$out/rc" ]; then
	echo "vm.sh: the VM did not run the command (qemu exit $q); console:" >&2
	tail -n 40 "$out/console" >&2
	exit 125
fi
rc=$(cat "$out/rc")
[ "$rc" = 0 ] || [ "$rc" = 77 ] || kernel_report
exit "$rc"
