#include "mover.h"
#include "../../cgroup/residency.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <limits.h>
#include <numaif.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#define PAGE UINT64_C(4096)
/* above the largest user address of x86-64's 5-level paging */
#define USER_END (UINT64_C(1) << 57)
#define HPAGE	 (UINT64_C(2) << 20)

/* A range whose virtual size is more than SPARSE_RATIO times what it holds and
 * at least SPARSE_MIN_BYTES is not addressed: reading its pagemap (8 bytes per
 * virtual page) would cost more than moving it with one migrate_pages sweep.
 * Below DENSE_PERCENT resident, pagemap picks the present pages; above it
 * every page is passed and the absent ones come back -ENOENT, cheaply. */
#define SPARSE_RATIO	 UINT64_C(256)
#define SPARSE_MIN_BYTES (UINT64_C(1) << 30)
#define DENSE_PERCENT	 50
/* pagemap entries read at a time, and the largest virtual span of one slice */
#define PM_CHUNK  4096
#define SLICE_MAX (UINT64_C(1) << 30)
/* Present pages a slice holds, about: the share one worker takes at a time.
 * Batches span slices; with a fixed batch (nf_move_opts.batch_pages) a slice
 * holds at least one. */
#define SLICE_PAGES 4096
/* status[] before a call: the kernel leaves it untouched for pages it did not try */
#define NOT_TRIED INT_MIN

typedef struct {
	pid_t pid, tid;
	int pagemap; /* opened by the scan where a range needs it */
	atomic_bool gone;
} task;

typedef enum { R_DENSE, R_PAGEMAP, R_THP, R_HUGETLB } range_mode;

typedef struct {
	size_t task;
	uint64_t start, end;
	uint64_t cur, hi; /* [cur, hi) is not taken yet; under mover.lock */
	uint64_t step;	  /* virtual bytes per slice: the unit of sharing between workers */
	uint64_t page;	  /* 4 KiB, or the hugetlb page size */
	uint64_t bytes;	  /* resident on source nodes when scanned */
	range_mode mode;
	int dest; /* where all its pages go, or -1: ask each page's node first */
} range;

typedef struct {
	const nf_move_opts *o;
	size_t slice_pages; /* present pages a slice holds (about) */
	uint64_t call_ns;   /* what a move_pages call should take */
	task *tasks;
	size_t n_tasks;
	range *ranges;
	size_t n_ranges, cap_ranges;
	pthread_mutex_t lock; /* guards next, the ranges' cur, rate_next and res */
	size_t next;
	uint64_t rate_next; /* token bucket as a virtual clock: when the next byte may go */
	atomic_bool stop;
	_Atomic uint64_t moved_now; /* what the workers moved so far, for progress */
	uint64_t total;		    /* on source nodes when scanned */
	uint64_t start_ns;	    /* of the moving */
	nf_move_result res;
} mover;

/* A batch being built, with its buffers; one per worker thread. A batch holds
 * pages of one task, from as many of its ranges as fit: the per-call cost is
 * paid per batch, not per mapping. */
typedef struct {
	mover *m;
	const range *r; /* of the slice being added */
	size_t task;	/* whose pages the batch holds */
	size_t n, cap;
	size_t limit;		      /* 4 KiB units per call, sized by time (pace) */
	double paced_ns, paced_units; /* the last calls', halved at each call */
	uint64_t bytes;		      /* of the batch being built */
	bool ask; /* some pages go where the node they are on says (nodes[] -1) */
	void **addr;
	int *nodes, *status;
	uint64_t *weight;
	void **heads; /* transparent huge pages passed by their first address */
	size_t n_heads;
	/* pages move_pages said were absent (-ENOENT), to look at again */
	void **hid;
	uint64_t *hid_weight;
	size_t n_hid;
	bool hidden_pass;
	uint64_t pm[PM_CHUNK];
	uint64_t hid_pm[PM_CHUNK]; /* resolve_hidden's: a slice may be reading pm */
	nf_move_result res;
} worker;

const char *nf_move_err_name(nf_move_err e)
{
	static const char *const names[NF_MOVE_ERR_COUNT] = {
	    [NF_MOVE_EBUSY] = "ebusy", [NF_MOVE_EACCES] = "eacces", [NF_MOVE_ENOMEM] = "enomem",
	    [NF_MOVE_EIO] = "eio",     [NF_MOVE_HIDDEN] = "hidden", [NF_MOVE_OTHER] = "other",
	};
	return names[e];
}

void nf_move_opts_init(nf_move_opts *o)
{
	*o = (nf_move_opts){0};
	for (unsigned n = 0; n < NF_MAX_NODES; n++)
		o->dest[n] = -1;
}

static int dest_of(const nf_move_opts *o, int node)
{
	if (node < 0 || node >= NF_MAX_NODES || o->dest[node] == node)
		return -1;
	return o->dest[node];
}

/* ---- the kernel's interface ---- */

static long sys_move_pages(pid_t pid, size_t n, void **addr, const int *nodes, int *status,
			   int flags)
{
	long r = syscall(SYS_move_pages, pid, n, addr, nodes, status, flags);
	return r < 0 ? -errno : r;
}

/* ---- scanning: which ranges hold pages on source nodes ---- */

