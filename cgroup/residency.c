#include "residency.h"
#include "util.h"

#include <string.h>

const char *nf_stay_class_name(nf_stay_class c)
{
	static const char *const names[NF_STAY_COUNT] = {
	    [NF_STAY_ANON] = "anon",
	    [NF_STAY_FILE] = "file",
	    [NF_STAY_SHARED] = "shared",
	    [NF_STAY_HUGE] = "hugetlb",
	};
	return names[c];
}

uint64_t nf_residency_node(const nf_residency *r, unsigned node)
{
	return r->anon[node] + r->file[node];
}

uint64_t nf_residency_outside(const nf_residency *r, const nf_nodeset *target)
{
	uint64_t t = 0;
	for (unsigned n = 0; n < NF_MAX_NODES; n++)
		if (!nf_nodeset_has(target, n))
			t += nf_residency_node(r, n);
	return t;
}

void nf_residency_add(nf_residency *sum, const nf_residency *r)
{
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		sum->anon[n] += r->anon[n];
		sum->file[n] += r->file[n];
	}
}

void nf_residency_nodes(const nf_residency *r, nf_nodeset *ret)
{
	*ret = (nf_nodeset){0};
	for (unsigned n = 0; n < NF_MAX_NODES; n++)
		if (nf_residency_node(r, n))
			nf_nodeset_set(ret, n);
}

/* Parses "N<node>=<count>" in [tok, end). Returns 1 if tok is no such token. */
static int parse_node_count(const char *tok, const char *end, unsigned *node, uint64_t *count)
{
	const char *eq = memchr(tok, '=', end - tok);
	uint64_t n;
	if (tok[0] != 'N' || !eq)
		return 1;
	int r = nf_parse_u64(tok + 1, eq, &n);
	if (r < 0)
		return r;
	if (n >= NF_MAX_NODES)
		return -ERANGE;
	*node = n;
	return nf_parse_u64(eq + 1, end, count);
}

int nf_numa_stat_parse(const char *text, nf_residency *ret)
{
	nf_residency res = {0};
	for (const char *line = text; *line;) {
		const char *eol = line + strcspn(line, "\n");
		uint64_t *row = NULL;
		if (strncmp(line, "anon ", 5) == 0)
			row = res.anon;
		else if (strncmp(line, "file ", 5) == 0)
			row = res.file;
		for (const char *tok = line + 5; row && tok < eol;) {
			const char *end = tok + strcspn(tok, " \n");
			unsigned node;
			uint64_t bytes;
			int r = parse_node_count(tok, end, &node, &bytes);
			if (r != 0)
				return r < 0 ? r : -EBADMSG;
			row[node] = bytes;
			tok = end + (*end == ' ');
		}
		line = eol + (*eol == '\n');
	}
	*ret = res;
	return 0;
}

int nf_numa_stat_v1_parse(const char *text, nf_residency *ret)
{
	nf_residency res = {0};
	uint64_t page = sysconf(_SC_PAGESIZE);
	bool seen = false;
	for (const char *line = text; *line;) {
		const char *eol = line + strcspn(line, "\n");
		uint64_t *row = NULL;
		const char *tok = NULL;
		if (strncmp(line, "hierarchical_anon=", 18) == 0)
			row = res.anon, tok = line + 18;
		else if (strncmp(line, "hierarchical_file=", 18) == 0)
			row = res.file, tok = line + 18;
		if (row) {
			seen = true;
			tok += strcspn(tok, " \n"); /* the total */
			tok += *tok == ' ';
		}
		while (row && tok < eol) {
			const char *end = tok + strcspn(tok, " \n");
			unsigned node;
			uint64_t pages;
			int r = parse_node_count(tok, end, &node, &pages);
			if (r != 0)
				return r < 0 ? r : -EBADMSG;
			row[node] = pages * page;
			tok = end + (*end == ' ');
		}
		line = eol + (*eol == '\n');
	}
	if (!seen)
		return -EBADMSG;
	*ret = res;
	return 0;
}

int nf_cgroup_v1_stat(const nf_cgroup *cg, pid_t task, nf_residency *ret)
{
	_cleanup_free_ char *rel = NULL, *path = NULL, *text = NULL;
	if (!cg->h->memory)
		return -ENOENT;
	int r = nf_pid_memcg(task, &rel);
	if (r < 0)
		return r;
	if (strcmp(rel, cg->rel) != 0)
		return -EXDEV;
	if (asprintf(&path, "%s%s/memory.numa_stat", cg->h->memory, strcmp(rel, "/") ? rel : "") <
	    0)
		return -ENOMEM;
	r = nf_read_file(path, &text, NULL);
	return r < 0 ? r : nf_numa_stat_v1_parse(text, ret);
}

static int parse_vma_token(nf_numa_vma *v, const char *tok, const char *end)
{
	unsigned node;
	uint64_t count;
	int r = parse_node_count(tok, end, &node, &count);
	if (r <= 0) {
		if (r == 0) {
			v->pages[node] += count;
			v->top = node >= v->top ? node + 1 : v->top;
		}
		return r;
	}
	size_t n = end - tok;
	if (n == 4 && memcmp(tok, "huge", 4) == 0)
		v->huge = true;
	else if (n > 5 && memcmp(tok, "file=", 5) == 0)
		v->file = true;
	else if (n >= 5 && memcmp(tok, "anon=", 5) == 0)
		return nf_parse_u64(tok + 5, end, &v->anon);
	else if (n >= 7 && memcmp(tok, "mapmax=", 7) == 0)
		return nf_parse_u64(tok + 7, end, &v->mapmax);
	else if (n >= 18 && memcmp(tok, "kernelpagesize_kB=", 18) == 0)
		return nf_parse_u64(tok + 18, end, &v->page_kb);
	return 0;
}

