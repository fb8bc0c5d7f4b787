#include "agent.h"
#include "docker.h"
#include "history.h"
#include "../lib/engine.h"
#include "../lib/journal.h"
#include "../lib/log.h"
#include "../lib/settle.h"
#include "../lib/staged.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>

const double nf_duration_bounds[NF_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5,
							1,    2.5,  5,	 10,   30};

#define WD_BUCKETS 4096
/* cpuset.mems is acted on at IN_CLOSE_WRITE, when the writer is done: a
 * writer's O_TRUNC open raises IN_MODIFY before its write lands, and on v2 the
 * write itself returns only once the kernel's migration is over. */
#define WATCH_MASK                                                                                 \
	(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |        \
	 IN_ONLYDIR)
/* How long an assist waits for the write it saw begin to change the effective
 * mems (the writer may queue behind another on the cpuset lock); the close of
 * the write ends the wait sooner. */
#define ASSIST_WAIT_MS 2000

typedef struct nf_job nf_job;

/* One cgroup directory; a container when it has tasks (or a registration). */
typedef struct nf_cg {
	struct nf_cg *parent, *child, *next; /* the directory tree */
	struct nf_cg *wd_next;		     /* hash chain by watch descriptor */
	int wd;
	char *rel;
	nf_identity ident;
	size_t tasks;
	nf_nodeset mems, eff;
	uint64_t *anon, *file; /* bytes per node at the last sample (containers only) */
	uint64_t residual;     /* left outside by the last migration */
	uint64_t assisted;     /* moved by assists since the last migration started */
	uint64_t *pre;	       /* bytes per node when a write began (v2), or NULL */
	uint64_t v1_sig;       /* v1: what the last sample's numa_stat and tasks were */
	uint64_t sampled_ns;   /* when (nf_now_ns) */
	bool assist_armed;     /* an assist was asked for the write under way */
	char *name;	       /* a docker container's name, from dockerd */
	enum { NAME_UNASKED, NAME_ASKED, NAME_DONE } name_state;
	bool drifted;
	bool gone; /* removed while a worker still holds it */
	nf_registration *reg;
	nf_record *last; /* the last migration */
	nf_job *running, *pending;
} nf_cg;

struct nf_job {
	nf_job *next; /* in the queue */
	nf_cg *cg;
	nf_trigger trigger;
	nf_nodeset from, to;
	bool has_from, queued;
	bool staged; /* a staged move to TO: it writes cpuset.mems itself */
	bool assist; /* an assist of the kernel's migration from FROM: no record */
	nf_record *record;
	_Atomic bool cancel;
};

struct nf_agent {
	pthread_mutex_t lock;
	pthread_cond_t work;
	nf_hierarchy h;
	nf_cg *top; /* the scan root: the hierarchy's root or --cgroup-root */
	nf_cg **wd_hash;
	size_t wd_buckets, n_cgs;
	int inotify_fd;
	unsigned nnodes; /* node ids below this */
	nf_agent_tuning tuning;
	bool rescan; /* events were lost: the next reconcile lists directories again */

	pthread_t *threads;
	unsigned n_threads;
	nf_job *head, *tail;
	bool stopping;

	nf_journal journal;
	bool journal_ok;      /* opened: history is meant to survive a restart */
	bool journal_failing; /* the last append failed (a full disk?) */
	nf_history hist;
	uint64_t next_id;
	uint64_t started_ns;
	nf_agent_stats stats; /* its counters */
	nf_docker *docker;    /* names docker containers; NULL when off */
	void (*on_done)(const nf_container *c, void *userdata);
	void *on_done_data;
};

static void job_free(nf_job *j)
{
	nf_record_unref(j->record);
	free(j);
}

/* ---- the tree of cgroup directories ---- */

static void cg_path(const nf_agent *a, const nf_cg *c, char buf[PATH_MAX])
{
	snprintf(buf, PATH_MAX, "%s%s", a->h.mount, strcmp(c->rel, "/") ? c->rel : "");
}

/* An nf_cgroup view of C for the cgroup layer; PATH is its storage. */
static nf_cgroup as_cgroup(const nf_agent *a, const nf_cg *c, char path[PATH_MAX])
{
	cg_path(a, c, path);
	return (nf_cgroup){.h = &a->h, .path = path, .rel = c->rel};
}

static bool is_container(const nf_cg *c)
{
	return !c->gone && !c->ident.skip && (c->tasks > 0 || c->reg) && strcmp(c->rel, "/") != 0;
}

static const char *cg_id(const nf_cg *c)
{
	return c->reg ? c->reg->id : c->ident.id;
}

static bool opted_out(const nf_cg *c)
{
	return c->reg && c->reg->opted_out;
}

/* A staged move of C is queued or running: it writes C's mems itself and ends
 * at its own target, so nothing else is asked of C meanwhile. */
static bool staging(const nf_cg *c)
{
	return (c->running && c->running->staged) || (c->pending && c->pending->staged);
}

static nf_cg_state cg_state(const nf_cg *c)
{
	return nf_decide_state(c->running || c->pending, opted_out(c), c->drifted, c->last);
}

static void wd_link(nf_agent *a, nf_cg *c)
{
	nf_cg **b = &a->wd_hash[(unsigned)c->wd % a->wd_buckets];
	c->wd_next = *b;
	*b = c;
}

static void wd_unlink(nf_agent *a, nf_cg *c)
{
	if (c->wd < 0)
		return;
	for (nf_cg **p = &a->wd_hash[(unsigned)c->wd % a->wd_buckets]; *p; p = &(*p)->wd_next)
		if (*p == c) {
			*p = c->wd_next;
			break;
		}
}

static nf_cg *wd_find(const nf_agent *a, int wd)
{
	for (nf_cg *c = a->wd_hash[(unsigned)wd % a->wd_buckets]; c; c = c->wd_next)
		if (c->wd == wd)
			return c;
	return NULL;
}

void nf_registration_free(nf_registration *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->name);
	free(r->pod_uid);
	free(r->pod_name);
	free(r->pod_namespace);
	free(r->bundle);
	free(r->status);
	json_object_put(r->annotations);
	free(r);
}

static void cg_free(nf_cg *c)
{
	free(c->rel);
	free(c->anon);
	free(c->file);
	free(c->pre);
	free(c->name);
	nf_registration_free(c->reg);
	nf_record_unref(c->last);
	free(c);
}

static nf_cg *cg_new(const char *rel)
{
	nf_cg *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->wd = -1;
	c->rel = strdup(rel);
	if (!c->rel || nf_identify(rel, &c->ident) < 0) {
		free(c->rel);
		free(c);
		return NULL;
	}
	return c;
}

static void watch(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	cg_path(a, c, path);
	c->wd = inotify_add_watch(a->inotify_fd, path, WATCH_MASK);
	if (c->wd < 0) {
		/* ENOSPC: fs.inotify.max_user_watches; the reconcile still covers it. */
		if (a->stats.scan_errors++ == 0)
			nf_log(LOG_WARNING, "cannot watch '%s': %m (the reconcile still covers it)",
			       path);
		return;
	}
	wd_link(a, c);
}

