#include "engine.h"
#include "../../cgroup/util.h"

#include <linux/capability.h>
#include <numa.h>
#include <string.h>
#include <time.h>

static void bitmask_freep(struct bitmask **b)
{
	if (*b)
		numa_bitmask_free(*b);
}
#define _cleanup_bitmask_ _cleanup_(bitmask_freep)

int nf_self_mems(nf_nodeset *ret)
{
	_cleanup_free_ char *text = NULL;
	int r = nf_read_file("/proc/self/status", &text, NULL);
	if (r < 0)
		return r;
	const char *p = strstr(text, "\nMems_allowed_list:");
	if (!p)
		return -ENOSYS;
	p += strlen("\nMems_allowed_list:");
	p += strspn(p, " \t");
	_cleanup_free_ char *list = strndup(p, strcspn(p, "\n"));
	if (!list)
		return -ENOMEM;
	return nf_nodeset_parse(list, ret);
}

int nf_memory_nodes(nf_nodeset *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = nf_read_line("/sys/devices/system/node/has_memory", &s);
	if (r < 0)
		return r;
	return nf_nodeset_parse(s, ret);
}

const char *nf_method_name(nf_method m)
{
	static const char *const n[] = {"auto", "migrate_pages", "move_pages"};
	return n[m];
}

int nf_method_parse(const char *s, nf_method *ret)
{
	for (nf_method m = NF_METHOD_AUTO; m <= NF_METHOD_MOVE_PAGES; m++)
		if (strcmp(s, nf_method_name(m)) == 0) {
			*ret = m;
			return 0;
		}
	return -EINVAL;
}

bool nf_self_capable(unsigned cap)
{
	_cleanup_free_ char *text = NULL;
	uint64_t caps;
	const char *p;
	if (nf_read_file("/proc/self/status", &text, NULL) < 0 || !(p = strstr(text, "\nCapEff:")))
		return false;
	p += strlen("\nCapEff:");
	p += strspn(p, " \t");
	errno = 0;
	caps = strtoull(p, NULL, 16);
	return errno == 0 && (caps >> cap & 1);
}

static struct bitmask *to_bitmask(const nf_nodeset *s)
{
	struct bitmask *b = numa_allocate_nodemask();
	for (unsigned n = 0; b && n < NF_MAX_NODES && n < b->size; n++)
		if (nf_nodeset_has(s, n))
			numa_bitmask_setbit(b, n);
	return b;
}

/* libnuma's convention (-1/errno, else the count of pages not moved) to ours. */
static int migrate_task(pid_t pid, const nf_nodeset *from, const nf_nodeset *to,
			uint64_t *not_moved)
{
	_cleanup_bitmask_ struct bitmask *f = to_bitmask(from);
	_cleanup_bitmask_ struct bitmask *t = to_bitmask(to);
	if (!f || !t)
		return -ENOMEM;
	int r = numa_migrate_pages(pid, f, t);
	if (r < 0)
		return -errno;
	*not_moved += r;
	return 0;
}

enum { T_LIVE, T_EXITED, T_FAILED };

typedef struct {
	pid_t pid; /* thread-group id */
	pid_t tid; /* the thread that speaks for its mm (nf_task_thread) */
	int state;
	uint64_t outside_before;
	uint64_t not_moved; /* by the last pass that migrated it */
	nf_residency now;   /* as last measured */
	uint64_t stay[NF_STAY_COUNT];
} task;

/* What a run needs to know besides its options. */
typedef struct {
	const nf_migrate_opts *o;
	uint64_t start_ns, move_ns; /* of the run, and of the bulk's moving (0: not yet) */
	uint64_t total;		    /* outside the target before */
	uint64_t told_ns;	    /* of the last sweep report */
	nf_nodeset holding;	    /* nodes outside the target that hold memory before */
	nf_nodeset sweep;	    /* nodes with memory outside the target */
	bool relative;		    /* keep the kernel's relative from -> to mapping */
	bool same;   /* |from| == |to|: the kernel then also remaps nodes inside to */
	bool inside; /* and it does: some node of to moves to another (set by plan) */
} plan_ctx;

