/* The queue and the workers. A job is a migration (to the container's
 * effective mems), a staged move (to a target of its own) or an assist. Per
 * container one runs and at most one waits; a new change cancels the running
 * one, and the waiting one, retargeted, runs next.
 *
 * The only room that drops the lock (agent-internal.h): a worker holds it
 * while it takes a job and while it records the result, and lets it go in
 * the *_drops_lock() functions around everything that moves memory or writes
 * the journal aside. */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../lib/settle.h"
#include "../lib/staged.h"
#include "../../cgroup/util.h"

#include <string.h>

void nf_job_free(nf_job *j)
{
	nf_record_unref(j->record);
	free(j);
}

void nf_job_enqueue(nf_agent *a, nf_job *j)
{
	j->queued = true;
	j->next = NULL;
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	pthread_cond_signal(&a->work);
}

void nf_job_drop_pending(nf_agent *a, nf_cg *c)
{
	nf_job *j = c->pending, *prev = NULL;
	for (nf_job *q = a->head; q && q != j; q = q->next)
		prev = q;
	if (j->queued) {
		*(prev ? &prev->next : &a->head) = j->next;
		if (a->tail == j)
			a->tail = prev;
	}
	c->pending = NULL;
	nf_job_free(j);
}

nf_nodeset nf_job_sampled_from(const nf_agent *a, const nf_cg *c, const nf_nodeset *to)
{
	nf_nodeset from = {0};
	for (unsigned n = 0; c->anon && n < a->nnodes; n++)
		if (c->anon[n] + c->file[n] && !nf_nodeset_has(to, n))
			nf_nodeset_set(&from, n);
	return from;
}

nf_job *nf_job_new(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from)
{
	nf_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	*j = (nf_job){.cg = c, .trigger = t, .to = c->eff, .has_from = from != NULL};
	if (from)
		j->from = *from;
	nf_nodeset shown = from ? *from : nf_job_sampled_from(a, c, &c->eff);
	j->record = nf_record_new(a->hist.next_id, nf_cg_id(c), c->rel, t, &shown, &c->eff);
	if (!j->record)
		return free(j), NULL;
	a->hist.next_id++;
	return j;
}

/* The one door to the queue for migrations: the events, the reconcile,
 * registrations and the API all ask here. FROM, when the mems changed, is
 * what they were: the engine keeps the kernel's relative node mapping. */
nf_record *nf_job_request(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from)
{
	nf_job *j;
	if (c->pending && c->pending->assist)
		nf_job_drop_pending(a, c);
	switch (
	    nf_decide_request(t, nf_cg_opted_out(c), nf_cg_staging(c), c->pending, c->running)) {
	case NF_REQ_SKIP:
		return NULL;
	case NF_REQ_RETARGET:
		c->pending->to = c->pending->record->to = c->eff;
		return c->pending->record;
	case NF_REQ_SUPERSEDE:
	case NF_REQ_QUEUE:
		break;
	}
	if (!(j = nf_job_new(a, c, t, from)))
		return NULL;
	nf_history_push(&a->hist, j->record);
	/* Journaled as handed out (the API returns its id at once): a crash before
	 * it ends must not let the next start hand the id out again. */
	nf_history_save(&a->hist, j->record);
	c->pending = j;
	if (c->running) {
		c->running->cancel = true;
		if (!c->running->assist)
			nf_log(LOG_INFO,
			       "container %s: mems changed during a migration; superseding it",
			       nf_cg_id(c));
	} else {
		nf_job_enqueue(a, j);
	}
	return j->record;
}

static void count(nf_agent *a, const nf_record *r)
{
	nf_agent_stats *s = &a->stats;
	double secs = r->duration_ms / 1e3;
	s->results[r->result]++;
	s->moved_total += r->moved_bytes;
	s->kernel_moved_total += r->kernel_moved_bytes;
	s->residual_total += r->residual_bytes;
	s->duration_sum += secs;
	s->gentle_total += r->gentle_bytes;
	for (size_t i = 0; i < r->n_reasons; i++)
		s->residue_total[r->reasons[i].why] += r->reasons[i].bytes;
	unsigned b = 0;
	while (b < NF_DURATION_BUCKETS && secs > nf_duration_bounds[b])
		b++;
	s->duration_bucket[b]++;
}