int nf_numa_vma_parse(const char *line, const char *eol, nf_numa_vma *ret)
{
	const char *tok;
	*ret = (nf_numa_vma){.page_kb = 4};
	if (nf_parse_hex(line, &tok, &ret->start) < 0 || tok > eol || (tok < eol && *tok != ' '))
		return -EBADMSG;
	while (tok < eol && *tok == ' ')
		tok++;
	tok += strcspn(tok, " \n"); /* policy */
	while (tok < eol && *tok && *tok != '\n') {
		tok += *tok == ' ';
		const char *end = tok + strcspn(tok, " \n");
		int r = parse_vma_token(ret, tok, end);
		if (r < 0)
			return r;
		tok = end;
	}
	if (!ret->page_kb || (ret->page_kb & (ret->page_kb - 1)))
		return -EBADMSG; /* the kernel's page sizes are powers of two */
	return ret->page_kb > UINT64_MAX / 1024 ? -ERANGE : 0;
}

static nf_stay_class vma_class(const nf_numa_vma *v)
{
	if (v->huge)
		return NF_STAY_HUGE;
	if (v->mapmax > 1)
		return NF_STAY_SHARED;
	return v->file && v->anon == 0 ? NF_STAY_FILE : NF_STAY_ANON;
}

/* Adds one line's bytes to RES (and outside TARGET, to STAY). */
static int add_vma(const char *line, const char *eol, nf_residency *res, const nf_nodeset *target,
		   uint64_t *stay)
{
	nf_numa_vma v;
	int r = nf_numa_vma_parse(line, eol, &v);
	if (r < 0)
		return r;
	/* Private file mappings with COW pages count as anon: most of their pages are. */
	bool file = v.file && v.anon == 0;
	for (unsigned n = 0; n < v.top; n++) {
		uint64_t bytes;
		if (__builtin_mul_overflow(v.pages[n], v.page_kb * 1024, &bytes))
			return -ERANGE;
		if (!bytes)
			continue;
		(file ? res->file : res->anon)[n] += bytes;
		if (target && !nf_nodeset_has(target, n))
			stay[vma_class(&v)] += bytes;
	}
	return 0;
}

int nf_numa_maps_parse(const char *text, const nf_nodeset *target, nf_task_maps *ret)
{
	nf_task_maps m = {0};
	for (const char *line = text; *line;) {
		const char *eol = line + strcspn(line, "\n");
		if (eol > line) {
			int r = add_vma(line, eol, &m.res, target, m.stay);
			if (r < 0)
				return r;
		}
		line = eol + (*eol == '\n');
	}
	*ret = m;
	return 0;
}

int nf_task_thread(pid_t pid, pid_t *ret_tid)
{
	char path[64];
	_cleanup_free_ char *stat = NULL;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = nf_read_file(path, &stat, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	const char *p = strrchr(stat, ')'); /* comm may hold anything but ends at the last ')' */
	if (!p || p[1] != ' ')
		return -EBADMSG;
	if (p[2] != 'Z') {
		*ret_tid = pid;
		return 0;
	}
	/* The leader exited (pthread_exit) while other threads run on: they own the mm. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	for (struct dirent *de; (de = readdir(d));) {
		uint64_t tid;
		if (nf_parse_u64(de->d_name, NULL, &tid) == 0 && tid != (uint64_t)pid) {
			*ret_tid = tid;
			return 0;
		}
	}
	return -ESRCH;
}

int nf_task_numa_maps(pid_t pid, pid_t tid, const nf_nodeset *target, nf_task_maps *ret)
{
	char path[64];
	_cleanup_free_ char *text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/numa_maps", (int)pid, (int)tid);
	int r = nf_read_file(path, &text, NULL);
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	return nf_numa_maps_parse(text, target, ret);
}

int nf_cgroup_residency(const nf_cgroup *cg, const pid_t *tasks, size_t n, nf_residency *ret,
			nf_residency_source *ret_source)
{
	nf_residency res = {0};
	if (cg->h->version == NF_CG_V2) {
		_cleanup_free_ char *path = NULL, *text = NULL;
		if (asprintf(&path, "%s/memory.numa_stat", cg->path) < 0)
			return -ENOMEM;
		int r = nf_read_file(path, &text, NULL);
		if (r == 0 && (r = nf_numa_stat_parse(text, &res)) == 0) {
			*ret = res;
			*ret_source = NF_SRC_NUMA_STAT;
			return 0;
		}
		if (r != -ENOENT)
			return r;
	} else if (n > 0 && strcmp(cg->rel, "/") != 0) {
		int r = nf_cgroup_v1_stat(cg, tasks[0], &res);
		if (r == 0) {
			*ret = res;
			*ret_source = NF_SRC_NUMA_STAT;
			return 0;
		}
		if (r == -ENOMEM)
			return r;
	}
	int r = nf_tasks_residency(tasks, n, &res);
	if (r < 0)
		return r;
	*ret = res;
	*ret_source = NF_SRC_NUMA_MAPS;
	return 0;
}

int nf_tasks_residency(const pid_t *tasks, size_t n, nf_residency *ret)
{
	nf_residency res = {0};
	for (size_t i = 0; i < n; i++) {
		nf_task_maps m;
		pid_t tid;
		int r = nf_task_thread(tasks[i], &tid);
		if (r == 0 && (r = nf_task_numa_maps(tasks[i], tid, NULL, &m)) == 0)
			nf_residency_add(&res, &m.res);
		if (r < 0 && r != -ESRCH)
			return r;
	}
	*ret = res;
	return 0;
}