static int add_error(nf_migration *m, pid_t pid, int err, const char *what)
{
	nf_task_error *e = reallocarray(m->errors, m->n_errors + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->errors = e;
	m->errors[m->n_errors++] = (nf_task_error){.pid = pid, .err = err, .what = what};
	return 0;
}

/* GONE is the error that means the task exited rather than failed. */
static int task_failed(nf_migration *m, task *t, int r, int gone, const char *what)
{
	if (r == -ESRCH || r == gone) {
		t->state = T_EXITED;
		return 0;
	}
	t->state = T_FAILED;
	return add_error(m, t->pid, -r, what);
}

static int measure(nf_migration *m, task *t, const nf_nodeset *to)
{
	nf_task_maps maps;
	/* Asked each time: a leader that exits mid-run leaves an empty numa_maps,
	 * which would read as "nothing left outside the target". */
	int r = nf_task_thread(t->pid, &t->tid);
	if (r == 0)
		r = nf_task_numa_maps(t->pid, t->tid, to, &maps);
	if (r < 0)
		return task_failed(m, t, r, -ESRCH, "reading numa_maps");
	t->now = maps.res;
	memcpy(t->stay, maps.stay, sizeof(maps.stay));
	return 0;
}

static uint64_t outside(const task *t, const nf_nodeset *to)
{
	return nf_residency_outside(&t->now, to);
}

/* Where pages on NODE go: by the kernel's node_remap() over from -> to where
 * the relative mapping applies, else over the sweep set. -1: they stay. */
static int dest(const plan_ctx *p, unsigned node)
{
	const nf_migrate_opts *o = p->o;
	int d = -1;
	if (p->relative && nf_nodeset_has(&o->from, node) &&
	    (p->same || !nf_nodeset_has(&o->to, node)))
		d = nf_nodeset_remap(node, &o->from, &o->to);
	else if (!nf_nodeset_has(&o->to, node))
		d = nf_nodeset_remap(node, &p->sweep, &o->to);
	return d == (int)node ? -1 : d;
}

/* Moves pages on each node outside the target (and outside SKIP) to its
 * dest(): one call per source node, so retries keep the first pass's mapping. */
static int migrate_by_node(const plan_ctx *p, task *t, const nf_nodeset *skip, uint64_t *not_moved)
{
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		int d = nf_nodeset_has(&p->o->to, n) || nf_nodeset_has(skip, n) ||
				!nf_residency_node(&t->now, n)
			    ? -1
			    : dest(p, n);
		if (d < 0)
			continue;
		nf_nodeset from = {0}, to = {0};
		nf_nodeset_set(&from, n);
		nf_nodeset_set(&to, d);
		int r = migrate_task(t->tid, &from, &to, not_moved);
		if (r < 0)
			return r;
	}
	return 0;
}

static int migrate_one(nf_migration *m, const plan_ctx *p, task *t, bool first)
{
	const nf_migrate_opts *o = p->o;
	uint64_t not_moved = 0;
	int r;
	/* First pass where nodes inside the target move too: one call for the
	 * whole mm, as the kernel itself would do it (with overlapping sets the
	 * kernel orders the moves so none is done twice). */
	if (first && p->inside) {
		/* Nodes outside from: by node, as in the plan; pages busy on from nodes
		 * are left to the retries. */
		r = migrate_task(t->tid, &o->from, &o->to, &not_moved);
		if (r == 0)
			r = migrate_by_node(p, t, &o->from, &not_moved);
	} else if (first && !p->relative) {
		r = nf_nodeset_empty(&p->sweep)
			? 0
			: migrate_task(t->tid, &p->sweep, &o->to, &not_moved);
	} else {
		r = migrate_by_node(p, t, &(nf_nodeset){0}, &not_moved);
	}
	/* ENOMEM: a target node is full; the task lives on with what stayed,
	 * which the report counts and explains. */
	if (r == -ENOMEM) {
		r = m->target_full ? 0 : add_error(m, t->pid, ENOMEM, "migrate_pages"); /* once */
		m->target_full = true;
		if (r < 0)
			return r;
	}
	/* EINVAL: the task has no mm left, it is exiting. */
	if (r < 0)
		return task_failed(m, t, r, -EINVAL, "migrate_pages");
	t->not_moved = not_moved;
	return t->state == T_LIVE ? measure(m, t, &o->to) : 0;
}

