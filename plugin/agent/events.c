/* The event loop's sources: the inotify events of the watched tree and the
 * periodic reconcile. Both feed follow.c; neither runs a migration. */
#include "agent-internal.h"
#include "../lib/log.h"

#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Whether events [P, END) hold the close of a write to cpuset.mems in WD: a
 * writer that does not truncate raises IN_MODIFY only after its write (the
 * kernel's move done), and its close comes with it; nothing to help with. */
static bool closed_later(int wd, const char *p, const char *end)
{
	while (p < end) {
		const struct inotify_event *ev = (const void *)p;
		if (ev->wd == wd && (ev->mask & IN_CLOSE_WRITE) && ev->len &&
		    strcmp(ev->name, "cpuset.mems") == 0)
			return true;
		p += sizeof(*ev) + ev->len;
	}
	return false;
}

static void mems_event(nf_agent *a, nf_cg *c, const struct inotify_event *ev, const char *next,
		       const char *end)
{
	if (ev->mask & IN_CLOSE_WRITE) {
		nf_follow_subtree(a, c, NF_TRIG_INOTIFY);
		nf_assist_disarm(a, c);
	} else if ((ev->mask & IN_MODIFY) && a->h.version == NF_CG_V2 &&
		   !closed_later(ev->wd, next, end)) {
		nf_assist_arm(a, c);
	}
}

/* EV, with the events read after it in [NEXT, END). */
static void handle_event(nf_agent *a, const struct inotify_event *ev, const char *next,
			 const char *end)
{
	a->stats.events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		a->stats.overflows++;
		a->rescan = true;
		nf_log(LOG_WARNING, "inotify queue overflowed; reconciling everything");
		nf_reconcile(a);
		return;
	}
	nf_cg *c = nf_tree_watched(a, ev->wd);
	if (!c || !ev->len)
		return;
	if (ev->mask & IN_ISDIR) {
		nf_cg *k = nf_tree_child(c, ev->name);
		if (ev->mask & (IN_CREATE | IN_MOVED_TO))
			nf_tree_add(a, c, ev->name);
		else if (k)
			nf_tree_remove(a, k);
	} else if (strcmp(ev->name, "cpuset.mems") == 0) {
		mems_event(a, c, ev, next, end);
	} else if ((ev->mask & IN_MODIFY) && /* a write to cgroup.procs: one sample, not two */
		   (strcmp(ev->name, "cgroup.procs") == 0 || strcmp(ev->name, "tasks") == 0 ||
		    strcmp(ev->name, "cgroup.events") == 0)) {
		nf_sample(a, c);
	}
}

void nf_agent_read_events(nf_agent *a)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	/* One hold per event: a burst of new cgroups (each watched, read and
	 * listed) does not keep the others waiting for all of it. */
	while ((n = read(a->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			p += sizeof(*ev) + ev->len;
			nf_agent_lock(a);
			handle_event(a, ev, p, buf + n);
			nf_agent_unlock(a);
		}
	}
}

/* ---- the reconcile ---- */

/* The reconcile reads containers only: a cgroup gains processes with a write
 * to cgroup.procs or (v2) a change of cgroup.events, both watched, so the
 * others can wait. */
void nf_reconcile_drift(nf_agent *a, nf_cg *c)
{
	nf_follow_drift(a, c);
	for (nf_cg *k = c->child; k; k = k->next)
		nf_reconcile_drift(a, k);
}

/* Starts a reconcile: its number, and directories the events missed. */
static unsigned reconcile_begins(nf_agent *a)
{
	a->stats.reconciles++;
	/* Directory listings only when events were lost: an overflow, or a
	 * watch that could not be added (then on every reconcile). */
	if (a->rescan || a->stats.scan_errors)
		nf_tree_rescan(a, a->top);
	a->rescan = false;
	return ++a->reconcile_gen;
}

/* Reads below C what reconcile GEN has not read yet, *LEFT containers at
 * most. The marks let the next batch start again from the top: between two
 * batches cgroups may come and go. */
static void reconcile_batch(nf_agent *a, nf_cg *c, unsigned gen, size_t *left)
{
	if (c->reconciled != gen) {
		c->reconciled = gen;
		if (nf_cg_is_container(c)) {
			nf_follow_mems(a, c, NF_TRIG_RECONCILE, true);
			nf_sample(a, c);
			(*left)--;
		}
		nf_follow_drift(a, c);
	}
	for (nf_cg *k = c->child; k && *left; k = k->next)
		reconcile_batch(a, k, gen, left);
}

/* Whether reconcile GEN has more to read after one more batch. */
static bool reconcile_more(nf_agent *a, unsigned gen)
{
	size_t left = NF_BATCH;
	reconcile_batch(a, a->top, gen, &left);
	return left == 0;
}

void nf_reconcile(nf_agent *a)
{
	unsigned gen = reconcile_begins(a);
	while (reconcile_more(a, gen))
		;
}

/* One hold per batch. */
void nf_agent_reconcile(nf_agent *a)
{
	nf_agent_lock(a);
	unsigned gen = reconcile_begins(a);
	nf_agent_unlock(a);
	for (bool more = true; more;) {
		nf_agent_lock(a);
		more = reconcile_more(a, gen);
		nf_agent_unlock(a);
	}
}