typedef struct {
	uint64_t start, end, thp_kb;
} vma_span;

/* smaps: "start-end perms ..." header lines (hex digits first), then "Name: value"
 * lines; AnonHugePages says whether a range has transparent huge pages. */
static int parse_smaps(char *text, vma_span **ret, size_t *ret_n)
{
	_cleanup_free_ vma_span *v = NULL;
	size_t n = 0, cap = 0;
	for (char *line = text, *eol; *line; line = eol + (*eol == '\n')) {
		eol = strchrnul(line, '\n');
		const char *e = line;
		if ((*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f')) {
			if (nf_grow(&v, &cap, n + 1, sizeof(*v), 64) < 0)
				return -ENOMEM;
			vma_span s = {0};
			if (nf_parse_hex(line, &e, &s.start) < 0 || *e != '-' ||
			    nf_parse_hex(e + 1, &e, &s.end) < 0)
				return -EBADMSG;
			v[n++] = s;
		} else if (n && strncmp(line, "AnonHugePages:", 14) == 0) {
			const char *p = line + 14 + strspn(line + 14, " ");
			uint64_t kb;
			if (nf_parse_u64(p, p + strspn(p, "0123456789"), &kb) < 0)
				return -EBADMSG;
			v[n - 1].thp_kb = kb;
		}
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* What one numa_maps line says about the pages to move. */
typedef struct {
	uint64_t start, page_kb;
	uint64_t src_pages, all_pages;
	int dest; /* the one destination of the source pages; -2: several */
	bool huge;
	bool shared; /* some page is mapped by several processes (mapmax=) */
} vma_pages;

/* What numa_maps line [LINE, EOL) says about the pages to move. */
static int parse_numa_line(const nf_move_opts *o, const char *line, const char *eol, vma_pages *v)
{
	nf_numa_vma nv;
	int r = nf_numa_vma_parse(line, eol, &nv);
	if (r < 0)
		return r;
	*v = (vma_pages){.start = nv.start,
			 .page_kb = nv.page_kb,
			 .dest = -1,
			 .huge = nv.huge,
			 .shared = nv.mapmax > 1};
	for (unsigned n = 0; n < nv.top; n++) {
		int d = dest_of(o, n);
		v->all_pages += nv.pages[n];
		if (d < 0 || !nv.pages[n])
			continue;
		v->src_pages += nv.pages[n];
		v->dest = v->dest == -1 || v->dest == d ? d : -2;
	}
	return 0;
}

static int add_range(mover *m, const range *r)
{
	if (nf_grow(&m->ranges, &m->cap_ranges, m->n_ranges + 1, sizeof(*r), 64) < 0)
		return -ENOMEM;
	m->ranges[m->n_ranges++] = *r;
	return 0;
}

static int open_pagemap(task *t)
{
	char path[64];
	if (t->pagemap >= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/pagemap", (int)t->pid, (int)t->tid);
	t->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	return t->pagemap < 0 ? -errno : 0;
}

/* How a range is addressed, and how much virtual space one slice covers. */
static int plan_range(mover *m, size_t ti, const vma_span *s, const vma_pages *v)
{
	uint64_t virt_pages = (s->end - s->start) / PAGE, batch = m->slice_pages * PAGE;
	range r = {
	    .task = ti,
	    .start = s->start,
	    .end = s->end,
	    .cur = s->start,
	    .hi = s->end,
	    .page = PAGE,
	    .bytes = v->src_pages * v->page_kb * 1024,
	    /* Pages another process maps may have moved with it since the scan:
	     * asked where they are first, they are not moved or counted twice. */
	    .dest = v->src_pages == v->all_pages && v->dest >= 0 && !v->shared ? v->dest : -1,
	};
	if (v->huge || v->page_kb != 4) {
		r.mode = R_HUGETLB;
		r.page = v->page_kb * 1024;
		r.step = (batch + r.page - 1) / r.page * r.page;
		return add_range(m, &r);
	}
	if (s->end - s->start >= SPARSE_MIN_BYTES && virt_pages / SPARSE_RATIO > v->all_pages) {
		m->res.sparse_bytes += r.bytes;
		return 0;
	}
	if (s->thp_kb) {
		r.mode = R_THP;
		r.step = (batch + HPAGE - 1) / HPAGE * HPAGE;
	} else if (v->all_pages * 100 >= virt_pages * DENSE_PERCENT) {
		r.mode = R_DENSE;
		r.step = batch;
	} else {
		/* a slice that holds about slice_pages present pages */
		uint64_t stride = virt_pages / (v->all_pages ? v->all_pages : 1);
		r.mode = R_PAGEMAP;
		r.step = batch * stride < SLICE_MAX ? batch * stride : SLICE_MAX;
	}
	return add_range(m, &r);
}

static int read_task_file(const task *t, const char *name, char **ret)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)t->pid, (int)t->tid, name);
	int r = nf_read_file(path, ret, NULL);
	return r == -ENOENT ? -ESRCH : r;
}

static int parse_numa_maps(const nf_move_opts *o, char *text, vma_pages **ret, size_t *ret_n)
{
	_cleanup_free_ vma_pages *v = NULL;
	size_t n = 0, cap = 0;
	for (char *line = text, *eol; *line; line = eol + (*eol == '\n')) {
		eol = strchrnul(line, '\n');
		if (eol == line)
			continue;
		if (nf_grow(&v, &cap, n + 1, sizeof(*v), 64) < 0)
			return -ENOMEM;
		int r = parse_numa_line(o, line, eol, &v[n++]);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* The VMAs of smaps that overlap [lo, hi), clipped to it. */
static int plan_pieces(mover *m, size_t ti, const vma_span *spans, size_t n, uint64_t lo,
		       uint64_t hi, const vma_pages *v)
{
	for (size_t j = 0; j < n && spans[j].start < hi; j++) {
		/* smaps lists the vsyscall page after the stack: no VMA of the mm */
		if (spans[j].end <= lo || spans[j].start >= USER_END)
			continue;
		vma_span piece = {
		    .start = spans[j].start > lo ? spans[j].start : lo,
		    .end = spans[j].end < hi ? spans[j].end : hi,
		    .thp_kb = spans[j].thp_kb,
		};
		int r = plan_range(m, ti, &piece, v);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The VMAs' spans: smaps where the task has transparent huge pages (which
 * smaps_rollup says: a walk of the page tables, as numa_maps is, but little
 * text), else maps, 15 times smaller: 20,000 VMAs of 16 KiB took 57 ms to read
 * as smaps, 19 as smaps_rollup, 18 as maps (build host). A THP that forms after this is moved by
 * its first address and its others come back -EBUSY, then on the destination (settle). */
static int read_spans(const task *t, char **ret)
{
	_cleanup_free_ char *roll = NULL;
	int r = read_task_file(t, "smaps_rollup", &roll);
	if (r < 0)
		return r;
	const char *p = strstr(roll, "\nAnonHugePages:");
	uint64_t kb = 1;
	if (p) {
		p += strlen("\nAnonHugePages:");
		p += strspn(p, " ");
		nf_parse_u64(p, p + strspn(p, "0123456789"), &kb);
	}
	bool none = kb == 0;
	return read_task_file(t, none ? "maps" : "smaps", ret);
}

/* numa_maps has the pages per node but only each VMA's start; smaps (read
 * after it) has the ends. The process may map and unmap meanwhile, and an
 * anonymous mapping next to another merges with it and moves its start, so
 * the two are paired by overlap: numa_maps VMA i covers at most up to the start
 * of VMA i + 1, and smaps says which part of that is mapped. */
static int scan_task(mover *m, size_t ti)
{
	_cleanup_free_ char *nm = NULL, *sm = NULL;
	_cleanup_free_ vma_span *spans = NULL;
	_cleanup_free_ vma_pages *vs = NULL;
	size_t n_spans = 0, n_vs = 0, j = 0;
	/* pagemap for every task: a dense range needs it for pages that hide */
	int r = open_pagemap(&m->tasks[ti]);
	if (r == 0)
		r = read_task_file(&m->tasks[ti], "numa_maps", &nm);
	if (r == 0)
		r = read_spans(&m->tasks[ti], &sm);
	if (r == 0)
		r = parse_numa_maps(m->o, nm, &vs, &n_vs);
	if (r == 0)
		r = parse_smaps(sm, &spans, &n_spans);
	for (size_t i = 0; r == 0 && i < n_vs; i++) {
		uint64_t hi = i + 1 < n_vs ? vs[i + 1].start : UINT64_MAX;
		while (j < n_spans && spans[j].end <= vs[i].start)
			j++;
		if (vs[i].src_pages)
			r = plan_pieces(m, ti, spans + j, n_spans - j, vs[i].start, hi, &vs[i]);
	}
	return r;
}

/* ---- stopping and throttling ---- */

static bool stopped(mover *m)
{
	const nf_move_opts *o = m->o;
	if (atomic_load(&m->stop))
		return true;
	bool cancel = o->cancel && atomic_load(o->cancel);
	bool late = o->deadline_ns && nf_now_ns() >= o->deadline_ns;
	if (!cancel && !late)
		return false;
	pthread_mutex_lock(&m->lock);
	m->res.cancelled |= cancel;
	m->res.deadline_hit |= late;
	pthread_mutex_unlock(&m->lock);
	atomic_store(&m->stop, true);
	return true;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Books BYTES on the shared bucket and sleeps until they may go. False when
 * that would be past the deadline. */
static bool throttle(mover *m, uint64_t bytes)
{
	const nf_move_opts *o = m->o;
	if (!o->max_rate)
		return true;
	pthread_mutex_lock(&m->lock);
	uint64_t now = nf_now_ns();
	uint64_t at = m->rate_next > now ? m->rate_next : now;
	m->rate_next = at + (uint64_t)((double)bytes * 1e9 / (double)o->max_rate);
	pthread_mutex_unlock(&m->lock);
	if (o->deadline_ns && at >= o->deadline_ns) {
		pthread_mutex_lock(&m->lock);
		m->res.deadline_hit = true;
		pthread_mutex_unlock(&m->lock);
		atomic_store(&m->stop, true);
		return false;
	}
	sleep_until(at);
	return true;
}

/* ---- one batch ---- */

static int grow(worker *w)
{
	const nf_move_opts *o = w->m->o;
	/* a fixed batch gets what it asks; a paced one up to its largest */
	size_t cap = o->batch_pages ? o->batch_pages : NF_MOVE_BATCH_MAX;
	cap = cap < 16 ? 16 : cap;
	w->limit = o->batch_pages ? o->batch_pages : NF_MOVE_BATCH_FIRST;
	w->addr = calloc(cap, sizeof(*w->addr));
	w->nodes = calloc(cap, sizeof(*w->nodes));
	w->status = calloc(cap, sizeof(*w->status));
	w->weight = calloc(cap, sizeof(*w->weight));
	w->heads = calloc(cap, sizeof(*w->heads));
	w->hid = calloc(cap, sizeof(*w->hid));
	w->hid_weight = calloc(cap, sizeof(*w->hid_weight));
	if (!w->addr || !w->nodes || !w->status || !w->weight || !w->heads || !w->hid ||
	    !w->hid_weight)
		return -ENOMEM;
	w->cap = cap;
	return 0;
}

static void task_gone(worker *w, task *t)
{
	if (!atomic_exchange(&t->gone, true))
		w->res.tasks_exited++;
}

static void stayed_all(worker *w, nf_move_err e)
{
	for (size_t i = 0; i < w->n; i++)
		w->res.stayed_bytes[e] += w->weight[i];
}

static nf_move_err err_class(int status)
{
	switch (-status) {
	case EBUSY:
		return NF_MOVE_EBUSY;
	case EACCES:
		return NF_MOVE_EACCES;
	case ENOMEM:
		return NF_MOVE_ENOMEM;
	case EIO:
		return NF_MOVE_EIO;
	default:
		return NF_MOVE_OTHER;
	}
}

/* An absent page (-ENOENT) may be present behind a NUMA-balancing PROT_NONE
 * PTE, which 6.1's follow_page() does not see through: look again after the
 * batch (resolve_hidden). In that second look it counts as hidden. */
static void absent(worker *w, size_t i)
{
	if (w->hidden_pass) {
		w->res.stayed_bytes[NF_MOVE_HIDDEN] += w->weight[i];
		return;
	}
	w->hid[w->n_hid] = w->addr[i];
	w->hid_weight[w->n_hid++] = w->weight[i];
}

/* Counts the pages whose status is final. With KEEP, the pages still on
 * another node, and the busy ones, stay in the batch for one more try; else
 * they count as busy. A page is busy when another address of the same call
 * isolated it first: a transparent huge page passed page by page moves with
 * its first address, and the others say so on the second try. */
static void settle(worker *w, bool keep)
{
	size_t k = 0;
	uint64_t moved = 0;
	for (size_t i = 0; i < w->n; i++) {
		int s = w->status[i];
		if (s == w->nodes[i]) {
			moved += w->weight[i];
		} else if (s >= 0 || s == NOT_TRIED || (s == -EBUSY && keep)) {
			if (!keep) {
				w->res.stayed_bytes[NF_MOVE_EBUSY] += w->weight[i];
				continue;
			}
			w->addr[k] = w->addr[i];
			w->nodes[k] = w->nodes[i];
			w->weight[k++] = w->weight[i];
		} else if (s == -ENOENT)
			absent(w, i);
		else if (s != -EFAULT)
			w->res.stayed_bytes[err_class(s)] += w->weight[i];
	}
	w->res.moved_bytes += moved;
	atomic_fetch_add_explicit(&w->m->moved_now, moved, memory_order_relaxed);
	w->n = keep ? k : 0;
}

/* Where the batch's pages are now, into status[]; no lru_cache_disable() for this. */
static long query(worker *w, task *t)
{
	w->res.query_calls++;
	return sys_move_pages(t->tid, w->n, w->addr, NULL, w->status, 0);
}

/* Pages whose destination is the node they are on (nodes[] -1) get it from
 * where they are; pages on no source node (moved meanwhile, through another
 * process that maps them too) leave the batch. */
static long pick_sources(worker *w, task *t)
{
	long r = query(w, t);
	if (r < 0)
		return r;
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++) {
		int d = dest_of(w->m->o, w->status[i]);
		if (w->status[i] == -ENOENT)
			absent(w, i);
		if (d < 0 || w->status[i] < 0)
			continue;
		d = w->nodes[i] >= 0 ? w->nodes[i] : d;
		w->addr[k] = w->addr[i];
		w->weight[k] = w->weight[i];
		w->nodes[k++] = d;
	}
	w->n = k;
	return 0;
}

/* Sizes the next call from what this one took: at the target time per call
 * over the recent cost of a 4 KiB unit, at most 4x the last size at once. The
 * cost is the last calls' time over their units, each call weighing half as
 * much as the next: a small call (a task's last pages, a cut-down batch),
 * whose fixed cost weighs more, counts for as little as it moved. */
static void pace(worker *w, uint64_t ns, uint64_t units)
{
	const mover *m = w->m;
	if (m->o->batch_pages || !units)
		return;
	w->paced_ns = w->paced_ns / 2 + (double)ns;
	w->paced_units = w->paced_units / 2 + (double)units;
	double want = (double)m->call_ns * w->paced_units / w->paced_ns;
	double most = 4.0 * (double)w->limit;
	want = want < most ? want : most;
	w->limit = want < NF_MOVE_BATCH_MIN   ? NF_MOVE_BATCH_MIN
		   : want > NF_MOVE_BATCH_MAX ? NF_MOVE_BATCH_MAX
					      : (size_t)want;
	w->res.calls_paced++;
}

/* One move_pages call. When some pages fail, 6.1 returns their count and
 * stores no status for them nor for the rest of the batch, which it did not
 * try: ask where they are, count what is settled and try the rest once more. */
static long move_once(worker *w, task *t, int flags, bool last)
{
	uint64_t units = 0;
	for (size_t i = 0; i < w->n; i++) {
		w->status[i] = NOT_TRIED;
		units += w->weight[i] / PAGE;
	}
	w->res.calls++;
	w->res.addresses += w->n;
	uint64_t t0 = nf_now_ns();
	long r = sys_move_pages(t->tid, w->n, w->addr, w->nodes, w->status, flags);
	uint64_t ns = nf_now_ns() - t0;
	w->res.call_ns_max = ns > w->res.call_ns_max ? ns : w->res.call_ns_max;
	if (r >= 0 && !last && !w->hidden_pass) /* retries and re-tries are small */
		pace(w, ns, units);
	if (r > 0)
		r = query(w, t);
	if (r == 0)
		settle(w, !last);
	return r;
}

static int read_pagemap(worker *w, const task *t, uint64_t s, size_t n);
#define PRESENT(e) ((e) >> 63)

/* Reads one byte of each page through the kernel's GUP, which (unlike
 * move_pages' follow_page) takes the NUMA hinting fault and so makes the PTE
 * present again. */
static void touch_remote(const task *t, void **addr, size_t n)
{
	char buf[1024];
	struct iovec local = {.iov_base = buf, .iov_len = 0}, remote[1024];
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; k < NF_ARRAY_SIZE(remote) && i < n; k++, i++)
			remote[k] = (struct iovec){.iov_base = addr[i], .iov_len = 1};
		local.iov_len = k;
		if (process_vm_readv(t->tid, &local, 1, remote, k, 0) < 0)
			return;
	}
}

static void move_batch(worker *w, task *t);

/* pagemap entries read for a batch's absent pages: pages [first, first + n) */
typedef struct {
	uint64_t first, n;
} pm_window;

/* Whether pagemap says the page at A is present. The entries are read PM_CHUNK
 * at a time, from A up (or down, top-down), into W: a batch's absent pages
 * are mostly neighbours, so one read serves many (NUMA balancing hides whole
 * ranges at once). */
static bool present_at(worker *w, const task *t, uint64_t a, pm_window *win)
{
	uint64_t page = a / PAGE;
	if (page < win->first || page - win->first >= win->n) {
		uint64_t first = page;
		if (w->m->o->reverse)
			first = page >= PM_CHUNK - 1 ? page - (PM_CHUNK - 1) : 0;
		ssize_t r =
		    pread(t->pagemap, w->hid_pm, sizeof(w->hid_pm), first * sizeof(w->hid_pm[0]));
		*win = (pm_window){.first = first,
				   .n = r > 0 ? (uint64_t)r / sizeof(w->hid_pm[0]) : 0};
		if (page - first >= win->n)
			return false;
	}
	return PRESENT(w->hid_pm[page - win->first]);
}

/* Of the pages move_pages said were absent, those pagemap says are present
 * are touched and tried once more, where they are now. */
static void resolve_hidden(worker *w, task *t)
{
	size_t k = 0;
	pm_window win = {0};
	for (size_t i = 0; i < w->n_hid; i++) {
		if (!present_at(w, t, (uintptr_t)w->hid[i], &win))
			continue;
		w->addr[k] = w->hid[i];
		w->nodes[k] = -1;
		w->weight[k++] = w->hid_weight[i];
	}
	w->n_hid = 0;
	if (!k)
		return;
	touch_remote(t, w->addr, k);
	w->n = k;
	w->ask = true;
	w->hidden_pass = true;
	move_batch(w, t);
	w->hidden_pass = false;
}

static void move_batch(worker *w, task *t)
{
	const nf_move_opts *o = w->m->o;
	int flags = o->move_all ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE;
	long r = w->ask ? pick_sources(w, t) : 0;
	w->ask = false;
	for (unsigned attempt = 0; r == 0 && w->n && attempt < 2; attempt++)
		r = move_once(w, t, flags, attempt == 1);
	if (r == -ESRCH || (r == -EINVAL && kill(t->tid, 0) < 0 && errno == ESRCH)) {
		task_gone(w, t);
	} else if (r < 0) {
		stayed_all(w, err_class(r));
		if (r != -EACCES && r != -ENOMEM && !w->res.error)
			w->res.error = r;
	}
	w->n = 0;
	if (w->n_hid && !w->hidden_pass)
		resolve_hidden(w, t);
}

/* A huge page head that moved while its second page did not was a small page:
 * move the rest of its chunk page by page. */
static void add(worker *w, uint64_t a, uint64_t weight, int dest);
static void thp_fixup(worker *w, task *t, void *const *heads, size_t n)
{
	_cleanup_free_ void **a = calloc(2 * n, sizeof(*a));
	_cleanup_free_ int *st = calloc(2 * n, sizeof(*st));
	if (!a || !st)
		return;
	for (size_t i = 0; i < n; i++) {
		a[2 * i] = heads[i];
		a[2 * i + 1] = (char *)heads[i] + PAGE;
	}
	w->res.query_calls++;
	if (sys_move_pages(t->tid, 2 * n, a, NULL, st, 0) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int d = dest_of(w->m->o, st[2 * i + 1]);
		if (d < 0 || st[2 * i] != d)
			continue;
		/* it was counted as a whole huge page */
		w->res.moved_bytes -= HPAGE - PAGE;
		atomic_fetch_sub_explicit(&w->m->moved_now, HPAGE - PAGE, memory_order_relaxed);
		for (uint64_t p = (uintptr_t)heads[i] + PAGE; p < (uintptr_t)heads[i] + HPAGE;
		     p += PAGE)
			add(w, p, PAGE, d);
	}
}

/* Top down: the batch's addresses in reverse. */
static void reverse_batch(worker *w)
{
	for (size_t i = 0, j = w->n - 1; i < j; i++, j--) {
		void *a = w->addr[i];
		uint64_t wt = w->weight[i];
		int d = w->nodes[i];
		w->addr[i] = w->addr[j], w->weight[i] = w->weight[j], w->nodes[i] = w->nodes[j];
		w->addr[j] = a, w->weight[j] = wt, w->nodes[j] = d;
	}
}

static void flush(worker *w)
{
	task *t = &w->m->tasks[w->task];
	uint64_t bytes = w->bytes;
	size_t n_heads = w->n_heads;
	w->bytes = 0;
	w->n_heads = 0;
	if (!w->n)
		return;
	if (atomic_load(&t->gone) || stopped(w->m) || !throttle(w->m, bytes)) {
		w->res.left_bytes += atomic_load(&t->gone) ? 0 : bytes;
		w->n = 0;
		w->ask = false;
		return;
	}
	if (w->m->o->reverse)
		reverse_batch(w);
	uint64_t moved = w->res.moved_bytes;
	move_batch(w, t);
	/* only add_head() writes heads, and nothing below calls it */
	if (n_heads && w->res.moved_bytes > moved)
		thp_fixup(w, t, w->heads, n_heads);
	/* The fix-up queues the small pages of chunks that were not huge; they
	 * go now, while the batch is still this task's (they weigh one page each,
	 * so they queue no fix-up of their own). */
	if (w->n)
		flush(w);
}

/* Adds a page of the worker's task with its destination (-1: by the node it
 * is on); a full batch goes. */
static void add(worker *w, uint64_t a, uint64_t weight, int dest)
{
	w->addr[w->n] = (void *)(uintptr_t)a;
	w->nodes[w->n] = dest;
	w->weight[w->n++] = weight;
	w->ask |= dest < 0;
	w->bytes += weight;
	if (w->n == w->cap || w->bytes >= w->limit * PAGE)
		flush(w);
}

static void add_head(worker *w, uint64_t a, int dest)
{
	w->heads[w->n_heads++] = (void *)(uintptr_t)a;
	add(w, a, HPAGE, dest);
}

/* ---- slices: a piece of a range that one worker addresses ---- */

/* Present pages of [s, e) in pagemap entries, in PM_CHUNK pieces. */
static int read_pagemap(worker *w, const task *t, uint64_t s, size_t n)
{
	size_t len = n * sizeof(uint64_t);
	ssize_t r = pread(t->pagemap, w->pm, len, s / PAGE * sizeof(uint64_t));
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -ESRCH; /* short: the range is gone */
}

/* Each slice_*() addresses [S, E) and says in *AT where it stopped (E, or
 * where the stop flag caught it). */
static int slice_pagemap(worker *w, const task *t, uint64_t s, uint64_t e, uint64_t *at)
{
	for (uint64_t a = *at = s; a < e && !atomic_load(&w->m->stop); *at = a) {
		size_t n = (e - a) / PAGE < PM_CHUNK ? (e - a) / PAGE : PM_CHUNK;
		int r = read_pagemap(w, t, a, n);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			if (PRESENT(w->pm[i]))
				add(w, a + i * PAGE, PAGE, w->r->dest);
		a += n * PAGE;
	}
	return 0;
}

/* One address for a 2 MiB chunk wholly inside the range and present, else
 * one per present page (the kernel moves a THP from any of its addresses, but
 * its other addresses in the same call come back -EBUSY). */
static int slice_thp(worker *w, const task *t, uint64_t s, uint64_t e, uint64_t *at)
{
	for (uint64_t a = *at = s; a < e && !atomic_load(&w->m->stop); *at = a) {
		uint64_t c = (a & ~(HPAGE - 1)) + HPAGE;
		uint64_t ce = c < e ? c : e;
		size_t n = (ce - a) / PAGE, present = 0;
		int r = read_pagemap(w, t, a, n);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			present += PRESENT(w->pm[i]);
		if (n == HPAGE / PAGE && present == n)
			add_head(w, a, w->r->dest);
		else
			for (size_t i = 0; i < n; i++)
				if (PRESENT(w->pm[i]))
					add(w, a + i * PAGE, PAGE, w->r->dest);
		a = ce;
	}
	return 0;
}

/* Adds the pages of [S, E) of range R to the batch, which first goes if it
 * holds another task's pages. */
static void slice(worker *w, const range *r, uint64_t s, uint64_t e)
{
	task *t = &w->m->tasks[r->task];
	int ret = 0;
	uint64_t at = s;
	if (w->task != r->task)
		flush(w);
	w->task = r->task;
	w->r = r;
	switch (r->mode) {
	case R_DENSE:
	case R_HUGETLB:
		for (; at < e && !atomic_load(&w->m->stop); at += r->page)
			add(w, at, r->page, r->dest);
		break;
	case R_PAGEMAP:
		ret = slice_pagemap(w, t, s, e, &at);
		break;
	case R_THP:
		ret = slice_thp(w, t, s, e, &at);
		break;
	}
	/* Top down (the assist) goes slice by slice: a slice is one batch. */
	if (w->m->o->reverse)
		flush(w);
	if (ret == -ESRCH)
		task_gone(w, t);
	else if (at < e) /* stopped: the rest of the slice is left, in proportion */
		w->res.left_bytes += (uint64_t)((double)r->bytes * (e - at) / (r->end - r->start));
}

static bool take_slice(mover *m, const range **ret, uint64_t *ret_s, uint64_t *ret_e)
{
	bool ok = false;
	if (stopped(m)) /* a batch spans slices: its flush is not the only check */
		return false;
	pthread_mutex_lock(&m->lock);
	while (!ok && m->next < m->n_ranges && !atomic_load(&m->stop)) {
		range *r = &m->ranges[m->o->reverse ? m->n_ranges - 1 - m->next : m->next];
		if (r->cur >= r->hi || atomic_load(&m->tasks[r->task].gone)) {
			m->next++;
			continue;
		}
		*ret = r;
		/* slices of huge-page ranges begin and end on huge page boundaries */
		if (m->o->reverse) {
			uint64_t s = r->hi - r->cur > r->step ? r->hi - r->step : r->cur;
			if (r->mode == R_THP && s > r->cur)
				s = (s + HPAGE - 1) & ~(HPAGE - 1);
			*ret_s = s;
			*ret_e = r->hi;
			r->hi = s;
		} else {
			uint64_t e = r->hi - r->cur > r->step ? r->cur + r->step : r->hi;
			if (r->mode == R_THP && e < r->hi)
				e &= ~(HPAGE - 1);
			*ret_s = r->cur;
			*ret_e = r->cur = e;
		}
		ok = true;
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}

static void merge(nf_move_result *a, const nf_move_result *b)
{
	a->moved_bytes += b->moved_bytes;
	for (unsigned c = 0; c < NF_MOVE_ERR_COUNT; c++)
		a->stayed_bytes[c] += b->stayed_bytes[c];
	a->calls += b->calls;
	a->addresses += b->addresses;
	a->query_calls += b->query_calls;
	a->calls_paced += b->calls_paced;
	a->call_ns_max = a->call_ns_max > b->call_ns_max ? a->call_ns_max : b->call_ns_max;
	a->left_bytes += b->left_bytes;
	a->tasks_exited += b->tasks_exited;
	if (!a->error)
		a->error = b->error;
}

static void *work(void *arg)
{
	worker *w = arg;
	mover *m = w->m;
	const range *r;
	uint64_t s, e;
	if (grow(w) < 0) {
		w->res.error = -ENOMEM;
	} else {
		while (take_slice(m, &r, &s, &e))
			slice(w, r, s, e);
		flush(w);
	}
	pthread_mutex_lock(&m->lock);
	merge(&m->res, &w->res);
	pthread_mutex_unlock(&m->lock);
	free(w->addr);
	free(w->nodes);
	free(w->status);
	free(w->weight);
	free(w->heads);
	free(w->hid);
	free(w->hid_weight);
	return NULL;
}

/* ---- the run ---- */

/* CPUs in a list such as "0-3,8" */
static unsigned count_list(const char *s)
{
	unsigned n = 0;
	while (*s >= '0' && *s <= '9') {
		char *e;
		unsigned long a = strtoul(s, &e, 10), b = a;
		if (*e == '-')
			b = strtoul(e + 1, &e, 10);
		n += b >= a ? b - a + 1 : 0;
		s = e + (*e == ',');
	}
	return n;
}

/* The online CPUs of the source and destination nodes, at most
 * NF_MOVE_THREADS_MAX: the copy runs on both sides (a worker on a source node
 * reads locally, one on a destination node writes locally), and whatever CPUs
 * the workload keeps busy the scheduler shares. Measured in the test VM (one
 * CPU per node): 2 workers moved a 384 MiB heap in 0.6x the time of 1, and
 * as fast with two threads writing it (docs/benchmarks.md). */
static unsigned default_threads(const nf_move_opts *o)
{
	bool seen[NF_MAX_NODES] = {false};
	unsigned cpus = 0;
	bool any = !nf_nodeset_empty(&o->sources);
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		int d = dest_of(o, n);
		if (d < 0 || (any && !nf_nodeset_has(&o->sources, n)))
			continue;
		unsigned both[2] = {n, d};
		for (unsigned i = 0; i < 2; i++) {
			char path[64];
			_cleanup_free_ char *list = NULL;
			if (seen[both[i]])
				continue;
			seen[both[i]] = true;
			snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/cpulist",
				 both[i]);
			if (nf_read_line(path, &list) == 0)
				cpus += count_list(list);
		}
	}
	if (!cpus) /* memory-only nodes: the copying is done by whoever calls */
		cpus = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
	return cpus < NF_MOVE_THREADS_MAX ? cpus : NF_MOVE_THREADS_MAX;
}

static int scan(mover *m, const pid_t *tgids, size_t n)
{
	m->tasks = calloc(n ? n : 1, sizeof(*m->tasks));
	if (!m->tasks)
		return -ENOMEM;
	m->n_tasks = n;
	for (size_t i = 0; i < n; i++) /* mover_done closes what is not -1 */
		m->tasks[i].pagemap = -1;
	for (size_t i = 0; i < n; i++) {
		task *t = &m->tasks[i];
		t->pid = tgids[i];
		int r = nf_task_thread(t->pid, &t->tid);
		if (r == 0)
			r = scan_task(m, i);
		if (r == -ESRCH) {
			m->res.tasks_exited++;
			atomic_store(&t->gone, true);
		} else if (r == -ENOMEM)
			return r;
		else if (r < 0 && !m->res.error)
			m->res.error = r;
	}
	return 0;
}

static void report(mover *m)
{
	uint64_t now = nf_now_ns();
	nf_progress p = {
	    .phase = NF_PHASE_MOVE,
	    .done_bytes = atomic_load_explicit(&m->moved_now, memory_order_relaxed),
	    .total_bytes = m->total,
	    .elapsed_ns = now - m->start_ns,
	    .move_ns = now - m->start_ns,
	};
	m->o->progress(&p, m->o->progress_data);
}

/* Joins worker ID; with a progress callback, reports every NF_PROGRESS_NS
 * meanwhile. 1 when it has ended. */
static unsigned wait_worker(mover *m, pthread_t id)
{
	if (!m->o->progress) {
		pthread_join(id, NULL);
		return 1;
	}
	uint64_t at = nf_now_ns() + NF_PROGRESS_NS;
	struct timespec ts = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
	if (pthread_clockjoin_np(id, NULL, CLOCK_MONOTONIC, &ts) == ETIMEDOUT) {
		report(m);
		return 0;
	}
	return 1;
}

static int run_workers(mover *m, unsigned threads)
{
	_cleanup_free_ worker *ws = calloc(threads, sizeof(*ws));
	_cleanup_free_ pthread_t *ids = calloc(threads, sizeof(*ids));
	unsigned started = 0;
	if (!ws || !ids)
		return -ENOMEM;
	for (unsigned i = 0; i < threads; i++) {
		ws[i].m = m;
		if (pthread_create(&ids[i], NULL, work, &ws[i]) != 0)
			break;
		started++;
	}
	if (!started) /* no thread at all: work in this one */
		work(&ws[0]);
	for (unsigned i = 0; i < started;)
		i += wait_worker(m, ids[i]);
	return 0;
}

/* What the deadline or the cancel flag left of the ranges, in proportion. */
static void count_left(mover *m)
{
	for (size_t i = 0; i < m->n_ranges; i++) {
		const range *r = &m->ranges[i];
		if (r->cur < r->hi && !atomic_load(&m->tasks[r->task].gone))
			m->res.left_bytes +=
			    (uint64_t)((double)r->bytes * (r->hi - r->cur) / (r->end - r->start));
	}
}

static void mover_done(mover *m)
{
	for (size_t i = 0; m->tasks && i < m->n_tasks; i++)
		if (m->tasks[i].pagemap >= 0)
			close(m->tasks[i].pagemap);
	free(m->tasks);
	free(m->ranges);
	pthread_mutex_destroy(&m->lock);
}

int nf_move_pages(const pid_t *tgids, size_t n, const nf_move_opts *o, nf_move_result *ret)
{
	uint64_t start = nf_now_ns();
	mover m = {
	    .o = o,
	    .slice_pages = o->batch_pages > SLICE_PAGES ? o->batch_pages : SLICE_PAGES,
	    .call_ns = o->call_ns ? o->call_ns : NF_MOVE_CALL_NS,
	};
	pthread_mutex_init(&m.lock, NULL);
	m.res.tasks = n;
	m.res.batch_pages = o->batch_pages;
	m.res.threads = o->threads ? o->threads : default_threads(o);
	int r = scan(&m, tgids, n);
	m.res.scan_ns = nf_now_ns() - start;
	m.start_ns = nf_now_ns();
	for (size_t i = 0; i < m.n_ranges; i++)
		m.total += m.ranges[i].bytes;
	if (r == 0)
		r = run_workers(&m, m.res.threads);
	if (r < 0) {
		mover_done(&m);
		return r;
	}
	count_left(&m);
	m.res.duration_ns = nf_now_ns() - start;
	*ret = m.res;
	mover_done(&m);
	return 0;
}
