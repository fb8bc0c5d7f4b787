#include "staged.h"
#include "settle.h"
#include "../../cgroup/util.h"

#include <string.h>

/* The tasks' memory outside TO, and where it is: their numa_maps, as the
 * engine counts it (memory.numa_stat would add page cache no task maps,
 * which no migration moves). A task gone meanwhile counts for nothing. */
static int outside_now(const nf_cgroup *cg, const nf_nodeset *to, nf_residency *ret,
		       uint64_t *ret_out)
{
	_cleanup_free_ pid_t *pids = NULL;
	nf_residency sum = {0};
	size_t n = 0;
	int r = nf_cgroup_tasks(cg, true, &pids, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		nf_task_maps m;
		pid_t tid;
		int e = nf_task_thread(pids[i], &tid);
		if (e == 0)
			e = nf_task_numa_maps(pids[i], tid, to, &m);
		if (e == 0)
			nf_residency_add(&sum, &m.res);
		else if (e != -ESRCH)
			r = e;
	}
	if (r < 0)
		return r;
	*ret = sum;
	*ret_out = nf_residency_outside(&sum, to);
	return 0;
}

static int write_timed(const nf_cgroup *cg, const nf_nodeset *set, uint64_t *ret_ns)
{
	uint64_t t0 = nf_now_ns();
	int r = nf_cgroup_write_mems(cg, set);
	*ret_ns = nf_now_ns() - t0;
	return r;
}

/* The final write, and what the kernel swept in it: what the engine left
 * outside the target (just measured) less what is outside after the write.
 * Only the write can fail the move: a measurement that fails costs the
 * figures, not the move (the caller would put the old mems back, and the
 * kernel move it all back). */
static int narrow(const nf_cgroup *cg, const nf_nodeset *to, nf_staged *s)
{
	uint64_t out_before = s->m.residual_bytes, out_after = out_before;
	int r = write_timed(cg, to, &s->narrow_ns);
	if (r < 0)
		return r;
	s->after = s->m.after;
	if (outside_now(cg, to, &s->after, &out_after) == 0)
		s->kernel_bytes = out_before > out_after ? out_before - out_after : 0;
	s->residual_bytes = out_after;
	return 0;
}

/* The engine's reports as the staged move's: elapsed since its start, and
 * the last one kept for the narrowing's. */
typedef struct {
	const nf_migrate_opts *o;
	uint64_t start_ns;
	nf_progress last;
} relay;

static void relay_tell(const nf_progress *p, void *userdata)
{
	relay *rl = userdata;
	rl->last = *p;
	rl->last.elapsed_ns = nf_now_ns() - rl->start_ns;
	rl->o->progress(&rl->last, rl->o->progress_data);
}

static void tell_phase(relay *rl, nf_phase phase)
{
	if (!rl->o->progress)
		return;
	nf_progress p = rl->last;
	p.phase = phase;
	relay_tell(&p, rl);
}

static int stages(const nf_cgroup *cg, const nf_migrate_opts *o, nf_staged *s)
{
	nf_migrate_opts mo = *o;
	relay rl = {.o = o, .start_ns = nf_now_ns()};
	uint64_t t0;
	int r;
	if (o->progress) {
		mo.progress = relay_tell;
		mo.progress_data = &rl;
	}
	tell_phase(&rl, s->widen ? NF_PHASE_WIDEN : NF_PHASE_MEASURE);
	if (s->widen && (r = write_timed(cg, &s->widened, &s->widen_ns)) < 0)
		return r;
	/* v1 without memory_migrate: the new set first, nothing moves in it */
	if (!s->kernel_migrates && (r = write_timed(cg, &o->to, &s->narrow_ns)) < 0)
		return r;
	mo.from = s->old;
	mo.has_from = true;
	t0 = nf_now_ns();
	r = nf_migrate(cg, &mo, &s->m);
	s->move_ns = nf_now_ns() - t0;
	if (r < 0)
		return r;
	if (s->kernel_migrates) {
		tell_phase(&rl, NF_PHASE_NARROW);
		r = narrow(cg, &o->to, s);
		/* what the kernel swept in the write counts as done too */
		uint64_t total = rl.last.total_bytes;
		rl.last.done_bytes = total > s->residual_bytes ? total - s->residual_bytes : 0;
		tell_phase(&rl, NF_PHASE_NARROW);
		return r;
	}
	s->after = s->m.after;
	s->residual_bytes = s->m.residual_bytes;
	return 0;
}

int nf_staged_move(const nf_cgroup *cg, const nf_migrate_opts *o, nf_staged *ret)
{
	nf_staged s = {0};
	nf_nodeset mems;
	int r = nf_cgroup_read_mems(cg, &mems, &s.old);
	if (r == 0)
		r = nf_cgroup_mems_writable(cg);
	if (r == 0)
		r = nf_kernel_migrates(cg, &s.kernel_migrates);
	if (r < 0)
		return r;
	nf_nodeset_union(&s.old, &o->to, &s.widened);
	s.widen = s.kernel_migrates && !nf_nodeset_equal(&s.widened, &s.old);
	r = stages(cg, o, &s);
	if (r < 0) {
		nf_cgroup_write_mems(cg, &mems); /* best effort: as it was */
		nf_migration_done(&s.m);
		return r;
	}
	*ret = s;
	return 0;
}

void nf_staged_done(nf_staged *s)
{
	nf_migration_done(&s->m);
}