static void add_plan(nf_migration *m, unsigned from, unsigned to, uint64_t bytes)
{
	for (size_t i = 0; i < m->n_plan; i++)
		if (m->plan[i].from == from && m->plan[i].to == to) {
			m->plan[i].bytes += bytes;
			return;
		}
	nf_plan_step *p = reallocarray(m->plan, m->n_plan + 1, sizeof(*p));
	if (!p)
		return;
	m->plan = p;
	m->plan[m->n_plan++] = (nf_plan_step){.from = from, .to = to, .bytes = bytes};
}

static void make_plan(nf_migration *m, plan_ctx *p)
{
	for (unsigned n = 0; n < NF_MAX_NODES; n++)
		p->inside |= nf_nodeset_has(&p->o->to, n) && dest(p, n) >= 0;
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		uint64_t b = nf_residency_node(&m->before, n);
		int d = b ? dest(p, n) : -1;
		if (d >= 0)
			add_plan(m, n, d, b);
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The n-th retry waits backoff x 4^n, at most 5 s. */
static uint64_t backoff_ms(unsigned base, unsigned pass)
{
	uint64_t ms = base;
	for (unsigned i = 0; i < pass && ms < 5000; i++)
		ms *= 4;
	return ms < 5000 ? ms : 5000;
}

static bool past_deadline(nf_migration *m, const nf_migrate_opts *o)
{
	if (o->deadline_ns && nf_now_ns() >= o->deadline_ns)
		m->deadline_hit = true;
	return m->deadline_hit;
}

/* Whether task T's pages outside the target go to the mover. */
static bool gentle_task(const nf_migrate_opts *o, const task *t)
{
	uint64_t out = t->state == T_LIVE ? outside(t, &o->to) : 0;
	return o->method == NF_METHOD_MOVE_PAGES ? out > 0 : out >= NF_GENTLE_MIN_BYTES;
}

static void take_move_result(nf_migration *m, const nf_move_result *res)
{
	m->method = NF_METHOD_MOVE_PAGES;
	m->threads = res->threads;
	m->gentle_bytes = res->moved_bytes;
	m->gentle_ns = res->duration_ns;
	for (int e = 0; e < NF_MOVE_ERR_COUNT; e++)
		m->stayed[e] = res->stayed_bytes[e];
	m->deadline_hit |= res->deadline_hit;
	m->cancelled |= res->cancelled;
}

static void tell(const plan_ctx *p, nf_phase phase, uint64_t done)
{
	if (!p->o->progress)
		return;
	uint64_t now = nf_now_ns();
	nf_progress pr = {
	    .phase = phase,
	    .done_bytes = done < p->total ? done : p->total,
	    .total_bytes = p->total,
	    .elapsed_ns = now - p->start_ns,
	    .move_ns = p->move_ns ? now - p->move_ns : 0,
	};
	p->o->progress(&pr, p->o->progress_data);
}

/* The mover's reports, as the run's: its bytes are the run's so far. */
static void mover_told(const nf_progress *mp, void *userdata)
{
	tell(userdata, NF_PHASE_MOVE, mp->done_bytes);
}

/* A sweep's report: what has left the nodes outside the target, by the last
 * measurements, at most every NF_PROGRESS_NS (after every task would be
 * thousands of reports, each a sum over all tasks). */
static void tell_sweep(plan_ctx *p, const task *ts, size_t n, bool force)
{
	uint64_t out = 0, now = nf_now_ns();
	if (!p->o->progress || (!force && now - p->told_ns < NF_PROGRESS_NS))
		return;
	p->told_ns = now;
	for (size_t i = 0; i < n; i++)
		out += ts[i].state == T_LIVE ? outside(&ts[i], &p->o->to) : 0;
	tell(p, NF_PHASE_SWEEP, p->total > out ? p->total - out : 0);
}

/* The mover's options for P: pages on nodes outside the target go where
 * dest() says. */
static void mover_opts(plan_ctx *p, bool sys_nice, nf_move_opts *ret)
{
	const nf_migrate_opts *o = p->o;
	nf_move_opts_init(ret);
	for (unsigned node = 0; node < NF_MAX_NODES; node++)
		ret->dest[node] = nf_nodeset_has(&o->to, node) ? -1 : dest(p, node);
	ret->threads = o->threads;
	ret->batch_pages = o->batch_pages;
	ret->max_rate = o->max_rate;
	ret->deadline_ns = o->deadline_ns;
	ret->cancel = o->cancel;
	ret->move_all = sys_nice;
	ret->progress = o->progress ? mover_told : NULL;
	ret->progress_data = p;
	ret->sources = p->holding;
}

/* The bulk, with move_pages(2) in batches on a pool of threads, for the
 * tasks gentle_task() picks: pages on each node outside the target go where
 * dest() says (the relative mapping of from -> to included; destinations are
 * in the target, so no page is moved twice). Nodes inside the target that a
 * relative mapping also moves are left to the first sweep. A mover that
 * cannot start leaves everything to the sweeps. */
static int move_bulk(nf_migration *m, task *ts, size_t n, plan_ctx *p)
{
	const nf_migrate_opts *o = p->o;
	_cleanup_free_ pid_t *pids = calloc(n ? n : 1, sizeof(*pids));
	size_t k = 0;
	if (!pids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (gentle_task(o, &ts[i]))
			pids[k++] = ts[i].pid;
	if (o->method == NF_METHOD_MIGRATE_PAGES || k == 0)
		return 0;
	nf_move_opts mo;
	nf_move_result res;
	mover_opts(p, m->sys_nice, &mo);
	p->move_ns = nf_now_ns();
	tell(p, NF_PHASE_MOVE, 0);
	if (nf_move_pages(pids, k, &mo, &res) < 0)
		return 0;
	take_move_result(m, &res);
	for (size_t i = 0; i < n; i++) {
		int r = ts[i].state == T_LIVE ? measure(m, &ts[i], &o->to) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* Each pass migrates and re-measures the tasks with pages outside the target;
 * the first also those a relative mapping moves within it. */
static int run_sweeps(nf_migration *m, task *ts, size_t n, plan_ctx *p)
{
	const nf_migrate_opts *o = p->o;
	for (unsigned pass = 0; pass <= o->retries; pass++) {
		bool again = false;
		for (size_t i = 0; i < n; i++) {
			task *t = &ts[i];
			bool first = pass == 0;
			if (o->cancel && *o->cancel) {
				m->cancelled = true;
				return 0;
			}
			if (past_deadline(m, o))
				return 0;
			/* A call with nothing to move still walks the whole mm
			 * holding its mmap_lock: none where nothing is outside. */
			if (t->state != T_LIVE ||
			    (outside(t, &o->to) == 0 && !(first && p->inside)))
				continue;
			int r = migrate_one(m, p, t, first);
			if (r < 0)
				return r;
			tell_sweep(p, ts, n, false);
			again |= t->state == T_LIVE && outside(t, &o->to) > 0;
		}
		m->sweeps = pass + 1;
		if (!again || pass == o->retries)
			break;
		sleep_ms(backoff_ms(o->backoff_ms, pass));
	}
	return 0;
}

static void tally(nf_migration *m, const task *ts, size_t n, const nf_nodeset *to)
{
	for (size_t i = 0; i < n; i++) {
		const task *t = &ts[i];
		m->tasks_exited += t->state == T_EXITED;
		m->tasks_failed += t->state == T_FAILED;
		if (t->state != T_LIVE)
			continue;
		uint64_t left = outside(t, to);
		nf_residency_add(&m->after, &t->now);
		for (unsigned c = 0; c < NF_STAY_COUNT; c++)
			m->residual[c] += t->stay[c];
		m->residual_bytes += left;
		m->pages_not_moved += t->not_moved;
		if (t->outside_before > left)
			m->moved_bytes += t->outside_before - left;
		m->tasks_migrated += !m->dry_run;
	}
}

static int run(const nf_cgroup *cg, const nf_migrate_opts *o, nf_migration *m)
{
	nf_nodeset mem;
	_cleanup_free_ pid_t *pids = NULL;
	_cleanup_free_ task *ts = NULL;
	size_t n;

	int r = nf_memory_nodes(&mem);
	if (r < 0)
		return r;
	plan_ctx p = {
	    .o = o,
	    .relative = o->has_from && !nf_nodeset_equal(&o->from, &o->to),
	    .same = nf_nodeset_count(&o->from) == nf_nodeset_count(&o->to),
	    .start_ns = nf_now_ns(),
	};
	tell(&p, NF_PHASE_MEASURE, 0);
	nf_nodeset_minus(&mem, &o->to, &p.sweep);
	r = nf_cgroup_tasks(cg, !o->no_descendants, &pids, &n);
	if (r < 0)
		return r;
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (o->skip <= 0 || pids[i] != o->skip)
			pids[kept++] = pids[i];
	n = kept;
	ts = calloc(n ? n : 1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	m->tasks = n;
	m->dry_run = o->dry_run;
	m->method = NF_METHOD_MIGRATE_PAGES;
	/* then migrate_pages(2) moves shared pages too, and move_pages(2) may
	 * with MPOL_MF_MOVE_ALL (without it, that flag is EPERM) */
	m->sys_nice = nf_self_capable(CAP_SYS_NICE);
	for (size_t i = 0; i < n && r == 0; i++) {
		ts[i].pid = pids[i];
		r = measure(m, &ts[i], &o->to);
		nf_residency_add(&m->before, &ts[i].now);
		ts[i].outside_before = outside(&ts[i], &o->to);
	}
	make_plan(m, &p);
	for (size_t i = 0; i < n; i++)
		p.total += ts[i].outside_before;
	nf_residency_nodes(&m->before, &p.holding);
	p.move_ns = nf_now_ns(); /* the mover's start, or the sweeps' */
	if (r == 0 && !o->dry_run)
		r = move_bulk(m, ts, n, &p);
	tell_sweep(&p, ts, n, true);
	if (r == 0 && !o->dry_run && !m->cancelled && !m->deadline_hit)
		r = run_sweeps(m, ts, n, &p);
	tally(m, ts, n, &o->to);
	return r;
}

int nf_migrate(const nf_cgroup *cg, const nf_migrate_opts *o, nf_migration *ret)
{
	uint64_t start = nf_now_ns();
	nf_migration m = {0};

	if (nf_nodeset_empty(&o->to))
		return -EINVAL;
	int r = run(cg, o, &m);
	if (r < 0) {
		nf_migration_done(&m);
		return r;
	}
	m.duration_ns = nf_now_ns() - start;
	*ret = m;
	return 0;
}

int nf_assist(const nf_cgroup *cg, const nf_migrate_opts *o, nf_move_result *ret)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n;
	nf_nodeset mem;
	nf_move_opts mo;
	plan_ctx p = {
	    .o = o,
	    .relative = true,
	    .same = nf_nodeset_count(&o->from) == nf_nodeset_count(&o->to),
	};
	int r = nf_memory_nodes(&mem);
	if (r == 0)
		r = nf_cgroup_tasks(cg, !o->no_descendants, &pids, &n);
	if (r < 0)
		return r;
	nf_nodeset_minus(&mem, &o->to, &p.sweep);
	mover_opts(&p, nf_self_capable(CAP_SYS_NICE), &mo);
	mo.reverse = true;
	mo.batch_pages = NF_ASSIST_BATCH;
	*ret = (nf_move_result){.tasks = n};
	bool any = false;
	for (unsigned node = 0; node < NF_MAX_NODES; node++)
		any |= mo.dest[node] >= 0;
	if (!any) /* a widening: the kernel moves nothing either */
		return 0;
	/* One task at a time: the mover's scan of a task waits while the kernel
	 * holds its mmap_lock and a writer of the workload queues behind it. */
	uint64_t start = nf_now_ns();
	for (size_t i = n; i-- > 0 && !(o->cancel && *o->cancel);) {
		nf_move_result one;
		if (nf_move_pages(&pids[i], 1, &mo, &one) < 0)
			continue;
		ret->moved_bytes += one.moved_bytes;
		ret->tasks_exited += one.tasks_exited;
		ret->cancelled |= one.cancelled;
		ret->threads = one.threads;
	}
	ret->cancelled |= o->cancel && *o->cancel;
	ret->duration_ns = nf_now_ns() - start;
	return 0;
}

void nf_migration_done(nf_migration *m)
{
	free(m->plan);
	free(m->errors);
	m->plan = NULL;
	m->errors = NULL;
}
