#include "explain.h"
#include "../../cgroup/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* MemFree of NODE in bytes (its meminfo), or -1. */
static int64_t node_free(unsigned node)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	uint64_t kb;
	const char *p;
	if (asprintf(&path, "/sys/devices/system/node/node%u/meminfo", node) < 0 ||
	    nf_read_file(path, &text, NULL) < 0 || !(p = strstr(text, "MemFree:")))
		return -1;
	p += strlen("MemFree:");
	p += strspn(p, " \t");
	return nf_parse_u64(p, p + strcspn(p, " \n"), &kb) < 0 ? -1 : (int64_t)(kb * 1024);
}

/* "node 1 has 3.0 MiB free, node 2 has ..." for the nodes of TO. */
static void free_of(const nf_nodeset *to, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned n = 0; n < NF_MAX_NODES && off < len; n++) {
		int64_t f = nf_nodeset_has(to, n) ? node_free(n) : -1;
		if (f >= 0)
			off += snprintf(buf + off, len - off, "%snode %u has %.1f MiB free",
					off ? ", " : "", n, f / 1048576.0);
	}
}

static const char *const why_names[NF_WHY_COUNT] = {
    "deadline", "superseded", "no_memory", "denied",  "io_error",
    "shared",	"pinned",     "file",	   "hugetlb",
};

const char *nf_why_name(nf_why w)
{
	return why_names[w];
}

int nf_why_parse(const char *s, nf_why *ret)
{
	for (nf_why w = 0; w < NF_WHY_COUNT; w++)
		if (strcmp(s, why_names[w]) == 0) {
			*ret = w;
			return 0;
		}
	return -EINVAL;
}

static void say(nf_reason *r, nf_why why, uint64_t bytes, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(nf_reason *r, nf_why why, uint64_t bytes, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->text, sizeof(r->text), "%.1f MiB ", bytes / 1048576.0);
	va_start(ap, fmt);
	vsnprintf(r->text + n, sizeof(r->text) - n, fmt, ap);
	va_end(ap);
	r->why = why;
	r->bytes = bytes;
}

/* What numa_maps says of the pages that stayed. */
static size_t by_mapping(const nf_migration *m, nf_reason *r)
{
	size_t n = 0;
	if (m->residual[NF_STAY_SHARED] && !m->sys_nice)
		say(&r[n++], NF_WHY_SHARED, m->residual[NF_STAY_SHARED],
		    "mapped by several processes: they move only with CAP_SYS_NICE "
		    "(MPOL_MF_MOVE_ALL), which numafollow lacks");
	else if (m->residual[NF_STAY_SHARED])
		say(&r[n++], NF_WHY_SHARED, m->residual[NF_STAY_SHARED],
		    "mapped by several processes, which the kernel could not isolate (busy or "
		    "pinned by one of them)");
	/* private pages a full node explains are not pinned ones */
	uint64_t full = m->target_full ? m->residual[NF_STAY_ANON] : m->stayed[NF_MOVE_ENOMEM];
	uint64_t pinned = m->residual[NF_STAY_ANON] > full ? m->residual[NF_STAY_ANON] - full : 0;
	if (pinned)
		say(&r[n++], NF_WHY_PINNED, pinned,
		    "of private memory the kernel could not isolate: pinned (RDMA, io_uring "
		    "fixed buffers, vfio) or busy; pinned pages move once their holder lets go");
	if (m->residual[NF_STAY_FILE])
		say(&r[n++], NF_WHY_FILE, m->residual[NF_STAY_FILE],
		    "of mapped page cache (dirty or under writeback, or shared with other "
		    "cgroups): it moves once written back, or retry");
	if (m->residual[NF_STAY_HUGE])
		say(&r[n++], NF_WHY_HUGETLB, m->residual[NF_STAY_HUGE],
		    "of hugetlb pages: the target needs free huge pages "
		    "(/sys/devices/system/node/nodeN/hugepages)");
	return n;
}

/* What move_pages(2) said of pages it could not move, where that names a
 * cause numa_maps cannot: a full node, a refusal. */
static size_t by_status(const nf_migration *m, const nf_nodeset *to, nf_reason *r)
{
	char free[160];
	size_t n = 0;
	uint64_t full = m->target_full ? m->residual[NF_STAY_ANON] : 0;
	full = m->stayed[NF_MOVE_ENOMEM] > full ? m->stayed[NF_MOVE_ENOMEM] : full;
	if (full) {
		free_of(to, free, sizeof(free));
		say(&r[n++], NF_WHY_NO_MEMORY, full < m->residual_bytes ? full : m->residual_bytes,
		    "found no room on the target: %s; free memory there, or move less",
		    *free ? free : "its free memory is unknown");
	}
	/* what numa_maps shows shared is said below, with its remedy */
	uint64_t denied = m->stayed[NF_MOVE_EACCES] > m->residual[NF_STAY_SHARED]
			      ? m->stayed[NF_MOVE_EACCES] - m->residual[NF_STAY_SHARED]
			      : 0;
	if (denied)
		say(&r[n++], NF_WHY_DENIED, denied,
		    "refused: shared pages without CAP_SYS_NICE, or a target outside the "
		    "task's own cpuset");
	if (m->stayed[NF_MOVE_EIO])
		say(&r[n++], NF_WHY_IO_ERROR, m->stayed[NF_MOVE_EIO],
		    "failed to move with EIO (a page whose writeback failed)");
	return n;
}

static int by_bytes(const void *a, const void *b)
{
	const nf_reason *x = a, *y = b;
	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

size_t nf_explain(const nf_migration *m, const nf_nodeset *to, nf_reason ret[NF_REASONS_MAX])
{
	size_t n = 0;
	if (!m->residual_bytes)
		return 0;
	/* A run stopped early did not try the rest: numa_maps cannot say why that
	 * stayed, only that it is there. */
	if (m->deadline_hit || m->cancelled)
		say(&ret[n++], m->deadline_hit ? NF_WHY_DEADLINE : NF_WHY_SUPERSEDED,
		    m->residual_bytes, "%s",
		    m->deadline_hit
			? "left: the run's deadline (--budget-ms) came first; it is still to move"
			: "left: a newer change of the mems stopped the run");
	n += by_status(m, to, ret + n);
	if (!m->deadline_hit && !m->cancelled)
		n += by_mapping(m, ret + n);
	qsort(ret, n, sizeof(*ret), by_bytes);
	return n;
}