void nf_job_resume_staged(nf_agent *a, const nf_record *rec)
{
	char path[PATH_MAX], b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	nf_nodeset widened, mems;
	unsigned long long id = rec->id;
	nf_nodeset_union(&rec->from, &rec->to, &widened);
	if (nf_nodeset_equal(&widened, &rec->from) || nf_nodeset_equal(&widened, &rec->to))
		return; /* it widened nothing: its mems are as before, or the target */
	nf_cg *c = nf_tree_find_path(a, rec->cgroup, false);
	nf_cgroup cg = c ? nf_cg_cgroup(a, c, path) : (nf_cgroup){0};
	if (!c || !nf_cg_is_container(c) || nf_cgroup_read_mems(&cg, &mems, NULL) < 0) {
		nf_log(LOG_INFO, "staged move %llu was cut short; its cgroup '%s' is gone", id,
		       rec->cgroup);
		return;
	}
	if (!nf_nodeset_equal(&mems, &widened)) {
		nf_log(LOG_NOTICE,
		       "container %s: staged move %llu was cut short; its cpuset.mems are %s, not "
		       "the %s it widened to: left as they are",
		       nf_cg_id(c), id, nf_nodeset_format(&mems, b1, sizeof(b1)),
		       nf_nodeset_format(&widened, b2, sizeof(b2)));
		return;
	}
	nf_job *j = c->running || c->pending ? NULL : nf_job_new(a, c, NF_TRIG_MOVE, &rec->from);
	if (!j)
		return;
	j->to = j->record->to = rec->to;
	j->staged = j->resume = true;
	nf_history_push(&a->hist, j->record);
	nf_history_save(&a->hist, j->record);
	c->pending = j;
	nf_job_enqueue(a, j);
	nf_log(LOG_NOTICE,
	       "container %s: staged move %llu was cut short with cpuset.mems widened to %s; "
	       "resuming it to %s as move %llu",
	       nf_cg_id(c), id, nf_nodeset_format(&widened, b1, sizeof(b1)),
	       nf_nodeset_format(&rec->to, b2, sizeof(b2)), (unsigned long long)j->record->id);
}

/* The record, the metrics, the journal, the container. */
static void finish(nf_agent *a, nf_job *j, int r, const nf_migration *m, uint64_t kernel,
		   uint64_t ns)
{
	nf_record *rec = j->record;
	if (nf_record_finish(rec, r, m, kernel, ns) < 0)
		nf_log(LOG_WARNING, "migration %llu: out of memory for its error messages",
		       (unsigned long long)rec->id);
	count(a, rec);
	nf_history_save(&a->hist, rec);
	nf_announce_record(a, "migration-end", rec);
	nf_log(rec->result == NF_RES_OK ? LOG_INFO : LOG_WARNING,
	       "container %s: migration %llu %s: moved %.1f MiB (kernel %.1f MiB), %.1f MiB left, "
	       "%llu tasks, %llu ms",
	       nf_cg_id(j->cg), (unsigned long long)rec->id, nf_result_name(rec->result),
	       rec->moved_bytes / 1048576.0, kernel / 1048576.0, rec->residual_bytes / 1048576.0,
	       (unsigned long long)rec->tasks, (unsigned long long)rec->duration_ms);
	nf_record_unref(j->cg->last);
	j->cg->last = nf_record_ref(rec);
	/* What a deadline left is not stuck: the next reconcile takes it as drift. */
	j->cg->residual = m->deadline_hit ? 0 : rec->residual_bytes;
	j->cg->drifted = false;
	if (a->on_done) { /* Kubernetes events */
		nf_container v = nf_cg_view(a, j->cg);
		a->on_done(&v, a->on_done_data);
	}
}

/* Bytes per second C's migrations may move: its annotation, else the agent's. */
static uint64_t max_rate(const nf_agent *a, const nf_cg *c)
{
	return c->reg && c->reg->max_rate ? c->reg->max_rate : a->tuning.max_rate;
}

/* ---- a migration or a staged move ---- */

/* What a migration takes out from under the lock, and what it brings back. */
typedef struct {
	char *rel;
	nf_migrate_opts o;
	unsigned nnodes;
	bool staged, resume, settle;
	uint64_t before;   /* bytes outside the target when the write began */
	uint64_t assisted; /* moved by assists since */
	int r;
	uint64_t t0, ns, kernel;
	nf_migration m;
	bool sampled; /* AFTER holds the container's memory after it */
	nf_residency after;
	bool ran_staged; /* a staged move ran: S, and the mems it ended at (has_eff) */
	nf_staged s;
	bool has_eff;
	nf_nodeset eff;
	nf_announce_sink sink; /* the engine's progress, to the record and the stream */
} run;

/* What was outside J's target when the write began: a sample taken since may
 * have seen what the assist moved. */