static nf_cg *child_named(nf_cg *parent, const char *name)
{
	size_t plen = strcmp(parent->rel, "/") ? strlen(parent->rel) : 0;
	for (nf_cg *c = parent->child; c; c = c->next)
		if (strcmp(c->rel + plen + 1, name) == 0)
			return c;
	return NULL;
}

/* ---- samples ---- */

/* A docker container's name, asked of dockerd once (again at its next
 * sample while dockerd does not answer); a registration's name comes first. */
static void ask_name(nf_agent *a, nf_cg *c)
{
	if (a->docker && c->name_state == NAME_UNASKED && !c->reg && is_container(c) &&
	    strcmp(c->ident.runtime, "docker") == 0 && nf_docker_ask(a->docker, c->ident.id))
		c->name_state = NAME_ASKED;
}

static nf_cg *find_docker(nf_cg *c, const char *id)
{
	if (strcmp(c->ident.runtime, "docker") == 0 && strcmp(c->ident.id, id) == 0)
		return c;
	nf_cg *f = NULL;
	for (nf_cg *k = c->child; k && !f; k = k->next)
		f = find_docker(k, id);
	return f;
}

/* A lookup's end (nf_docker_fn), on its thread. */
static void named(void *userdata, const char *id, const char *name, bool retry)
{
	nf_agent *a = userdata;
	pthread_mutex_lock(&a->lock);
	nf_cg *c = a->top ? find_docker(a->top, id) : NULL;
	if (c && c->name_state == NAME_ASKED) {
		c->name_state = name || !retry ? NAME_DONE : NAME_UNASKED;
		if (name && (c->name = strdup(name)))
			nf_log(LOG_DEBUG, "container %s: docker calls it %s", cg_id(c), name);
	}
	pthread_mutex_unlock(&a->lock);
}

/* Bytes of the last sample on nodes outside SET (anonymous only, or all). */
static uint64_t cg_outside(const nf_agent *a, const nf_cg *c, const nf_nodeset *set, bool anon_only)
{
	uint64_t sum = 0;
	for (unsigned n = 0; c->anon && n < a->nnodes; n++)
		if (!nf_nodeset_has(set, n))
			sum += c->anon[n] + (anon_only ? 0 : c->file[n]);
	return sum;
}

static void store_residency(nf_agent *a, nf_cg *c, const nf_residency *r)
{
	if (!c->anon)
		c->anon = calloc(a->nnodes, sizeof(*c->anon));
	if (!c->file)
		c->file = calloc(a->nnodes, sizeof(*c->file));
	for (unsigned n = 0; c->anon && c->file && n < a->nnodes; n++) {
		c->anon[n] = r->anon[n];
		c->file[n] = r->file[n];
	}
}

/* FNV-1a of v1's memory.numa_stat rows and of the task list: what a v1
 * sample reads cheaply to know whether numa_maps can have changed. */
static uint64_t v1_signature(const nf_agent *a, const nf_residency *st, const pid_t *pids, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);
	const uint64_t *rows[] = {st->anon, st->file};
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < a->nnodes; i++)
			h = (h ^ rows[k][i]) * UINT64_C(1099511628211);
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint64_t)pids[i]) * UINT64_C(1099511628211);
	return h;
}

/* Tasks and, for a container, where its memory is: memory.numa_stat on v2,
 * the tasks' numa_maps on v1 (as the engine counts it), re-read only when the
 * memory cgroup's numa_stat or the tasks changed (a page-table walk of every
 * process each reconcile was most of an idle agent's CPU). */
static void sample(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	nf_cgroup cg = as_cgroup(a, c, path);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	nf_residency res;
	nf_residency_source src;

	c->tasks = 0;
	c->sampled_ns = nf_now_ns();
	if (strcmp(c->rel, "/") != 0 && nf_cgroup_tasks(&cg, false, &pids, &n) == 0)
		c->tasks = n;
	if (!is_container(c)) {
		free(c->anon), free(c->file);
		c->anon = c->file = NULL;
		return;
	}
	ask_name(a, c);
	if (a->h.version == NF_CG_V2) {
		if (nf_cgroup_residency(&cg, pids, n, &res, &src) == 0)
			store_residency(a, c, &res);
		return;
	}
	nf_residency st;
	uint64_t sig =
	    n && nf_cgroup_v1_stat(&cg, pids[0], &st) == 0 ? v1_signature(a, &st, pids, n) : 0;
	if (sig && c->anon && sig == c->v1_sig)
		return;
	if (nf_tasks_residency(pids, n, &res) == 0) {
		store_residency(a, c, &res);
		c->v1_sig = sig;
	}
}

/* ---- migration requests and workers ---- */

/* The nodes the container's memory was on at the last sample, outside TO. */
static nf_nodeset sampled_from(const nf_agent *a, const nf_cg *c, const nf_nodeset *to)
{
	nf_nodeset from = {0};
	for (unsigned n = 0; c->anon && n < a->nnodes; n++)
		if (c->anon[n] + c->file[n] && !nf_nodeset_has(to, n))
			nf_nodeset_set(&from, n);
	return from;
}

static void enqueue(nf_agent *a, nf_job *j)
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

