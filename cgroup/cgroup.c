#include "cgroup.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

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

/* Splits one mountinfo line into root, mount point, fstype and super options. */
/* Splits one mountinfo line into root, mount point, fstype and super options.
 * Fields are separated by single spaces and may be empty (a mount source of ""). */
static int parse_mountinfo_line(char *line, char **root, char **mnt, char **fstype, char **sopts)
{
	char *f[6], *p = line, *tok;

	line[strcspn(line, "\n")] = '\0';
	for (int n = 0; n < 6; n++)
		if (!(f[n] = strsep(&p, " ")))
			return -EINVAL;
	for (tok = f[5]; tok && strcmp(tok, "-") != 0;) /* optional fields end at "-" */
		tok = strsep(&p, " ");
	*fstype = strsep(&p, " ");
	if (!tok || !*fstype || !strsep(&p, " ") /* source */ || !(*sopts = strsep(&p, " ")))
		return -EINVAL;
	*root = f[3];
	*mnt = f[4];
	unescape(*root);
	unescape(*mnt);
	return 0;
}

int nf_mountinfo_find_cpuset(FILE *f, nf_hierarchy *ret)
{
	_cleanup_free_ char *line = NULL, *v1 = NULL, *v2 = NULL, *mem = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, f) > 0) {
		char *root, *mnt, *fstype, *sopts;
		if (parse_mountinfo_line(line, &root, &mnt, &fstype, &sopts) < 0)
			continue;
		/* A bind mount of a sub-cgroup (root != "/") only sees part of the tree. */
		if (strcmp(root, "/") != 0)
			continue;
		char **slot = NULL;
		if (strcmp(fstype, "cgroup") == 0 && has_option(sopts, "cpuset")) {
			slot = &v1;
			if (has_option(sopts, "memory") && !mem && !(mem = strdup(mnt)))
				return -ENOMEM; /* co-mounted */
		} else if (strcmp(fstype, "cgroup2") == 0)
			slot = &v2;
		else if (strcmp(fstype, "cgroup") == 0 && has_option(sopts, "memory"))
			slot = &mem;
		if (slot && !*slot && !(*slot = strdup(mnt)))
			return -ENOMEM;
	}
	if (!v1 && !v2)
		return -ENOENT;
	bool hybrid = v1 && v2, is_v1 = v1; /* TAKE_PTR clears v1 */
	*ret = (nf_hierarchy){
	    .version = is_v1 ? NF_CG_V1 : NF_CG_V2,
	    .mount = is_v1 ? TAKE_PTR(v1) : TAKE_PTR(v2),
	    .hybrid = hybrid,
	    .memory = is_v1 ? TAKE_PTR(mem) : NULL,
	};
	return 0;
}

/* cgroup2 offers cpuset only if no v1 hierarchy holds it and the kernel has it. */
static int v2_has_cpuset(const char *mount)
{
	_cleanup_free_ char *path = NULL, *ctl = NULL;
	if (asprintf(&path, "%s/cgroup.controllers", mount) < 0)
		return -ENOMEM;
	int r = nf_read_line(path, &ctl);
	if (r < 0)
		return r;
	for (char *p = ctl; *p; p++)
		if (*p == ' ')
			*p = ',';
	return has_option(ctl, "cpuset") ? 0 : -ENOENT;
}

int nf_hierarchy_detect(nf_hierarchy *ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	nf_hierarchy h;
	int r = nf_mountinfo_find_cpuset(f, &h);
	if (r < 0)
		return r;
	if (h.version == NF_CG_V2 && (r = v2_has_cpuset(h.mount)) < 0) {
		nf_hierarchy_done(&h);
		return r;
	}
	*ret = h;
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
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		pid_t *v = reallocarray(p->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
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

/* "hierarchy-id:controllers:path" per line; v2 is "0::path", v1 cpuset is the
 * line whose controllers include "cpuset". */
/* The path of the hierarchy that holds controller CTRL (v1), or of the
 * unified one (v2, CTRL NULL), in /proc/PID/cgroup TEXT. */
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