static uint64_t outside_at_start(const nf_agent *a, nf_cg *c, const nf_nodeset *to)
{
	uint64_t before = c->pre ? 0 : nf_cg_outside(a, c, to, false);
	for (unsigned n = 0; c->pre && n < a->nnodes; n++)
		before += nf_nodeset_has(to, n) ? 0 : c->pre[n];
	free(c->pre);
	c->pre = NULL;
	return before;
}

static void prepare(nf_agent *a, nf_job *j, run *x)
{
	nf_cg *c = j->cg;
	const nf_agent_tuning *t = &a->tuning;
	*x = (run){.rel = strdup(c->rel),
		   .nnodes = a->nnodes,
		   .staged = j->staged,
		   .resume = j->resume,
		   .settle = j->has_from,
		   .before = outside_at_start(a, c, &j->to),
		   .assisted = c->assisted,
		   .o = {.to = j->to,
			 .from = j->from,
			 .has_from = j->has_from,
			 .retries = t->retries,
			 .backoff_ms = 20,
			 .no_descendants = true,
			 .cancel = &j->cancel,
			 .method = t->method,
			 .threads = t->threads,
			 .max_rate = max_rate(a, c),
			 .deadline_ns = t->budget_ms ? nf_now_ns() + t->budget_ms * 1000000 : 0}};
	c->assisted = 0;
	j->record->assisted_bytes = x->assisted;
	nf_record_start(j->record);
	/* A staged move is journaled as it starts, from the mems it widens, so
	 * that a restart after a crash between its writes can finish it. */
	if (j->staged) {
		if (!j->resume)
			j->record->from = c->eff;
		nf_history_save(&a->hist, j->record);
	}
	x->sink = (nf_announce_sink){.stream = a->stream, .record = j->record};
	x->o.progress = nf_announce_progress_unlocked;
	x->o.progress_data = &x->sink;
	nf_announce_record(a, "migration-start", j->record);
}

/* The staged move. What the kernel moved is what the final write swept. */
static void staged_unlocked(const nf_cgroup *cg, run *x)
{
	x->ran_staged = true;
	x->o.no_descendants = false; /* the write changes the whole subtree's mems */
	nf_nodeset old = x->o.from;
	x->r =
	    x->resume ? nf_staged_resume(cg, &x->o, &old, &x->s) : nf_staged_move(cg, &x->o, &x->s);
	x->ns = nf_now_ns() - x->t0;
	/* the new mems now: the events of its own writes, read later, find no change */
	x->has_eff = nf_cgroup_read_mems(cg, NULL, &x->eff) == 0;
}

/* The engine. What the kernel moved is the difference between the last
 * sample outside the target and what is outside it now, before the engine
 * starts. */
static void engine_unlocked(const nf_cgroup *cg, run *x)
{
	nf_residency now;
	const nf_nodeset *to = &x->o.to;
	if (x->r == 0 && x->settle)
		nf_settle(cg, to, x->nnodes, x->o.cancel);
	bool v2 = x->r == 0 && nf_cgroup_numa_stat(cg, &now) == 0;
	if (x->r == 0)
		x->r = nf_migrate(cg, &x->o, &x->m);
	uint64_t now_out = v2	       ? nf_residency_outside(&now, to)
			   : x->r == 0 ? nf_residency_outside(&x->m.before, to)
				       : x->before;
	/* what left the nodes before the engine ran, less what assists moved */
	x->kernel = x->before > now_out + x->assisted ? x->before - now_out - x->assisted : 0;
	x->sampled =
	    x->r == 0 && (v2 ? nf_cgroup_numa_stat(cg, &x->after) : (x->after = x->m.after, true));
	x->ns = nf_now_ns() - x->t0;
}

static void migrate_unlocked(const nf_hierarchy *h, run *x)
{
	nf_cgroup cg = {0};
	x->t0 = nf_now_ns();
	x->r = x->rel ? nf_cgroup_open(h, x->rel, &cg) : -ENOMEM;
	if (x->r == 0 && x->staged)
		staged_unlocked(&cg, x);
	else
		engine_unlocked(&cg, x);
	nf_cgroup_done(&cg);
}

/* What a staged move's writes met: a failure whose putting back failed too,
 * and another writer's mems, which win (followed once the move is off C). */