/* Appends REC as it is now; a failure is counted and leaves REC unsaved. */
static int append(nf_agent *a, nf_record *rec)
{
	json_object *o = nf_record_json(rec);
	int r = !o ? -ENOMEM
		   : nf_journal_append(&a->journal, json_object_to_json_string_ext(
							o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	rec->unsaved = r < 0;
	if (r < 0)
		a->stats.history_write_errors++;
	return r;
}

/* Appends REC as it is now. A failure (a full disk) costs persistence, not
 * the migration: it is said once and counted. It is over once the journal has
 * taken again, oldest first, every record whose state it missed meanwhile: a
 * short line can fit where a long one did not, and a restart would otherwise
 * replay a migration that ended meanwhile as cut short. */
static void journal(nf_agent *a, nf_record *rec)
{
	nf_record *o;
	int r = 0;
	if (!a->journal_ok)
		return;
	bool done = false;
	rec->unsaved = true;
	for (size_t i = a->hist.len; a->journal_failing && r == 0 && i-- > 0;)
		if ((o = nf_history_newest(&a->hist, i))->unsaved) { /* REC in its place */
			r = append(a, o);
			done |= o == rec;
		}
	if (r == 0 && !done)
		r = append(a, rec);
	if (r < 0) {
		if (!a->journal_failing)
			nf_log_errno(LOG_ERR, r,
				     "history journal: appending migration %llu (history is not "
				     "being written; migrations go on)",
				     (unsigned long long)rec->id);
	} else if (a->journal_failing) {
		nf_log(LOG_NOTICE, "history journal: writing again");
	}
	a->journal_failing = r < 0;
}

/* Takes C's queued job off the queue and frees it. */
static void drop_pending(nf_agent *a, nf_cg *c)
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
	job_free(j);
}

static nf_job *job_new(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from)
{
	nf_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	*j = (nf_job){.cg = c, .trigger = t, .to = c->eff, .has_from = from != NULL};
	if (from)
		j->from = *from;
	nf_nodeset shown = from ? *from : sampled_from(a, c, &c->eff);
	j->record = nf_record_new(a->next_id, cg_id(c), c->rel, t, &shown, &c->eff);
	if (!j->record)
		return free(j), NULL;
	a->next_id++;
	return j;
}

/* A migration of C to its effective mems; its record, or NULL (opted out, or
 * out of memory). FROM, when the mems changed, is what they were: the engine
 * keeps the kernel's relative node mapping. */
static nf_record *request(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from)
{
	nf_job *j;
	if (c->pending && c->pending->assist)
		drop_pending(a, c);
	switch (nf_decide_request(t, opted_out(c), staging(c), c->pending, c->running)) {
	case NF_REQ_SKIP:
		return NULL;
	case NF_REQ_RETARGET:
		c->pending->to = c->pending->record->to = c->eff;
		return c->pending->record;
	case NF_REQ_SUPERSEDE:
	case NF_REQ_QUEUE:
		break;
	}
	if (!(j = job_new(a, c, t, from)))
		return NULL;
	nf_history_push(&a->hist, j->record);
	/* Journaled as handed out (the API returns its id at once): a crash before
	 * it ends must not let the next start hand the id out again. */
	journal(a, j->record);
	c->pending = j;
	if (c->running) {
		c->running->cancel = true;
		if (!c->running->assist)
			nf_log(LOG_INFO,
			       "container %s: mems changed during a migration; superseding it",
			       cg_id(c));
	} else {
		enqueue(a, j);
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

static nf_container view(const nf_agent *a, const nf_cg *c);

/* With the lock held: the record, the metrics, the journal, the container. */
static void finish(nf_agent *a, nf_job *j, int r, const nf_migration *m, uint64_t kernel,
		   uint64_t ns)
{
	nf_record *rec = j->record;
	if (nf_record_finish(rec, r, m, kernel, ns) < 0)
		nf_log(LOG_WARNING, "migration %llu: out of memory for its error messages",
		       (unsigned long long)rec->id);
	count(a, rec);
	journal(a, rec);
	nf_log(rec->result == NF_RES_OK ? LOG_INFO : LOG_WARNING,
	       "container %s: migration %llu %s: moved %.1f MiB (kernel %.1f MiB), %.1f MiB left, "
	       "%llu tasks, %llu ms",
	       cg_id(j->cg), (unsigned long long)rec->id, nf_result_name(rec->result),
	       rec->moved_bytes / 1048576.0, kernel / 1048576.0, rec->residual_bytes / 1048576.0,
	       (unsigned long long)rec->tasks, (unsigned long long)rec->duration_ms);
	nf_record_unref(j->cg->last);
	j->cg->last = nf_record_ref(rec);
	/* What a deadline left is not stuck: the next reconcile takes it as drift. */
	j->cg->residual = m->deadline_hit ? 0 : rec->residual_bytes;
	j->cg->drifted = false;
	if (a->on_done) { /* Kubernetes events */
		nf_container v = view(a, j->cg);
		a->on_done(&v, a->on_done_data);
	}
}

/* Bytes per second C's migrations may move: its annotation, else the agent's. */
static uint64_t max_rate(const nf_agent *a, const nf_cg *c)
{
	return c->reg && c->reg->max_rate ? c->reg->max_rate : a->tuning.max_rate;
}

/* The staged move of J, called with the lock dropped; returns with it held.
 * What the kernel moved is what the final write swept. */
static void run_staged(nf_agent *a, nf_job *j, const nf_cgroup *cg, nf_migrate_opts *o, uint64_t t0)
{
	nf_staged s = {0};
	o->no_descendants = false; /* the write changes the whole subtree's mems */
	int r = nf_staged_move(cg, o, &s);
	uint64_t ns = nf_now_ns() - t0;
	pthread_mutex_lock(&a->lock);
	if (r == 0) {
		j->record->staged = true;
		j->record->widen_ms = s.widen_ns / 1000000;
		j->record->move_ms = s.move_ns / 1000000;
		j->record->narrow_ms = s.narrow_ns / 1000000;
		s.m.residual_bytes = s.residual_bytes;
	}
	finish(a, j, r, &s.m, s.kernel_bytes, ns);
	/* the new mems now: the events of its own writes, read later, find no change */
	if (!j->cg->gone)
		nf_cgroup_read_mems(cg, NULL, &j->cg->eff);
	nf_staged_done(&s);
}

/* Runs J with the lock dropped around the engine. What the kernel moved is the
 * difference between the last sample outside the target and what is outside
 * it now, before the engine starts. */
static void run_job(nf_agent *a, nf_job *j)
{
	nf_cg *c = j->cg;
	char *rel = strdup(c->rel);
	/* what was outside when the write began: a sample taken since may have
	 * seen what the assist moved */
	uint64_t before = c->pre ? 0 : cg_outside(a, c, &j->to, false), assisted = c->assisted;
	for (unsigned n = 0; c->pre && n < a->nnodes; n++)
		before += nf_nodeset_has(&j->to, n) ? 0 : c->pre[n];
	free(c->pre);
	c->pre = NULL;
	const nf_agent_tuning *t = &a->tuning;
	nf_migrate_opts o = {.to = j->to,
			     .from = j->from,
			     .has_from = j->has_from,
			     .retries = t->retries,
			     .backoff_ms = 20,
			     .no_descendants = true,
			     .cancel = &j->cancel,
			     .method = t->method,
			     .threads = t->threads,
			     .max_rate = max_rate(a, c),
			     .deadline_ns =
				 t->budget_ms ? nf_now_ns() + t->budget_ms * 1000000 : 0};
	nf_migration m = {0};
	nf_residency now, after;
	nf_cgroup cg = {0};
	c->assisted = 0;
	j->record->assisted_bytes = assisted;
	nf_record_start(j->record);
	pthread_mutex_unlock(&a->lock);

	uint64_t t0 = nf_now_ns(), kernel = 0;
	int r = rel ? nf_cgroup_open(&a->h, rel, &cg) : -ENOMEM;
	if (r == 0 && j->staged) {
		run_staged(a, j, &cg, &o, t0);
		nf_cgroup_done(&cg);
		free(rel);
		return;
	}
	if (r == 0 && j->has_from)
		nf_settle(&cg, &j->to, a->nnodes, &j->cancel);
	bool v2 = r == 0 && nf_cgroup_numa_stat(&cg, &now);
	if (r == 0)
		r = nf_migrate(&cg, &o, &m);
	uint64_t now_out = v2	    ? nf_residency_outside(&now, &j->to)
			   : r == 0 ? nf_residency_outside(&m.before, &j->to)
				    : before;
	/* what left the nodes before the engine ran, less what assists moved */
	kernel = before > now_out + assisted ? before - now_out - assisted : 0;
	bool sampled = r == 0 && (v2 ? nf_cgroup_numa_stat(&cg, &after) : (after = m.after, true));
	uint64_t ns = nf_now_ns() - t0;
	nf_cgroup_done(&cg);
	free(rel);

	pthread_mutex_lock(&a->lock);
	finish(a, j, r, &m, kernel, ns);
	if (sampled && !c->gone)
		store_residency(a, c, &after);
	nf_migration_done(&m);
}

/* An assist (J->assist), with the lock dropped around it. Someone opened C's
 * cpuset.mems, or an ancestor's, to write it (IN_MODIFY, before the kernel
 * moves anything); on v2 the kernel migrates inside that write while the
 * writer waits. Once C's effective mems change, nf_assist() moves the same
 * pages beside the kernel, so the kernel finds less to do. The agent's
 * migration at the close of the write (the record) verifies and takes what is
 * left. */
static void run_assist(nf_agent *a, nf_job *j)
{
	nf_cg *c = j->cg;
	char *rel = strdup(c->rel);
	nf_migrate_opts o = {.from = j->from,
			     .has_from = true,
			     .no_descendants = true,
			     .cancel = &j->cancel,
			     .threads = a->tuning.threads,
			     .max_rate = max_rate(a, c)};
	nf_move_result m = {0};
	nf_cgroup cg = {0};
	bool changed = false;
	pthread_mutex_unlock(&a->lock);

	uint64_t t0 = nf_now_ns();
	int r = rel ? nf_cgroup_open(&a->h, rel, &cg) : -ENOMEM;
	while (r == 0 && !j->cancel && nf_now_ns() - t0 < ASSIST_WAIT_MS * UINT64_C(1000000)) {
		changed = nf_cgroup_read_mems(&cg, NULL, &o.to) == 0 && !nf_nodeset_empty(&o.to) &&
			  !nf_nodeset_equal(&o.to, &o.from);
		if (changed)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	}
	uint64_t t1 = nf_now_ns();
	if (changed)
		r = nf_assist(&cg, &o, &m);
	nf_cgroup_done(&cg);
	free(rel);

	pthread_mutex_lock(&a->lock);
	if (changed && r == 0) {
		char to[NF_NODESET_STRLEN];
		c->assisted += m.moved_bytes;
		a->stats.assists += m.moved_bytes > 0;
		a->stats.assist_total += m.moved_bytes;
		nf_log(
		    m.moved_bytes ? LOG_INFO : LOG_DEBUG,
		    "container %s: assisted the kernel's migration to %s: moved %.1f MiB in %llu "
		    "ms, %llu ms after the write began%s",
		    cg_id(c), nf_nodeset_format(&o.to, to, sizeof(to)), m.moved_bytes / 1048576.0,
		    (unsigned long long)(m.duration_ns / 1000000),
		    (unsigned long long)((t1 - t0) / 1000000),
		    m.cancelled ? " (stopped: the write is over)" : "");
	} else if (r < 0) {
		nf_log_errno(LOG_DEBUG, r, "container %s: assist", cg_id(c));
	}
}

static void cg_release(nf_cg *c);

static void *worker(void *userdata)
{
	nf_agent *a = userdata;
	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		nf_job *j = a->head;
		if (!j) {
			pthread_cond_wait(&a->work, &a->lock);
			continue;
		}
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		j->queued = false;
		nf_cg *c = j->cg;
		c->pending = NULL;
		c->running = j;
		if (j->assist)
			run_assist(a, j);
		else
			run_job(a, j);
		c->running = NULL;
		job_free(j);
		if (c->pending && !c->pending->queued)
			enqueue(a, c->pending);
		if (c->gone)
			cg_release(c);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- discovery and events ---- */

static bool reconcile_raced(const nf_cg *c)
{
	const nf_job *j = c->running && !c->running->assist ? c->running : NULL;
	return nf_decide_raced(j ? &j->trigger : NULL, c->last);
}

/* Whether C's tasks are all runc's init (named "runc:[2:INIT]" and so on)
 * still: runc narrows a new container's mems then, and the exec that follows
 * discards the memory the kernel moved. */
static bool runc_init_only(const nf_agent *a, const nf_cg *c)
{
	char path[PATH_MAX];
	nf_cgroup cg = as_cgroup(a, c, path);
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

/* Reads C's mems; a change of the effective ones on a container asks for a
 * migration. The reconcile reads only the effective ones: a write to
 * cpuset.mems itself is an event. */
static void check_mems(nf_agent *a, nf_cg *c, nf_trigger t, bool eff_only)
{
	char path[PATH_MAX];
	nf_cgroup cg = as_cgroup(a, c, path);
	nf_nodeset old = c->eff;
	if (nf_cgroup_read_mems(&cg, eff_only && c->wd >= 0 ? NULL : &c->mems, &c->eff) < 0)
		return;
	/* a staged move writes the mems itself: its own writes ask for nothing */
	if (staging(c))
		return;
	if (is_container(c) && !nf_nodeset_equal(&old, &c->eff) && !nf_nodeset_empty(&old) &&
	    !nf_nodeset_empty(&c->eff)) {
		char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
		bool idle =
		    (!c->running || c->running->assist) && (!c->pending || c->pending->assist);
		/* No record that says nothing a user would care about: a widening
		 * of a container with nothing outside the new set (the kernel
		 * moves nothing, nor will the agent); or a container still
		 * starting under runc. A narrowing always has one: on v2 the
		 * kernel moved inside the write, and the last sample, taken
		 * before the container's memory grew maybe, cannot say it was
		 * nothing. */
		nf_nodeset lost;
		nf_nodeset_minus(&old, &c->eff, &lost);
		const char *why =
		    !idle ? NULL
		    : nf_nodeset_empty(&lost) && c->anon && cg_outside(a, c, &c->eff, false) == 0
			? "a widening, with none of its memory outside"
		    : runc_init_only(a, c) ? "its tasks are still runc's init"
					   : NULL;
		nf_log(why ? LOG_DEBUG : LOG_INFO, "container %s: effective mems %s -> %s (%s)%s%s",
		       cg_id(c), nf_nodeset_format(&old, b1, sizeof(b1)),
		       nf_nodeset_format(&c->eff, b2, sizeof(b2)), nf_trigger_name(t),
		       why ? ": nothing to move: " : "", why ? why : "");
		if (!why)
			request(a, c, t, &old);
	} else if (t == NF_TRIG_INOTIFY && is_container(c) && reconcile_raced(c)) {
		nf_log(LOG_INFO,
		       "container %s: the write of its mems is over, and a reconcile's migration "
		       "may have raced the kernel's; migrating again",
		       cg_id(c));
		request(a, c, t, c->running && c->running->has_from ? &c->running->from : NULL);
	}
}

static void check_subtree(nf_agent *a, nf_cg *c, nf_trigger t)
{
	check_mems(a, c, t, false);
	for (nf_cg *k = c->child; k; k = k->next)
		check_subtree(a, k, t);
}

static void scan(nf_agent *a, nf_cg *c);

static nf_cg *add_child(nf_agent *a, nf_cg *parent, const char *name)
{
	nf_cg *c = child_named(parent, name);
	if (c)
		return c;
	_cleanup_free_ char *rel = NULL;
	if (asprintf(&rel, "%s/%s", strcmp(parent->rel, "/") ? parent->rel : "", name) < 0 ||
	    !(c = cg_new(rel)))
		return NULL;
	c->parent = parent;
	c->next = parent->child;
	parent->child = c;
	a->n_cgs++;
	scan(a, c);
	return c;
}

/* Watches C before listing it, so a child is either listed or announced.
 * Not libcgroup's cgroup_walk_tree: its fts stats and returns every file of
 * every cgroup; 10,000 cgroups took 761 ms against 143 on the v1 host, 4.7 s
 * against 0.46 in the v2 VM (tests/bench/cgroup-scan.sh). */
static void scan(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	watch(a, c);
	check_mems(a, c, NF_TRIG_RECONCILE, false);
	sample(a, c);
	cg_path(a, c, path);
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			add_child(a, c, e->d_name);
}

static void cg_release(nf_cg *c)
{
	if (!c->running && !c->pending)
		cg_free(c);
}

/* Unlinks C and its subtree; a worker that holds one frees it when done. */
static void remove_subtree(nf_agent *a, nf_cg *c)
{
	while (c->child)
		remove_subtree(a, c->child);
	for (nf_cg **p = &c->parent->child; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	wd_unlink(a, c);
	if (c->wd >= 0)
		inotify_rm_watch(a->inotify_fd, c->wd);
	a->n_cgs--;
	c->gone = true;
	if (c->pending)
		c->pending->cancel = true;
	if (c->running)
		c->running->cancel = true;
	cg_release(c);
}

static void reconcile(nf_agent *a);

/* Bytes per node at C's last sample (anon and file), or NULL. */
static uint64_t *node_totals(const nf_agent *a, const nf_cg *c)
{
	uint64_t *t = c->anon ? calloc(a->nnodes, sizeof(*t)) : NULL;
	for (unsigned n = 0; t && n < a->nnodes; n++)
		t[n] = c->anon[n] + c->file[n];
	return t;
}

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

/* A write to C's cpuset.mems begins (v2: the writer's O_TRUNC open, before
 * the kernel moves anything). Each idle container below is sampled now, while
 * its effective mems are still the old ones: the write's record counts what
 * the kernel moved from that picture, not from a sample maybe a reconcile old
 * (memory grows with no event). A write that lands before or during the
 * sample has the picture put back as unmove() can. With assist on, a
 * container with enough memory for the mover gets an assist. */
static void write_begins(nf_agent *a, nf_cg *c)
{
	if (is_container(c) && !c->assist_armed && !c->running && !c->pending) {
		char path[PATH_MAX];
		nf_cgroup cg = as_cgroup(a, c, path);
		nf_nodeset eff;
		_cleanup_free_ uint64_t *last = node_totals(a, c);
		bool before =
		    nf_cgroup_read_mems(&cg, NULL, &eff) == 0 && nf_nodeset_equal(&eff, &c->eff);
		if (before || !c->pre) { /* else this write's picture is taken */
			sample(a, c);
			bool moving = nf_cgroup_read_mems(&cg, NULL, &eff) == 0 &&
				      !nf_nodeset_equal(&eff, &c->eff);
			free(c->pre);
			c->pre = node_totals(a, c);
			if (c->pre && moving)
				unmove(a, c, c->pre, last, &eff);
		}
		uint64_t anon = 0;
		for (unsigned n = 0; c->anon && n < a->nnodes; n++)
			anon += c->anon[n];
		nf_job *j = a->tuning.assist && !opted_out(c) && anon >= NF_GENTLE_MIN_BYTES
				? calloc(1, sizeof(*j))
				: NULL;
		if (j) {
			*j = (nf_job){
			    .cg = c, .trigger = NF_TRIG_INOTIFY, .from = c->eff, .assist = true};
			c->assist_armed = true;
			c->pending = j;
			enqueue(a, j);
		}
	}
	for (nf_cg *k = c->child; k; k = k->next)
		write_begins(a, k);
}

/* The write is over: its assists stop (the kernel is done). */
static void disarm_subtree(nf_agent *a, nf_cg *c)
{
	c->assist_armed = false;
	if (c->pending && c->pending->assist)
		drop_pending(a, c);
	if (!c->pending) { /* no migration of the write to give the snapshot to */
		free(c->pre);
		c->pre = NULL;
	}
	if (c->running && c->running->assist)
		c->running->cancel = true;
	for (nf_cg *k = c->child; k; k = k->next)
		disarm_subtree(a, k);
}

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

/* EV, with the events read after it in [NEXT, END). */
static void handle_event(nf_agent *a, const struct inotify_event *ev, const char *next,
			 const char *end)
{
	a->stats.events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		a->stats.overflows++;
		a->rescan = true;
		nf_log(LOG_WARNING, "inotify queue overflowed; reconciling everything");
		reconcile(a);
		return;
	}
	nf_cg *c = wd_find(a, ev->wd);
	if (!c || !ev->len)
		return;
	if (ev->mask & IN_ISDIR) {
		nf_cg *k = child_named(c, ev->name);
		if (ev->mask & (IN_CREATE | IN_MOVED_TO))
			add_child(a, c, ev->name);
		else if (k)
			remove_subtree(a, k);
	} else if (strcmp(ev->name, "cpuset.mems") == 0) {
		if (ev->mask & IN_CLOSE_WRITE) {
			check_subtree(a, c, NF_TRIG_INOTIFY);
			disarm_subtree(a, c);
		} else if ((ev->mask & IN_MODIFY) && a->h.version == NF_CG_V2 &&
			   !closed_later(ev->wd, next, end)) {
			write_begins(a, c);
		}
	} else if ((ev->mask & IN_MODIFY) && /* a write to cgroup.procs: one sample, not two */
		   (strcmp(ev->name, "cgroup.procs") == 0 || strcmp(ev->name, "tasks") == 0 ||
		    strcmp(ev->name, "cgroup.events") == 0)) {
		sample(a, c);
	}
}

void nf_agent_read_events(nf_agent *a)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(a->inotify_fd, buf, sizeof(buf))) > 0) {
		pthread_mutex_lock(&a->lock);
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			p += sizeof(*ev) + ev->len;
			handle_event(a, ev, p, buf + n);
		}
		pthread_mutex_unlock(&a->lock);
	}
}

/* ---- reconcile ---- */

/* Drift (nf_decide_drift), decided on the last sample. */
static void repair_drift(nf_agent *a, nf_cg *c)
{
	if (!is_container(c) || c->running || c->pending || !c->anon || opted_out(c))
		return;
	uint64_t out = cg_outside(a, c, &c->eff, true);
	if (nf_decide_drift(out, c->residual, nf_nodeset_empty(&c->eff))) {
		c->drifted = true;
		a->stats.drift_repairs++;
		nf_log(LOG_INFO, "container %s: %.1f MiB outside its mems; repairing", cg_id(c),
		       out / 1048576.0);
		request(a, c, NF_TRIG_RECONCILE, NULL);
	}
}

/* Containers only: a cgroup gains processes with a write to cgroup.procs or
 * (v2) a change of cgroup.events, both watched, so the others can wait. With
 * REREAD false (at start, just after the scan read everything) it only
 * decides on drift. */
static void reconcile_subtree(nf_agent *a, nf_cg *c, bool reread)
{
	if (reread && is_container(c)) {
		check_mems(a, c, NF_TRIG_RECONCILE, true);
		sample(a, c);
	}
	repair_drift(a, c);
	for (nf_cg *k = c->child; k; k = k->next)
		reconcile_subtree(a, k, reread);
}

/* Directories the events missed (an overflow, a watch that failed). */
static void rescan_children(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	cg_path(a, c, path);
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *e;
	for (nf_cg *k = c->child, *next; k; k = next) {
		next = k->next;
		cg_path(a, k, path);
		if (access(path, F_OK) < 0)
			remove_subtree(a, k);
	}
	while (d && (e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    !child_named(c, e->d_name))
			add_child(a, c, e->d_name);
	for (nf_cg *k = c->child; k; k = k->next)
		rescan_children(a, k);
}

static void reconcile(nf_agent *a)
{
	a->stats.reconciles++;
	/* Directory listings only when events were lost: an overflow, or a
	 * watch that could not be added (then on every reconcile). */
	if (a->rescan || a->stats.scan_errors)
		rescan_children(a, a->top);
	a->rescan = false;
	reconcile_subtree(a, a->top, true);
}

/* ---- lookups for the API ---- */

static nf_cg *find_in(nf_cg *c, const char *id)
{
	if (is_container(c) && strcmp(cg_id(c), id) == 0)
		return c;
	for (nf_cg *k = c->child; k; k = k->next) {
		nf_cg *f = find_in(k, id);
		if (f)
			return f;
	}
	return NULL;
}

static nf_cg *find_path(nf_agent *a, const char *rel, bool add)
{
	size_t tl = strcmp(a->top->rel, "/") ? strlen(a->top->rel) : 0;
	if (strncmp(rel, a->top->rel, tl) != 0 || (rel[tl] != '/' && rel[tl] != '\0'))
		return NULL;
	nf_cg *c = a->top;
	for (const char *p = rel + tl; c && *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (!n)
			break;
		char name[NAME_MAX + 1];
		if (n > NAME_MAX)
			return NULL;
		memcpy(name, p, n);
		name[n] = '\0';
		nf_cg *k = child_named(c, name);
		c = k ? k : add ? add_child(a, c, name) : NULL;
		p += n;
	}
	return c;
}

/* Container ID: its id, or a cgroup path naming a container. */
static nf_cg *find(nf_agent *a, const char *id)
{
	nf_cg *c = find_in(a->top, id);
	if (!c && id[0] == '/' && (c = find_path(a, id, false)) && !is_container(c))
		c = NULL;
	return c;
}

/* The cgroup of PID in the cpuset hierarchy (tracked on the way if new). */
static int cg_of_pid(nf_agent *a, pid_t pid, nf_cg **ret)
{
	_cleanup_free_ char *rel = NULL;
	int r = nf_pid_cgroup(pid, a->h.version, &rel);
	if (r < 0)
		return r;
	nf_cg *c = find_path(a, rel, true);
	if (!c)
		return strncmp(rel, a->top->rel, strlen(a->top->rel)) ? -EXDEV : -ENOENT;
	*ret = c;
	return 0;
}

static nf_container view(const nf_agent *a, const nf_cg *c)
{
	return (nf_container){
	    .id = cg_id(c),
	    .cgroup = c->rel,
	    .runtime = c->ident.runtime,
	    .name = c->reg && c->reg->name ? c->reg->name : c->name,
	    .pod_uid = c->reg && c->reg->pod_uid ? c->reg->pod_uid : c->ident.pod_uid,
	    .reg = c->reg,
	    .mems = c->mems,
	    .eff = c->eff,
	    .tasks = c->tasks,
	    .nnodes = a->nnodes,
	    .anon = c->anon,
	    .file = c->file,
	    .outside = cg_outside(a, c, &c->eff, false),
	    .state = cg_state(c),
	    .last = c->last,
	};
}

static void each_in(const nf_agent *a, const nf_cg *c, nf_container_fn fn, void *userdata)
{
	if (is_container(c)) {
		nf_container v = view(a, c);
		fn(&v, userdata);
	}
	for (const nf_cg *k = c->child; k; k = k->next)
		each_in(a, k, fn, userdata);
}

static void resample_in(nf_agent *a, nf_cg *c, uint64_t since)
{
	if (is_container(c) && c->sampled_ns < since)
		sample(a, c);
	for (nf_cg *k = c->child; k; k = k->next)
		resample_in(a, k, since);
}

void nf_agent_resample(nf_agent *a, uint64_t max_age_ms)
{
	uint64_t now = nf_now_ns(), age = max_age_ms * 1000000;
	pthread_mutex_lock(&a->lock);
	resample_in(a, a->top, now > age ? now - age : 0);
	pthread_mutex_unlock(&a->lock);
}

void nf_agent_each_container(nf_agent *a, nf_container_fn fn, void *userdata)
{
	pthread_mutex_lock(&a->lock);
	each_in(a, a->top, fn, userdata);
	pthread_mutex_unlock(&a->lock);
}

int nf_agent_container(nf_agent *a, const char *id, nf_container_fn fn, void *userdata)
{
	pthread_mutex_lock(&a->lock);
	nf_cg *c = find(a, id);
	if (c) {
		sample(a, c);
		nf_container v = view(a, c);
		fn(&v, userdata);
	}
	pthread_mutex_unlock(&a->lock);
	return c ? 0 : -ENOENT;
}

/* A record of container C: its id, or its cgroup (an unregistered id). */
static bool record_of(const nf_record *r, const char *id, const char *rel)
{
	return strcmp(r->container, id) == 0 || (rel && strcmp(r->cgroup, rel) == 0);
}

void nf_agent_each_record(nf_agent *a, const char *id, size_t limit, nf_record_fn fn,
			  void *userdata)
{
	pthread_mutex_lock(&a->lock);
	const nf_cg *c = id ? find(a, id) : NULL;
	const char *cid = c ? cg_id(c) : id;
	nf_record *r;
	for (size_t i = 0, n = 0; n < limit && (r = nf_history_newest(&a->hist, i)); i++)
		if (!id || record_of(r, cid, c ? c->rel : NULL)) {
			fn(r, userdata);
			n++;
		}
	pthread_mutex_unlock(&a->lock);
}

int nf_agent_record(nf_agent *a, uint64_t id, nf_record_fn fn, void *userdata)
{
	pthread_mutex_lock(&a->lock);
	const nf_record *r = nf_history_find(&a->hist, id);
	if (r)
		fn(r, userdata);
	pthread_mutex_unlock(&a->lock);
	return r ? 0 : -ENOENT;
}

/* ---- registrations and requests ---- */

/* Drops registration ID wherever it is but in KEEP. */
static void unregister_in(const nf_cg *keep, nf_cg *c, const char *id)
{
	if (c != keep && c->reg && strcmp(c->reg->id, id) == 0) {
		nf_registration_free(c->reg);
		c->reg = NULL;
	}
	for (nf_cg *k = c->child; k; k = k->next)
		unregister_in(keep, k, id);
}

/* Whether another container than C goes by ID without a registration of it
 * (its cgroup's name says ID): a registration that took ID would shadow it. */
static const nf_cg *id_taken(nf_agent *a, const nf_cg *c, const char *id)
{
	const nf_cg *o = find_in(a->top, id);
	return o && o != c && !(o->reg && strcmp(o->reg->id, id) == 0) ? o : NULL;
}

static int registered(nf_agent *a, nf_cg *c, nf_registration *r, char **ret_msg)
{
	const nf_cg *other = id_taken(a, c, r->id);
	nf_reg_action act =
	    nf_decide_registration(r->id, c->reg ? c->reg->id : NULL, strcmp(c->rel, "/") == 0,
				   other != NULL, nf_nodeset_empty(&c->eff));
	if (act != NF_REG_NEW && act != NF_REG_UPDATE) {
		int e = nf_decide_refusal(0, act, r->pid, r->id, c->rel, other ? other->rel : NULL,
					  ret_msg);
		nf_registration_free(r);
		return e;
	}
	bool update = c->reg && strcmp(c->reg->id, r->id) == 0;
	unregister_in(c, a->top, r->id);
	nf_registration_free(c->reg);
	c->reg = r;
	sample(a, c);
	if (nf_decide_drift(cg_outside(a, c, &c->eff, true), c->residual, false))
		request(a, c, NF_TRIG_HOOK, NULL);
	nf_log(LOG_INFO, "container %s: registered (pid %d, cgroup '%s', %s)", r->id, r->pid,
	       c->rel, r->status ? r->status : "no status");
	return update;
}

int nf_agent_register(nf_agent *a, nf_registration *r, nf_container_fn fn, void *userdata,
		      char **ret_msg)
{
	nf_cg *c;
	pthread_mutex_lock(&a->lock);
	int e = cg_of_pid(a, r->pid, &c);
	if (e < 0) {
		e = nf_decide_refusal(e, NF_REG_NEW, r->pid, r->id, NULL, NULL, ret_msg);
		nf_registration_free(r);
	} else if ((e = registered(a, c, r, ret_msg)) >= 0) {
		nf_container v = view(a, c);
		fn(&v, userdata);
	}
	pthread_mutex_unlock(&a->lock);
	return e;
}

int nf_agent_unregister(nf_agent *a, const char *id)
{
	pthread_mutex_lock(&a->lock);
	nf_cg *c = find(a, id);
	int r = !c ? -ENOENT : !c->reg ? -ENODATA : 0;
	if (r == 0) {
		nf_log(LOG_INFO, "container %s: unregistered", c->reg->id);
		nf_registration_free(c->reg);
		c->reg = NULL;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* A staged move of C to TO: queued unless C has a migration under way. */
static int queue_move(nf_agent *a, nf_cg *c, const nf_nodeset *to, nf_record_fn fn, void *userdata,
		      char **ret_msg)
{
	char path[PATH_MAX];
	nf_cgroup cg = as_cgroup(a, c, path);
	int r = c->running || c->pending ? -EBUSY : nf_cgroup_mems_writable(&cg);
	if (r < 0) {
		if (ret_msg &&
		    asprintf(ret_msg, "%s",
			     r == -EBUSY ? "a migration of it is under way; try again"
			     : r == -EROFS
				 ? "its cpuset.mems is on a read-only mount, and the staged "
				   "move writes it: mount /sys/fs/cgroup read-write for the "
				   "agent (the DaemonSet mounts it read-only), or write the "
				   "mems yourself and let the agent follow"
				 : strerror(-r)) < 0)
			*ret_msg = NULL;
		return r;
	}
	nf_nodeset now = c->eff;
	nf_job *j = job_new(a, c, NF_TRIG_MOVE, &now);
	if (!j)
		return -ENOMEM;
	j->to = j->record->to = *to;
	j->staged = true;
	nf_history_push(&a->hist, j->record);
	journal(a, j->record);
	c->pending = j;
	enqueue(a, j);
	fn(j->record, userdata);
	return 0;
}

int nf_agent_move(nf_agent *a, const char *id, const nf_nodeset *to, nf_record_fn fn,
		  void *userdata, char **ret_msg)
{
	pthread_mutex_lock(&a->lock);
	nf_cg *c = find(a, id);
	int r = c ? queue_move(a, c, to, fn, userdata, ret_msg) : -ENOENT;
	pthread_mutex_unlock(&a->lock);
	return r;
}

int nf_agent_migrate_to(nf_agent *a, const char *id, const nf_nodeset *to, nf_trigger t,
			nf_record_fn fn, void *userdata)
{
	nf_nodeset outside;
	nf_job *j = NULL;
	pthread_mutex_lock(&a->lock);
	nf_cg *c = find(a, id);
	if (c)
		nf_nodeset_minus(to, &c->eff, &outside);
	int r = !c			      ? -ENOENT
		: c->running || c->pending    ? -EBUSY
		: !nf_nodeset_empty(&outside) ? -ERANGE
					      : 0;
	if (r == 0) {
		sample(a, c);
		j = job_new(a, c, t, NULL);
		r = j ? 0 : -ENOMEM;
	}
	if (j) { /* the nodes that hold memory outside TO, not outside the mems */
		j->to = j->record->to = *to;
		j->record->from = sampled_from(a, c, to);
		nf_history_push(&a->hist, j->record);
		journal(a, j->record);
		c->pending = j;
		enqueue(a, j);
		fn(j->record, userdata);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

int nf_agent_migrate(nf_agent *a, const char *id, nf_record_fn fn, void *userdata)
{
	const nf_record *rec = NULL;
	pthread_mutex_lock(&a->lock);
	nf_cg *c = find(a, id);
	int r = !c ? -ENOENT : nf_nodeset_empty(&c->eff) ? -ENXIO : staging(c) ? -EBUSY : 0;
	if (r == 0) {
		sample(a, c);
		rec = request(a, c, NF_TRIG_API, NULL);
		r = rec ? 0 : -ENOMEM;
	}
	if (rec)
		fn(rec, userdata);
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* ---- the event loop's side ---- */

int nf_agent_fd(const nf_agent *a)
{
	return a->inotify_fd;
}

void nf_agent_reconcile(nf_agent *a)
{
	pthread_mutex_lock(&a->lock);
	reconcile(a);
	pthread_mutex_unlock(&a->lock);
}

void nf_agent_set_tuning(nf_agent *a, const nf_agent_tuning *t)
{
	pthread_mutex_lock(&a->lock);
	a->tuning = *t;
	pthread_mutex_unlock(&a->lock);
}

static size_t count_containers(const nf_cg *c)
{
	size_t n = is_container(c);
	for (const nf_cg *k = c->child; k; k = k->next)
		n += count_containers(k);
	return n;
}

void nf_agent_stats_get(nf_agent *a, nf_agent_stats *ret)
{
	pthread_mutex_lock(&a->lock);
	*ret = a->stats;
	ret->h = &a->h;
	ret->cgroup_root = a->top->rel;
	ret->uptime_ns = nf_now_ns() - a->started_ns;
	ret->cgroups_watched = a->n_cgs + 1;
	ret->containers = count_containers(a->top);
	for (nf_job *j = a->head; j; j = j->next)
		ret->queued++;
	ret->workers = a->n_threads;
	ret->history_persistent = a->journal_ok && !a->journal_failing;
	pthread_mutex_unlock(&a->lock);
}

/* ---- start and stop ---- */

static void replay(const char *text, void *userdata)
{
	nf_agent *a = userdata;
	json_object *o = json_tokener_parse(text);
	nf_record *r;
	const char *why = "not JSON";
	if (!o || nf_record_parse(o, &r, &why) < 0) {
		nf_log(LOG_WARNING, "history journal: skipping a record: %s", why);
		json_object_put(o);
		return;
	}
	json_object_put(o);
	if (r->id >= a->next_id)
		a->next_id = r->id + 1;
	nf_history_put(&a->hist, r);
	nf_record_unref(r);
}

/* Records that the journal holds as queued or running were cut short by a
 * stop or a crash: they are concluded as such, once. */
static void conclude_interrupted(nf_agent *a)
{
	nf_record *r;
	for (size_t i = 0; (r = nf_history_newest(&a->hist, i)); i++) {
		if (r->state == NF_REC_DONE)
			continue;
		nf_record_abandon(r, "numafollowd stopped before this migration ended");
		journal(a, r);
	}
}

/* Each container's last migration, from the history just replayed. */
static void link_history(nf_agent *a)
{
	nf_record *r;
	for (size_t i = a->hist.len; i-- > 0 && (r = nf_history_newest(&a->hist, i));) {
		nf_cg *c = find_path(a, r->cgroup, false);
		if (c) {
			nf_record_unref(c->last);
			c->last = nf_record_ref(r);
			c->residual = r->residual_bytes;
		}
	}
}

static int open_top(nf_agent *a, const char *root)
{
	_cleanup_free_ char *rel = NULL;
	int r = nf_cgroup_normalize(a->h.mount, root ? root : "/", &rel);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s%s", a->h.mount, strcmp(rel, "/") ? rel : "");
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	a->top = cg_new(rel);
	return a->top ? 0 : -ENOMEM;
}

/* The history journal: what it holds replays now. Its failure costs only
 * persistence, but another agent on the state dir stops this one (-EBUSY):
 * two would move the same containers and write one history. */
static int open_journal(nf_agent *a, const nf_agent_config *cfg)
{
	int r = 0;
	if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST)
		r = -errno;
	else
		r = nf_journal_open(cfg->state_dir, cfg->journal_max, replay, a, &a->journal);
	if (r == -EBUSY)
		return nf_log_errno(LOG_ERR, r, "another numafollowd uses the state dir '%s'",
				    cfg->state_dir);
	if (r < 0)
		nf_log_errno(LOG_ERR, r,
			     "history journal in '%s' (history will not survive a restart)",
			     cfg->state_dir);
	a->journal_ok = r == 0;
	return 0;
}

static int start(nf_agent *a, const nf_agent_config *cfg)
{
	int r;
	if ((r = nf_history_init(&a->hist, cfg->history)) < 0 ||
	    !(a->wd_hash = calloc(a->wd_buckets, sizeof(*a->wd_hash))))
		return nf_log_errno(LOG_ERR, r ? r : -ENOMEM, "starting");
	if ((r = nf_hierarchy_detect(&a->h)) < 0)
		return nf_log_errno(LOG_ERR, r, "no cpuset controller mounted (/proc/mounts)");
	if ((r = open_top(a, cfg->cgroup_root)) < 0)
		return nf_log_errno(LOG_ERR, r, "--cgroup-root '%s'", cfg->cgroup_root);
	if ((r = open_journal(a, cfg)) < 0)
		return r;
	conclude_interrupted(a);
	a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a->inotify_fd < 0)
		return nf_log_errno(LOG_ERR, -errno, "inotify_init1");
	if (cfg->docker_socket && *cfg->docker_socket &&
	    (r = nf_docker_new(cfg->docker_socket, named, a, &a->docker)) < 0)
		return nf_log_errno(LOG_ERR, r, "starting the docker name lookups");
	uint64_t t0 = nf_now_ns();
	pthread_mutex_lock(&a->lock); /* the docker thread's answers take it */
	scan(a, a->top);
	link_history(a);
	reconcile_subtree(a, a->top, false); /* drift from before the agent started */
	pthread_mutex_unlock(&a->lock);
	nf_log(LOG_INFO, "watching %zu cgroups under '%s%s' (%s), scanned in %llu ms", a->n_cgs + 1,
	       a->h.mount, strcmp(a->top->rel, "/") ? a->top->rel : "", nf_hierarchy_name(&a->h),
	       (unsigned long long)((nf_now_ns() - t0) / 1000000));
	if (!(a->threads = calloc(cfg->workers, sizeof(*a->threads))))
		return nf_log_errno(LOG_ERR, -ENOMEM, "starting workers");
	for (unsigned i = 0; i < cfg->workers; i++, a->n_threads++)
		if ((r = pthread_create(&a->threads[i], NULL, worker, a)) != 0)
			return nf_log_errno(LOG_ERR, -r, "starting worker");
	return 0;
}

int nf_agent_new(const nf_agent_config *cfg, nf_agent **ret)
{
	nf_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return nf_log_errno(LOG_ERR, -ENOMEM, "starting");
	a->inotify_fd = -1;
	a->nnodes = numa_max_node() + 1;
	if (a->nnodes > NF_MAX_NODES)
		a->nnodes = NF_MAX_NODES;
	a->tuning = cfg->tuning;
	a->on_done = cfg->on_done;
	a->on_done_data = cfg->on_done_data;
	a->next_id = 1;
	a->wd_buckets = WD_BUCKETS;
	a->started_ns = nf_now_ns();
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	int r = start(a, cfg);
	if (r < 0) {
		nf_agent_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

static void free_tree(nf_cg *c)
{
	while (c->child) {
		nf_cg *k = c->child;
		c->child = k->next;
		free_tree(k);
	}
	cg_free(c);
}

/* Stopping: assists end now (running migrations finish). */
static void cancel_assists(nf_agent *a, nf_cg *c)
{
	if (c && c->running && c->running->assist)
		c->running->cancel = true;
	for (nf_cg *k = c ? c->child : NULL; k; k = k->next)
		cancel_assists(a, k);
}

void nf_agent_free(nf_agent *a)
{
	if (!a)
		return;
	nf_docker_free(a->docker); /* its thread takes the lock */
	pthread_mutex_lock(&a->lock);
	a->docker = NULL;
	a->stopping = true;
	cancel_assists(a, a->top);
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	free(a->threads);
	while (a->head) {
		nf_job *j = a->head;
		a->head = j->next;
		j->cg->pending = NULL;
		if (j->cg->gone)
			cg_free(j->cg);
		job_free(j);
	}
	if (a->top)
		free_tree(a->top);
	nf_history_done(&a->hist);
	free(a->wd_hash);
	if (a->journal_ok)
		nf_journal_close(&a->journal);
	if (a->inotify_fd >= 0)
		close(a->inotify_fd);
	nf_hierarchy_done(&a->h);
	pthread_cond_destroy(&a->work);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
