#include "cgroup.h"
#include "libcg.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

static bool has_option(const char *opts, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = opts; p; p = strchr(p, ',')) {
		p += *p == ',';
		if (strncmp(p, opt, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* The hierarchy's version by its file system: cgroup2 or v1 cgroupfs. */
static int fs_version(const char *mount, nf_cgroup_version *ret)
{
	struct statfs fs;
	if (statfs(mount, &fs) < 0)
		return -errno;
	if (fs.f_type != CGROUP2_SUPER_MAGIC && fs.f_type != CGROUP_SUPER_MAGIC)
		return -ENOTDIR;
	*ret = fs.f_type == CGROUP2_SUPER_MAGIC ? NF_CG_V2 : NF_CG_V1;
	return 0;
}

/* libcgroup lists cgroup2 as offering cpuset only where no v1 hierarchy holds
 * it (it reads cgroup2's cgroup.controllers), so v1 wins on hybrid hosts. It
 * reads /proc/mounts, which has no mount root: a bind mount of a sub-cgroup
 * listed before the hierarchy's own mount would win; every layout the project
 * runs in (a host, the DaemonSet's and podman's host /sys/fs/cgroup) mounts a
 * hierarchy at one path. Measured (tests/bench/cgroup-scan.sh, docs/
 * benchmarks.md): 51-53 us a call against 36 us by parsing mountinfo (e1bb11a),
 * once per process. */
int nf_hierarchy_detect(nf_hierarchy *ret)
{
	_cleanup_free_ char *mount = NULL, *memory = NULL;
	nf_cgroup_version v, mv;
	int r = nf_libcg_init();
	if (r < 0 || (r = nf_libcg_mount("cpuset", &mount)) < 0 || (r = fs_version(mount, &v)) < 0)
		return r;
	/* v1 residency reads the memory hierarchy's numa_stat; cgroup2's is not it */
	r = v == NF_CG_V1 ? nf_libcg_mount("memory", &memory) : -ENOENT;
	if (r < 0 && r != -ENOENT)
		return r;
	if (memory && (fs_version(memory, &mv) < 0 || mv != NF_CG_V1))
		free(TAKE_PTR(memory));
	*ret = (nf_hierarchy){.version = v, .mount = TAKE_PTR(mount), .memory = TAKE_PTR(memory)};
	return 0;
}

void nf_hierarchy_done(nf_hierarchy *h)
{
	free(h->mount);
	free(h->memory);
	h->mount = h->memory = NULL;
}

const char *nf_hierarchy_name(const nf_hierarchy *h)
{
	return h->version == NF_CG_V1 ? "v1" : "v2";
}

int nf_cgroup_normalize(const char *mount, const char *arg, char **ret_rel)
{
	size_t ml = strlen(mount);
	while (ml > 1 && mount[ml - 1] == '/')
		ml--;
	if (strncmp(arg, mount, ml) == 0 && (arg[ml] == '/' || arg[ml] == '\0'))
		arg += ml;

	_cleanup_free_ char *rel = malloc(strlen(arg) + 2);
	if (!rel)
		return -ENOMEM;
	size_t off = 0;
	for (const char *p = arg; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			rel[off++] = '/';
			memcpy(rel + off, p, n);
			off += n;
		}
		p += n + (p[n] == '/');
	}
	if (off == 0)
		rel[off++] = '/';
	rel[off] = '\0';
	*ret_rel = TAKE_PTR(rel);
	return 0;
}

int nf_cgroup_open(const nf_hierarchy *h, const char *arg, nf_cgroup *ret)
{
	_cleanup_free_ char *rel = NULL, *path = NULL, *real = NULL, *mreal = NULL;
	int r = nf_cgroup_normalize(h->mount, arg, &rel);
	if (r < 0)
		return r;
	if (asprintf(&path, "%s%s", h->mount, strcmp(rel, "/") == 0 ? "" : rel) < 0)
		return -ENOMEM;
	real = realpath(path, NULL);
	if (!real)
		return -errno;
	mreal = realpath(h->mount, NULL);
	if (!mreal)
		return -errno;
	/* cgroupfs has no symlinks: any difference means one was followed. */
	size_t ml = strcmp(mreal, "/") == 0 ? 0 : strlen(mreal);
	if (strncmp(real, mreal, ml) != 0 ||
	    strcmp(real + ml, strcmp(rel, "/") == 0 ? "" : rel) != 0)
		return -EXDEV;

	_cleanup_free_ char *procs = NULL;
	if (asprintf(&procs, "%s/cgroup.procs", real) < 0)
		return -ENOMEM;
	if (access(procs, F_OK) < 0)
		return errno == ENOENT ? -ENOTDIR : -errno;
	*ret = (nf_cgroup){.h = h, .path = TAKE_PTR(real), .rel = TAKE_PTR(rel)};
	return 0;
}

void nf_cgroup_done(nf_cgroup *cg)
{
	free(cg->path);
	free(cg->rel);
	cg->path = cg->rel = NULL;
}

static int read_nodeset_at(const char *dir, const char *file, nf_nodeset *ret)
{
	_cleanup_free_ char *path = NULL, *s = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	int r = nf_read_line(path, &s);
	if (r < 0)
		return r;
	return nf_nodeset_parse(s, ret);
}

int nf_cgroup_read_mems(const nf_cgroup *cg, nf_nodeset *ret_mems, nf_nodeset *ret_effective)
{
	bool v1 = cg->h->version == NF_CG_V1;
	nf_nodeset mems = {0}, eff;
	int r =
	    read_nodeset_at(cg->path, v1 ? "cpuset.effective_mems" : "cpuset.mems.effective", &eff);
	if (r < 0)
		return r;
	/* The v2 root cgroup has no cpuset.mems: everything is inherited. */
	r = ret_mems ? read_nodeset_at(cg->path, "cpuset.mems", &mems) : 0;
	if (r < 0 && r != -ENOENT)
		return r;
	if (ret_mems)
		*ret_mems = mems;
	if (ret_effective)
		*ret_effective = eff;
	return 0;
}

int nf_cgroup_mems_writable(const nf_cgroup *cg)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/cpuset.mems", cg->path) < 0)
		return -ENOMEM;
	return access(path, W_OK) < 0 ? -errno : 0;
}

int nf_cgroup_write_mems(const nf_cgroup *cg, const nf_nodeset *set)
{
	_cleanup_free_ char *path = NULL;
	char buf[NF_NODESET_STRLEN + 1];
	size_t n = strlen(nf_nodeset_format(set, buf, sizeof(buf) - 1));
	buf[n++] = '\n';
	if (asprintf(&path, "%s/cpuset.mems", cg->path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, buf, n);
	return w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
}

typedef struct {
	pid_t *v;
	size_t n, cap;
} pidvec;

static int pidvec_push(pidvec *p, pid_t pid)
{
	if (nf_grow(&p->v, &p->cap, p->n + 1, sizeof(*p->v), 64) < 0)
		return -ENOMEM;
	p->v[p->n++] = pid;
	return 0;
}

static int read_procs(int dfd, pidvec *out)
{
	_cleanup_close_ int fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* removed while we walk */
	_cleanup_fclose_ FILE *f = fdopen(fd, "re");
	if (!f)
		return -errno;
	TAKE_FD(fd);
	char buf[32];
	errno = 0;
	while (fgets(buf, sizeof(buf), f)) {
		uint64_t pid;
		buf[strcspn(buf, "\n")] = '\0';
		if (nf_parse_u64(buf, NULL, &pid) < 0 || pid == 0 || pid > INT_MAX)
			return -EBADMSG;
		int r = pidvec_push(out, pid);
		if (r < 0)
			return r;
	}
	/* Reading cgroup.procs of a v2 threaded cgroup is refused: its processes
	 * are listed by the domain above it. */
	if (ferror(f) && errno != EOPNOTSUPP)
		return errno ? -errno : -EIO;
	return 0;
}

/* Takes ownership of DFD. */
static int walk(int dfd, pidvec *out, unsigned depth, bool recursive)
{
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	if (depth > 64)
		return -ELOOP;
	int r = read_procs(dirfd(d), out);
	if (r < 0 || !recursive)
		return r;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cfd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		r = walk(cfd, out, depth + 1, true);
		if (r < 0)
			return r;
	}
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* Not libcgroup's: cgroup_get_task_begin/next reads "tasks", thread ids and
 * v1 only (on v2 it failed for all 1,000 containers of tests/bench/
 * cgroup-scan.sh); cgroup_get_procs reads cgroup.procs a little faster (1,000
 * containers: 11.6 ms against 13.7 on the v1 host, one open less), but only
 * under its own mount table (not CG's path), loops without end on a line that
 * is not a number, and ends a list at a read error as if it were complete. */
int nf_cgroup_tasks(const nf_cgroup *cg, bool recursive, pid_t **ret, size_t *ret_n)
{
	pidvec p = {0};
	int dfd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = walk(dfd, &p, 0, recursive);
	if (r < 0) {
		free(p.v);
		return r;
	}
	if (p.n)
		qsort(p.v, p.n, sizeof(*p.v), cmp_pid);
	size_t n = 0;
	for (size_t i = 0; i < p.n; i++)
		if (n == 0 || p.v[n - 1] != p.v[i])
			p.v[n++] = p.v[i];
	*ret = p.v;
	*ret_n = n;
	return 0;
}

/* The path of the hierarchy that holds controller CTRL (v1), or of the
 * unified one (v2, CTRL NULL), in /proc/PID/cgroup TEXT: "id:controllers:path"
 * per line, v2's "0::path". Not libcgroup's cgroup_get_current_controller_path:
 * its scanf("%d:%[^:]:%s") fails on v2's empty controllers (every process in
 * the v2 VM, tests/bench/cgroup-scan.sh) and on v1 cuts a path at a space
 * ("/p000/k 9" became "/p000/k", another cgroup), for no gain (1,000
 * processes: 11.3 ms against 10.8 on the v1 host). */
static int proc_cgroup_find(const char *text, const char *ctrl_name, char **ret_rel)
{
	for (const char *line = text; line && *line;) {
		const char *nl = strchrnul(line, '\n');
		const char *c1 = memchr(line, ':', nl - line);
		const char *c2 = c1 ? memchr(c1 + 1, ':', nl - c1 - 1) : NULL;
		if (c2 && c2 + 1 < nl && c2[1] == '/') {
			_cleanup_free_ char *ctrl = strndup(c1 + 1, c2 - c1 - 1);
			if (!ctrl)
				return -ENOMEM;
			bool match = !ctrl_name ? c1 - line == 1 && *line == '0' && !*ctrl
						: has_option(ctrl, ctrl_name);
			if (match) {
				char *rel = strndup(c2 + 1, nl - c2 - 1);
				if (!rel)
					return -ENOMEM;
				*ret_rel = rel;
				return 0;
			}
		}
		line = *nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int nf_proc_cgroup_parse(const char *text, nf_cgroup_version v, char **ret_rel)
{
	return proc_cgroup_find(text, v == NF_CG_V2 ? NULL : "cpuset", ret_rel);
}

static int pid_cgroup(pid_t pid, const char *ctrl_name, char **ret_rel)
{
	char path[64];
	_cleanup_free_ char *text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	int r = nf_read_file(path, &text, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	return proc_cgroup_find(text, ctrl_name, ret_rel);
}

int nf_pid_cgroup(pid_t pid, nf_cgroup_version v, char **ret_rel)
{
	return pid_cgroup(pid, v == NF_CG_V2 ? NULL : "cpuset", ret_rel);
}

int nf_pid_memcg(pid_t pid, char **ret_rel)
{
	return pid_cgroup(pid, "memory", ret_rel);
}
