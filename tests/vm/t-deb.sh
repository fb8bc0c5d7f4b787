#!/bin/bash
# vm: --cgroup v2
# The Debian package (make deb) on the VM's root: the host's, under the VM's
# tmpfs overlay, so nothing reaches the host. dpkg -i installs it; the agent
# and the CLI run from /usr/sbin and /usr/bin (the VM runs no systemd, so the
# postinst enables the unit but starts nothing: the agent is started by hand,
# on a private socket, with the packaged settings file); man finds the pages;
# dpkg -r removes every file but the settings, dpkg -P those too.
. tests/vm/lib.sh
need_nodes 2

ver=$("$B/numafollow" --version | awk '{ print $2 }')
deb=$B/numafollow_${ver}_$(dpkg --print-architecture).deb
[ -e "$deb" ] || fail "$deb is not built (make deb)"
! dpkg-query -W -f='${Status}' numafollow 2>/dev/null | grep -q installed ||
	skip "the host's root has numafollow installed: no fresh install to check"
dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\.||' >"$T/files"
grep '^/etc/' "$T/files" >"$T/conffiles"
while read -r f; do
	[ ! -e "$f" ] || skip "$f is on the host's root already"
done <"$T/files"

dpkg -i "$deb" >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -i"; }
expect_eq "dpkg -i: status" "$(dpkg-query -W -f='${Status} ${Version}' numafollow)" "install ok installed $ver"
while read -r f; do [ -e "$f" ] || fail "$f not installed"; done <"$T/files"
say "$(wc -l <"$T/files") files installed"
[ -L /etc/systemd/system/multi-user.target.wants/numafollowd.service ] ||
	fail "numafollowd.service is not enabled"
[ ! -e /etc/systemd/system/multi-user.target.wants/numafollow-nri.service ] ||
	fail "numafollow-nri.service is enabled"
say "numafollowd.service enabled, numafollow-nri.service not"

NF=/usr/bin/numafollow NFD=/usr/sbin/numafollowd
expect_eq "numafollow --version" "$($NF --version)" "numafollow $ver"
expect_eq "numafollowd --version" "$($NFD --version)" "numafollowd $ver"
expect_eq "numafollow-nri --version" "$(/usr/sbin/numafollow-nri --version)" "numafollow-nri $ver"
expect_eq "numafollow-hook --version" "$(/usr/libexec/numafollow/numafollow-hook --version)" "numafollow-hook $ver"

# A docker-named container with 64 MiB on node 0.
cid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cg=$(mkcg system.slice/docker-$cid.scope 0)
pid=$(start_hog "$cg" -m 64)
# the packaged settings (every line a comment) after lib.sh's /dev/null
start_agent --config /etc/numafollow/numafollowd.conf --reconcile-interval 3600 --docker-socket "" --kube-events off
$NF status --socket "$SOCK" >"$T/out" || { cat "$T/out"; fail "numafollow status"; }
head -n 3 "$T/out"
$NF ps --socket "$SOCK" >"$T/out" || { cat "$T/out"; fail "numafollow ps"; }
cat "$T/out"
grep -q "^${cid:0:14} *docker " "$T/out" || fail "numafollow ps does not list the container"
$NF show --json "/system.slice/docker-$cid.scope" >"$T/show.json" || fail "numafollow show"
expect_eq "show: tasks" "$(jq -r .tasks "$T/show.json")" 1
expect_ge "show: MiB on node 0" "$(($(jq -r '.memory["0"] // 0' "$T/show.json") / MiB))" 63

# The memory follows a change of the mems; the CLI reads the record.
set_mems "$cg" 1
expect_on "$pid" 1 "after the v2 write"
recorded() { $NF history --json --socket "$SOCK" "$cid" | jq -e '.migrations[0].result == "ok"' >/dev/null; }
wait_for "the migration's record" 20 recorded
$NF history --socket "$SOCK" "$cid"
kill "$AGENT"
wait "$AGENT" || fail "numafollowd did not stop cleanly"
AGENT=

# The pages, through man-db.
expect_eq "man -w numafollow" "$(man -w numafollow)" /usr/share/man/man8/numafollow.8.gz
expect_eq "man -w numafollowd.conf" "$(man -w 5 numafollowd.conf)" /usr/share/man/man5/numafollowd.conf.5.gz
MANWIDTH=100 man -P cat numafollowd.conf 2>/dev/null | grep -q "THE HOOK'S SETTINGS: hook.conf" ||
	fail "man numafollowd.conf does not render"
say "man renders numafollowd.conf(5)"

# Remove: every file goes but the settings (conffiles); purge: those too.
echo "workers = 3" >>/etc/numafollow/numafollowd.conf
dpkg -r numafollow >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -r"; }
expect_eq "dpkg -r: status" "$(dpkg-query -W -f='${Status}' numafollow)" "deinstall ok config-files"
while read -r f; do
	if grep -qx "$f" "$T/conffiles"; then
		[ -e "$f" ] || fail "dpkg -r removed the settings $f"
	else
		[ ! -e "$f" ] || fail "dpkg -r left $f"
	fi
done <"$T/files"
grep -qx "workers = 3" /etc/numafollow/numafollowd.conf || fail "dpkg -r changed the edited settings"
say "dpkg -r: every file gone but $(wc -l <"$T/conffiles") settings files, kept as edited"
dpkg -P numafollow >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg -P"; }
st=$(dpkg-query -W -f='${Status}' numafollow 2>/dev/null || true)
[ -z "$st" ] || [ "$st" = "unknown ok not-installed" ] || fail "dpkg -P: status '$st'"
while read -r f; do [ ! -e "$f" ] || fail "dpkg -P left $f"; done <"$T/files"
[ ! -e /etc/numafollow ] || fail "dpkg -P left /etc/numafollow: $(ls -A /etc/numafollow)"
[ ! -e /etc/systemd/system/multi-user.target.wants/numafollowd.service ] ||
	fail "dpkg -P left numafollowd.service enabled"
say "dpkg -P: the settings gone too, the unit's link gone"
echo PASS