static void staged_concluded(nf_job *j, run *x)
{
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	nf_cg *c = j->cg;
	unsigned long long id = j->record->id;
	if (x->r < 0 && x->s.written && !x->s.restored && !x->s.raced)
		nf_log_errno(LOG_ERR, x->s.restore_r,
			     "container %s: staged move %llu failed, and putting cpuset.mems back "
			     "to %s failed too: they stay as the move left them",
			     nf_cg_id(c), id, nf_nodeset_format(&x->s.old, b1, sizeof(b1)));
	if (x->s.raced)
		nf_log(LOG_NOTICE,
		       "container %s: cpuset.mems were written to %s by someone else during staged "
		       "move %llu to %s: the move writes no more, and the agent follows them",
		       nf_cg_id(c), nf_nodeset_format(&x->s.raced_mems, b1, sizeof(b1)), id,
		       nf_nodeset_format(&x->o.to, b2, sizeof(b2)));
	if (x->r == 0 && x->s.raced && !nf_nodeset_equal(&x->s.raced_mems, &x->o.to))
		x->s.m.cancelled = true; /* superseded by that write */
	/* Ended elsewhere than its target: a change from what the move's own
	 * writes left (the union), once the move is off C. */
	if (x->has_eff && !c->gone && !nf_nodeset_equal(&x->eff, &x->o.to)) {
		c->refollow = true;
		x->eff = x->s.written ? x->s.widened : c->eff;
	}
}

static void conclude(nf_agent *a, nf_job *j, run *x)
{
	nf_cg *c = j->cg;
	if (x->ran_staged)
		staged_concluded(j, x);
	if (x->ran_staged && x->r == 0) {
		j->record->staged = true;
		j->record->widen_ms = x->s.widen_ns / 1000000;
		j->record->move_ms = x->s.move_ns / 1000000;
		j->record->narrow_ms = x->s.narrow_ns / 1000000;
		x->s.m.residual_bytes = x->s.residual_bytes;
	}
	if (x->ran_staged)
		finish(a, j, x->r, &x->s.m, x->s.kernel_bytes, x->ns);
	else
		finish(a, j, x->r, &x->m, x->kernel, x->ns);
	if (x->has_eff && !c->gone)
		c->eff = x->eff;
	if (x->sampled && !c->gone)
		nf_sample_store(a, c, &x->after);
	nf_staged_done(&x->s);
	nf_migration_done(&x->m);
	free(x->rel);
}

static void run_migration_drops_lock(nf_agent *a, nf_job *j)
{
	run x;
	prepare(a, j, &x);
	nf_agent_unlock(a);
	migrate_unlocked(&a->h, &x);
	nf_agent_lock(a);
	conclude(a, j, &x);
}

static void run_assist_drops_lock(nf_agent *a, nf_job *j)
{
	nf_assist_run x;
	nf_assist_prepare(a, j, max_rate(a, j->cg), &x);
	nf_agent_unlock(a);
	nf_assist_move_unlocked(&a->h, &x);
	nf_agent_lock(a);
	nf_assist_conclude(a, j->cg, &x);
}

/* The journal past its bound: its newest half is written aside, synced and
 * renamed over with the lock dropped (history.c). */
static void compact_journal_drops_lock(nf_agent *a)
{
	nf_journal_compaction k;
	if (nf_history_compact_begin(&a->hist, &k) < 0)
		return;
	nf_agent_unlock(a);
	int r = nf_journal_compact_write(&k);
	nf_agent_lock(a);
	nf_history_compact_end(&a->hist, &k, r);
}

static void run_drops_lock(nf_agent *a, nf_job *j)
{
	nf_cg *c = j->cg;
	c->pending = NULL;
	c->running = j;
	if (j->assist)
		run_assist_drops_lock(a, j);
	else
		run_migration_drops_lock(a, j);
	c->running = NULL;
	nf_job_free(j);
	if (c->refollow && !c->gone) {
		c->refollow = false;
		nf_follow_mems(a, c, NF_TRIG_INOTIFY, false);
	}
	if (c->pending && !c->pending->queued)
		nf_job_enqueue(a, c->pending);
	if (c->gone)
		nf_cg_release(c);
}

void *nf_job_worker(void *userdata)
{
	nf_agent *a = userdata;
	nf_agent_lock(a);
	while (!a->stopping) {
		nf_job *j = a->head;
		if (nf_history_compaction_due(&a->hist)) {
			compact_journal_drops_lock(a);
			continue;
		}
		if (!j) {
			nf_agent_hold_ends(a);
			pthread_cond_wait(&a->work, &a->lock);
			nf_agent_hold_begins(a, __func__);
			continue;
		}
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		j->queued = false;
		run_drops_lock(a, j);
	}
	nf_agent_unlock(a);
	return NULL;
}
