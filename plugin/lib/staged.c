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

/* Whether cpuset.mems still holds what the move last wrote (or found): a
 * write by someone else meanwhile wins, and the move writes no more. There
 * is no compare-and-swap for a cgroup file: a write between this read and
 * the move's own is still lost, but the window is one read, not the move. */
static bool still_ours(const nf_cgroup *cg, nf_staged *s)
{
	nf_nodeset now;
	if (nf_cgroup_read_mems(cg, &now, NULL) < 0 || nf_nodeset_equal(&now, &s->wrote))
		return true; /* a read that fails: the write will say why */
	s->raced = true;
	s->raced_mems = now;
	return false;
}

/* The final write, and what the kernel swept in it: what the engine left
 * outside the target (just measured) less what is outside after the write.
 * Only the write can fail the move: a measurement that fails costs the
 * figures, not the move (the caller would put the old mems back, and the
 * kernel move it all back). No write when another writer's mems are there. */
static int narrow(const nf_cgroup *cg, const nf_nodeset *to, nf_staged *s)
{
	uint64_t out_before = s->m.residual_bytes, out_after = out_before;
	if (!still_ours(cg, s)) {
		s->after = s->m.after;
		s->residual_bytes = out_before;
		return 0;
	}
	int r = write_timed(cg, to, &s->narrow_ns);
	if (r < 0)
		return r;
	s->wrote = *to;
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
	if (s->widen)
		s->wrote = s->widened, s->written = true;
	/* v1 without memory_migrate: the new set first, nothing moves in it */
	if (!s->kernel_migrates && (r = write_timed(cg, &o->to, &s->narrow_ns)) < 0)
		return r;
	if (!s->kernel_migrates)
		s->wrote = o->to, s->written = true;
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

/* After a failure: the mems as they were, unless another writer's are there
 * now (theirs win). */
static void restore(const nf_cgroup *cg, const nf_nodeset *mems, nf_staged *s)
{
	if (!s->written || !still_ours(cg, s))
		return;
	s->restore_r = nf_cgroup_write_mems(cg, mems);
	s->restored = s->restore_r == 0;
}

static int staged(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_nodeset *resume_old,
		  nf_staged *ret)
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
	s.wrote = mems;
	if (resume_old) { /* cut short after the widening: it must be there still */
		nf_nodeset_union(resume_old, &o->to, &s.widened);
		if (!s.kernel_migrates || !nf_nodeset_equal(&mems, &s.widened))
			return -ESTALE;
		s.old = *resume_old;
		s.written = s.resumed = true;
		mems = s.old; /* what a failure puts back */
	} else {
		nf_nodeset_union(&s.old, &o->to, &s.widened);
		s.widen = s.kernel_migrates && !nf_nodeset_equal(&s.widened, &s.old);
	}
	r = stages(cg, o, &s);
	/* Another writer's mems there at the failure: the move was overtaken
	 * (the engine's moves to nodes outside them fail), not failed; theirs
	 * stay. */
	if (r < 0 && s.written && (s.raced || !still_ours(cg, &s))) {
		s.after = s.m.after;
		s.residual_bytes = s.m.residual_bytes;
		r = 0;
	}
	if (r < 0) {
		restore(cg, &mems, &s);
		nf_migration_done(&s.m);
		*ret = (nf_staged){.old = s.old,
				   .widened = s.widened,
				   .written = s.written,
				   .restored = s.restored,
				   .restore_r = s.restore_r,
				   .raced = s.raced,
				   .raced_mems = s.raced_mems};
		return r;
	}
	*ret = s;
	return 0;
}

int nf_staged_move(const nf_cgroup *cg, const nf_migrate_opts *o, nf_staged *ret)
{
	return staged(cg, o, NULL, ret);
}

int nf_staged_resume(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_nodeset *old,
		     nf_staged *ret)
{
	return staged(cg, o, old, ret);
}

void nf_staged_done(nf_staged *s)
{
	nf_migration_done(&s->m);
}
