#include "engine.h"
#include "../cgroup/util.h"

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

typedef struct {
	pid_t pid;
	int state; /* T_LIVE, T_EXITED, T_FAILED */
	uint64_t outside_before, outside_after;
} task;

enum { T_LIVE, T_EXITED, T_FAILED };

static int add_error(nf_migration *m, pid_t pid, int err, const char *what)
{
	nf_task_error *e = reallocarray(m->errors, m->n_errors + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->errors = e;
	m->errors[m->n_errors++] = (nf_task_error){.pid = pid, .err = err, .what = what};
	return 0;
}

/* ESRCH and EINVAL (no mm left: the task is exiting) mean gone, not failed. */
static int task_failed(nf_migration *m, task *t, int r, const char *what)
{
	if (r == -ESRCH || r == -EINVAL) {
		t->state = T_EXITED;
		return 0;
	}
	t->state = T_FAILED;
	return add_error(m, t->pid, -r, what);
}

static int measure(nf_migration *m, task *t, const nf_nodeset *to, nf_residency *sum,
		   uint64_t *outside, uint64_t stay[NF_STAY_COUNT])
{
	nf_residency res = {0};
	uint64_t st[NF_STAY_COUNT] = {0};
	int r = nf_task_residency(t->pid, &res, to, st);
	if (r < 0)
		return task_failed(m, t, r, "reading numa_maps");
	nf_residency_add(sum, &res);
	*outside = nf_residency_outside(&res, to);
	for (unsigned c = 0; stay && c < NF_STAY_COUNT; c++)
		stay[c] += st[c];
	return 0;
}

/* Nodes that are not targets but may hold the tasks' pages. */
static int sweep_sources(const nf_nodeset *to, nf_nodeset *ret)
{
	nf_nodeset mem;
	int r = nf_memory_nodes(&mem);
	if (r < 0)
		return r;
	nf_nodeset_minus(&mem, to, ret);
	return 0;
}

static int migrate_one(nf_migration *m, task *t, const nf_migrate_opts *o, const nf_nodeset *sweep,
		       bool relative)
{
	int r = 0;
	/* One call with old -> new keeps the kernel's relative node mapping. */
	if (relative)
		r = migrate_task(t->pid, &o->from, &o->to, &m->pages_not_moved);
	if (r == 0 && !nf_nodeset_empty(sweep))
		r = migrate_task(t->pid, sweep, &o->to, &m->pages_not_moved);
	if (r < 0)
		return task_failed(m, t, r, "migrate_pages");
	return 0;
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

/* Where each source node's bytes will go, following the kernel's node_remap(). */
static void make_plan(nf_migration *m, const nf_migrate_opts *o, const nf_nodeset *sweep)
{
	bool same = o->has_from && nf_nodeset_count(&o->from) == nf_nodeset_count(&o->to);
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		uint64_t b = nf_residency_node(&m->before, n);
		if (!b || nf_nodeset_has(&o->to, n))
			continue;
		bool rel = o->has_from && nf_nodeset_has(&o->from, n) &&
			   (same || !nf_nodeset_has(&o->to, n));
		add_plan(m, n, nf_nodeset_remap(n, rel ? &o->from : sweep, &o->to), b);
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int run_sweeps(nf_migration *m, task *ts, size_t n, const nf_migrate_opts *o,
		      const nf_nodeset *sweep)
{
	bool relative = o->has_from && !nf_nodeset_equal(&o->from, &o->to);
	for (unsigned pass = 0; pass <= o->retries; pass++) {
		bool again = false;
		for (size_t i = 0; i < n; i++) {
			task *t = &ts[i];
			uint64_t left = pass == 0 ? t->outside_before : t->outside_after;
			if (t->state != T_LIVE || left == 0)
				continue;
			int r = migrate_one(m, t, o, sweep, relative && pass == 0);
			if (r == 0 && t->state == T_LIVE) {
				nf_residency scratch = {0};
				r = measure(m, t, &o->to, &scratch, &t->outside_after, NULL);
			}
			if (r < 0)
				return r;
			again |= t->state == T_LIVE && t->outside_after > 0;
		}
		m->sweeps = pass + 1;
		if (!again || pass == o->retries)
			break;
		sleep_ms((uint64_t)o->backoff_ms << (2 * pass));
	}
	return 0;
}

static int verify(nf_migration *m, task *ts, size_t n, const nf_nodeset *to)
{
	for (size_t i = 0; i < n; i++) {
		task *t = &ts[i];
		if (t->state != T_LIVE)
			continue;
		int r = measure(m, t, to, &m->after, &t->outside_after, m->residual);
		if (r < 0)
			return r;
		if (t->state != T_LIVE)
			continue;
		m->tasks_migrated++;
		m->residual_bytes += t->outside_after;
		if (t->outside_before > t->outside_after)
			m->moved_bytes += t->outside_before - t->outside_after;
	}
	return 0;
}

static void count_states(nf_migration *m, const task *ts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		m->tasks_exited += ts[i].state == T_EXITED;
		m->tasks_failed += ts[i].state == T_FAILED;
	}
}

static int run(const nf_cgroup *cg, const nf_migrate_opts *o, nf_migration *m)
{
	nf_nodeset sweep;
	_cleanup_free_ pid_t *pids = NULL;
	_cleanup_free_ task *ts = NULL;
	size_t n;

	int r = sweep_sources(&o->to, &sweep);
	if (r < 0)
		return r;
	r = nf_cgroup_tasks(cg, &pids, &n);
	if (r < 0)
		return r;
	ts = calloc(n ? n : 1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	m->tasks = n;
	for (size_t i = 0; i < n; i++) {
		ts[i].pid = pids[i];
		r = measure(m, &ts[i], &o->to, &m->before, &ts[i].outside_before, NULL);
		if (r < 0)
			return r;
	}
	make_plan(m, o, &sweep);
	if (o->dry_run) {
		m->after = m->before;
		for (size_t i = 0; i < n; i++)
			m->residual_bytes += ts[i].outside_before;
	} else {
		r = run_sweeps(m, ts, n, o, &sweep);
		if (r == 0)
			r = verify(m, ts, n, &o->to);
	}
	count_states(m, ts, n);
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

void nf_migration_done(nf_migration *m)
{
	free(m->plan);
	free(m->errors);
	m->plan = NULL;
	m->errors = NULL;
}
