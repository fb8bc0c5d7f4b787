/* The one decision path the event sources feed (events.c, requests.c): a
 * container's effective mems changed, or its memory drifted outside them;
 * decide.c's rules say whether there is anything to move, and jobs.c queues
 * it. Called with the lock held (agent-internal.h). */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <string.h>

static bool reconcile_raced(const nf_cg *c)
{
	const nf_job *j = c->running && !c->running->assist ? c->running : NULL;
	return nf_decide_raced(j ? &j->trigger : NULL, c->last);
}

typedef struct {
	nf_agent *a;
	const nf_cg *c;
} cg_ref;

/* Whether C's tasks are all runc's init (named "runc:[2:INIT]" and so on)
 * still: runc narrows a new container's mems then, and the exec that follows
 * discards the memory the kernel moved. */
static bool runc_init_only(void *userdata)
{
	const cg_ref *ref = userdata;
	char path[PATH_MAX];
	nf_cgroup cg = nf_cg_cgroup(ref->a, ref->c, path);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (nf_cgroup_tasks(&cg, false, &pids, &n) < 0 || !n)
		return false;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *comm = NULL;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[i]);
		if (nf_read_line(path, &comm) < 0 || strncmp(comm, "runc:[", 6) != 0)
			return false;
	}
	return true;
}

/* C's effective mems went from OLD to its current ones (both non-empty). */
static void mems_changed(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *old)
{
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	bool idle = (!c->running || c->running->assist) && (!c->pending || c->pending->assist);
	nf_nodeset lost;
	nf_nodeset_minus(old, &c->eff, &lost);
	cg_ref ref = {a, c};
	const char *why =
	    nf_decide_nothing_to_move(idle, !nf_nodeset_empty(&lost), c->anon != NULL,
				      nf_cg_outside(a, c, &c->eff, false), runc_init_only, &ref);
	nf_log(why ? LOG_DEBUG : LOG_INFO, "container %s: effective mems %s -> %s (%s)%s%s",
	       nf_cg_id(c), nf_nodeset_format(old, b1, sizeof(b1)),
	       nf_nodeset_format(&c->eff, b2, sizeof(b2)), nf_trigger_name(t),
	       why ? ": nothing to move: " : "", why ? why : "");
	if (!why)
		nf_job_request(a, c, t, old);
}

/* The reconcile reads only the effective mems: a write to cpuset.mems itself
 * is an event. */
void nf_follow_mems(nf_agent *a, nf_cg *c, nf_trigger t, bool eff_only)
{
	char path[PATH_MAX];
	nf_cgroup cg = nf_cg_cgroup(a, c, path);
	nf_nodeset old = c->eff;
	int r = nf_cgroup_read_mems(&cg, eff_only && c->wd >= 0 ? NULL : &c->mems, &c->eff);
	if (r < 0) {
		nf_read_failed(a, c, "cpuset mems", r);
		return;
	}
	/* a staged move writes the mems itself: its own writes ask for nothing */
	if (nf_cg_staging(c))
		return;
	if (nf_cg_is_container(c) && !nf_nodeset_equal(&old, &c->eff) && !nf_nodeset_empty(&old) &&
	    !nf_nodeset_empty(&c->eff)) {
		nf_announce_mems(a, c, &old);
		mems_changed(a, c, t, &old);
	} else if (t == NF_TRIG_INOTIFY && nf_cg_is_container(c) && reconcile_raced(c)) {
		nf_log(LOG_INFO,
		       "container %s: the write of its mems is over, and a reconcile's migration "
		       "may have raced the kernel's; migrating again",
		       nf_cg_id(c));
		nf_job_request(a, c, t,
			       c->running && c->running->has_from ? &c->running->from : NULL);
	}
}

void nf_follow_subtree(nf_agent *a, nf_cg *c, nf_trigger t)
{
	nf_follow_mems(a, c, t, false);
	for (nf_cg *k = c->child; k; k = k->next)
		nf_follow_subtree(a, k, t);
}

void nf_follow_drift(nf_agent *a, nf_cg *c)
{
	if (!nf_cg_is_container(c) || c->running || c->pending || !c->anon || nf_cg_opted_out(c))
		return;
	uint64_t out = nf_cg_outside(a, c, &c->eff, true);
	if (nf_decide_drift(out, c->residual, nf_nodeset_empty(&c->eff))) {
		c->drifted = true;
		a->stats.drift_repairs++;
		nf_log(LOG_INFO, "container %s: %.1f MiB outside its mems; repairing", nf_cg_id(c),
		       out / 1048576.0);
		nf_job_request(a, c, NF_TRIG_RECONCILE, NULL);
	}
}
