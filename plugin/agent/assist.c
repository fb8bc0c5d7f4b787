/* The assist (docs/architecture.md, "Assist"). Someone opened a container's
 * cpuset.mems, or an ancestor's, to write it (IN_MODIFY, before the kernel
 * moves anything); on v2 the kernel migrates inside that write while the
 * writer waits. Once the container's effective mems change, nf_assist() moves
 * the same pages beside the kernel, so the kernel finds less to do. The
 * agent's migration at the close of the write (the record) verifies and takes
 * what is left. The arming, the disarming and the preparation and conclusion
 * of a run are called with the lock held; the run itself without it, by a
 * worker (jobs.c). */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <string.h>
#include <time.h>

/* How long an assist waits for the write it saw begin to change the effective
 * mems (the writer may queue behind another on the cpuset lock); the close of
 * the write ends the wait sooner. */
#define ASSIST_WAIT_MS 2000

/* PRE, a sample of C taken while a write moved its pages onto NEW (its
 * effective mems now), made a picture of the write's start. Under the old
 * mems nothing of C's could be allocated on a node that only NEW has: it held
 * at most what LAST, the sample before, saw there (without one, what PRE
 * saw). The rest came from outside NEW and goes back to a node there, which is
 * all that counting what left the nodes outside NEW needs. */
static void unmove(const nf_agent *a, const nf_cg *c, uint64_t *pre, const uint64_t *last,
		   const nf_nodeset *new)
{
	uint64_t back = 0;
	unsigned away = a->nnodes;
	for (unsigned n = 0; n < a->nnodes; n++) {
		if (!nf_nodeset_has(new, n)) {
			away = away < a->nnodes ? away : n;
		} else if (!nf_nodeset_has(&c->eff, n) && last && last[n] < pre[n]) {
			back += pre[n] - last[n];
			pre[n] = last[n];
		}
	}
	if (away < a->nnodes)
		pre[away] += back;
}

/* C's picture of the write's start (C->pre), unless this write's is taken. */
static void picture(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	nf_cgroup cg = nf_cg_cgroup(a, c, path);
	nf_nodeset eff;
	_cleanup_free_ uint64_t *last = nf_cg_node_totals(a, c);
	bool before = nf_cgroup_read_mems(&cg, NULL, &eff) == 0 && nf_nodeset_equal(&eff, &c->eff);
	if (!before && c->pre) /* this write's picture is taken */
		return;
	nf_sample(a, c);
	bool moving = nf_cgroup_read_mems(&cg, NULL, &eff) == 0 && !nf_nodeset_equal(&eff, &c->eff);
	free(c->pre);
	c->pre = nf_cg_node_totals(a, c);
	if (c->pre && moving)
		unmove(a, c, c->pre, last, &eff);
}

/* With assist on, a container with enough memory for the mover gets one. */
static void arm(nf_agent *a, nf_cg *c)
{
	uint64_t anon = 0;
	for (unsigned n = 0; c->anon && n < a->nnodes; n++)
		anon += c->anon[n];
	nf_job *j = a->tuning.assist && !nf_cg_opted_out(c) && anon >= NF_GENTLE_MIN_BYTES
			? calloc(1, sizeof(*j))
			: NULL;
	if (!j)
		return;
	*j = (nf_job){.cg = c, .trigger = NF_TRIG_INOTIFY, .from = c->eff, .assist = true};
	c->assist_armed = true;
	c->pending = j;
	nf_job_enqueue(a, j);
}

/* A write to C's cpuset.mems begins (v2: the writer's O_TRUNC open, before
 * the kernel moves anything). Each idle container below is sampled now, while
 * its effective mems are still the old ones: the write's record counts what
 * the kernel moved from that picture, not from a sample maybe a reconcile old
 * (memory grows with no event). A write that lands before or during the
 * sample has the picture put back as unmove() can. */
void nf_assist_arm(nf_agent *a, nf_cg *c)
{
	if (nf_cg_is_container(c) && !c->assist_armed && !c->running && !c->pending) {
		picture(a, c);
		arm(a, c);
	}
	for (nf_cg *k = c->child; k; k = k->next)
		nf_assist_arm(a, k);
}

void nf_assist_disarm(nf_agent *a, nf_cg *c)
{
	c->assist_armed = false;
	if (c->pending && c->pending->assist)
		nf_job_drop_pending(a, c);
	if (!c->pending) { /* no migration of the write to give the snapshot to */
		free(c->pre);
		c->pre = NULL;
	}
	if (c->running && c->running->assist)
		c->running->cancel = true;
	for (nf_cg *k = c->child; k; k = k->next)
		nf_assist_disarm(a, k);
}

void nf_assist_cancel_all(nf_cg *c)
{
	if (c && c->running && c->running->assist)
		c->running->cancel = true;
	for (nf_cg *k = c ? c->child : NULL; k; k = k->next)
		nf_assist_cancel_all(k);
}

void nf_assist_prepare(const nf_agent *a, nf_job *j, uint64_t max_rate, nf_assist_run *ret)
{
	*ret = (nf_assist_run){.rel = strdup(j->cg->rel),
			       .o = {.from = j->from,
				     .has_from = true,
				     .no_descendants = true,
				     .cancel = &j->cancel,
				     .threads = a->tuning.threads,
				     .max_rate = max_rate}};
}

/* Polls the effective mems every 2 ms until the write changes them. */
static bool wait_for_change(const nf_cgroup *cg, nf_assist_run *x)
{
	while (!*x->o.cancel && nf_now_ns() - x->t0 < ASSIST_WAIT_MS * UINT64_C(1000000)) {
		if (nf_cgroup_read_mems(cg, NULL, &x->o.to) == 0 && !nf_nodeset_empty(&x->o.to) &&
		    !nf_nodeset_equal(&x->o.to, &x->o.from))
			return true;
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	}
	return false;
}

void nf_assist_move_unlocked(const nf_hierarchy *h, nf_assist_run *x)
{
	nf_cgroup cg = {0};
	x->t0 = nf_now_ns();
	x->r = x->rel ? nf_cgroup_open(h, x->rel, &cg) : -ENOMEM;
	x->changed = x->r == 0 && wait_for_change(&cg, x);
	x->t1 = nf_now_ns();
	if (x->changed)
		x->r = nf_assist(&cg, &x->o, &x->m);
	nf_cgroup_done(&cg);
}

void nf_assist_conclude(nf_agent *a, nf_cg *c, nf_assist_run *x)
{
	const nf_move_result *m = &x->m;
	if (x->changed && x->r == 0) {
		char to[NF_NODESET_STRLEN];
		c->assisted += m->moved_bytes;
		a->stats.assists += m->moved_bytes > 0;
		a->stats.assist_total += m->moved_bytes;
		nf_log(
		    m->moved_bytes ? LOG_INFO : LOG_DEBUG,
		    "container %s: assisted the kernel's migration to %s: moved %.1f MiB in %llu "
		    "ms, %llu ms after the write began%s",
		    nf_cg_id(c), nf_nodeset_format(&x->o.to, to, sizeof(to)),
		    m->moved_bytes / 1048576.0, (unsigned long long)(m->duration_ns / 1000000),
		    (unsigned long long)((x->t1 - x->t0) / 1000000),
		    m->cancelled ? " (stopped: the write is over)" : "");
	} else if (x->r < 0) {
		nf_log_errno(LOG_DEBUG, x->r, "container %s: assist", nf_cg_id(c));
	}
	free(x->rel);
	x->rel = NULL;
}
