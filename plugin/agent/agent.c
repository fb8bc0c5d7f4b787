#include "agent.h"
#include "../lib/json.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <limits.h>
#include <numa.h>
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

const char *nf_trigger_name(nf_trigger t)
{
	static const char *const n[] = {"inotify", "reconcile", "hook", "api"};
	return n[t];
}

const char *nf_result_name(nf_result r)
{
	static const char *const n[] = {"ok", "partial", "failed", "superseded"};
	return n[r];
}

static void job_free(nf_job *j)
{
	json_object_put(j->record);
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

bool nf_cg_is_container(const nf_cg *c)
{
	return !c->gone && !c->ident.skip && (c->tasks > 0 || c->reg) && strcmp(c->rel, "/") != 0;
}

const char *nf_cg_id(const nf_cg *c)
{
	return c->reg ? c->reg->id : c->ident.id;
}

const char *nf_cg_state(const nf_cg *c)
{
	if (c->running || c->pending)
		return "migrating";
	if (c->reg && c->reg->opted_out)
		return "opted_out";
	if (c->drifted)
		return "drifted";
	json_object *r;
	if (c->last && json_object_object_get_ex(c->last, "result", &r) &&
	    (strcmp(json_object_get_string(r), "failed") == 0 ||
	     strcmp(json_object_get_string(r), "partial") == 0))
		return "failed";
	return "in_sync";
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
	nf_registration_free(c->reg);
	json_object_put(c->last);
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
		if (a->scan_errors++ == 0)
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

uint64_t nf_cg_outside(const nf_agent *a, const nf_cg *c, const nf_nodeset *set, bool anon_only)
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

/* Tasks and, for a container, where its memory is. */
static void sample(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	nf_cgroup cg = as_cgroup(a, c, path);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	nf_residency res;
	nf_residency_source src;

	c->tasks = 0;
	if (strcmp(c->rel, "/") != 0 && nf_cgroup_tasks(&cg, false, &pids, &n) == 0)
		c->tasks = n;
	if (!nf_cg_is_container(c)) {
		free(c->anon), free(c->file);
		c->anon = c->file = NULL;
		return;
	}
	if (nf_cgroup_residency(&cg, pids, n, &res, &src) == 0)
		store_residency(a, c, &res);
}

/* ---- migration requests and workers ---- */

static void rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void hist_push(nf_agent *a, json_object *rec)
{
	if (a->hist_len == a->hist_cap) {
		json_object_put(a->hist[a->hist_first]);
		a->hist_first = (a->hist_first + 1) % a->hist_cap;
		a->hist_len--;
	}
	a->hist[(a->hist_first + a->hist_len++) % a->hist_cap] = json_object_get(rec);
}

static json_object *record_new(nf_agent *a, nf_cg *c, const nf_job *j)
{
	json_object *o = json_object_new_object();
	nf_nodeset from = j->from;
	if (!j->has_from) /* where the memory was at the last sample */
		for (unsigned n = 0; c->anon && n < a->nnodes; n++)
			if (c->anon[n] + c->file[n] && !nf_nodeset_has(&j->to, n))
				nf_nodeset_set(&from, n);
	json_object_object_add(o, "id", json_object_new_int64(a->next_id++));
	json_object_object_add(o, "container", json_object_new_string(nf_cg_id(c)));
	json_object_object_add(o, "cgroup", json_object_new_string(c->rel));
	json_object_object_add(o, "trigger", json_object_new_string(nf_trigger_name(j->trigger)));
	json_object_object_add(o, "from", nf_json_nodeset(&from));
	json_object_object_add(o, "to", nf_json_nodeset(&j->to));
	json_object_object_add(o, "result", json_object_new_string("queued"));
	return o;
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

/* A migration of C to its effective mems. FROM, when the mems changed, is
 * what they were: the engine keeps the kernel's relative node mapping. */
static json_object *request(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from)
{
	if (t != NF_TRIG_API && c->reg && c->reg->opted_out)
		return NULL;
	if (c->pending) { /* not started yet: retarget it */
		c->pending->to = c->eff;
		json_object_object_add(c->pending->record, "to", nf_json_nodeset(&c->eff));
		return c->pending->record;
	}
	nf_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	*j = (nf_job){.cg = c, .trigger = t, .to = c->eff, .has_from = from != NULL};
	if (from)
		j->from = *from;
	j->record = record_new(a, c, j);
	hist_push(a, j->record);
	c->pending = j;
	if (c->running) {
		c->running->cancel = true;
		nf_log(LOG_INFO, "container %s: mems changed during a migration; superseding it",
		       nf_cg_id(c));
	} else {
		enqueue(a, j);
	}
	return j->record;
}

json_object *nf_agent_request(nf_agent *a, nf_cg *c, nf_trigger t)
{
	return request(a, c, t, NULL);
}

static nf_result classify(int r, const nf_migration *m)
{
	if (r < 0)
		return NF_RES_FAILED;
	if (m->cancelled)
		return NF_RES_SUPERSEDED;
	if (m->tasks_failed && !m->tasks_migrated)
		return NF_RES_FAILED;
	return m->residual_bytes || m->tasks_failed ? NF_RES_PARTIAL : NF_RES_OK;
}

static json_object *errors_json(int r, const nf_migration *m)
{
	json_object *arr = json_object_new_array();
	char msg[320];
	if (r < 0) {
		snprintf(msg, sizeof(msg), "could not start: %s", strerror(-r));
		json_object_array_add(arr, json_object_new_string(msg));
	}
	for (size_t i = 0; r == 0 && i < m->n_errors; i++) {
		snprintf(msg, sizeof(msg), "pid %d: %s: %s", m->errors[i].pid, m->errors[i].what,
			 strerror(m->errors[i].err));
		json_object_array_add(arr, json_object_new_string(msg));
	}
	return arr;
}

static void add_i64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void count(nf_agent *a, nf_result res, const nf_migration *m, uint64_t kernel, double secs)
{
	a->results[res]++;
	a->moved_total += m->moved_bytes;
	a->kernel_moved_total += kernel;
	a->residual_total += m->residual_bytes;
	a->duration_sum += secs;
	unsigned b = 0;
	while (b < NF_DURATION_BUCKETS && secs > nf_duration_bounds[b])
		b++;
	a->duration_bucket[b]++;
}

/* With the lock held: the record, the metrics, the journal, the container. */
static void finish(nf_agent *a, nf_job *j, int r, const nf_migration *m, uint64_t kernel,
		   uint64_t ns)
{
	json_object *o = j->record;
	nf_result res = classify(r, m);
	add_i64(o, "duration_ms", ns / 1000000);
	add_i64(o, "tasks", m->tasks);
	add_i64(o, "tasks_failed", m->tasks_failed);
	add_i64(o, "pages_not_moved", m->pages_not_moved);
	add_i64(o, "kernel_moved_bytes", kernel);
	add_i64(o, "moved_bytes", m->moved_bytes);
	add_i64(o, "residual_bytes", m->residual_bytes);
	json_object *cls = json_object_new_object();
	for (int k = 0; k < NF_STAY_COUNT; k++)
		if (m->residual[k])
			add_i64(cls, nf_stay_class_name(k), m->residual[k]);
	json_object_object_add(o, "residual", cls);
	json_object_object_add(o, "result", json_object_new_string(nf_result_name(res)));
	json_object_object_add(o, "errors", errors_json(r, m));
	count(a, res, m, kernel, ns / 1e9);
	if (a->journal_ok &&
	    (r = nf_journal_append(
		 &a->journal, json_object_to_json_string_ext(
				  o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE))) < 0)
		nf_log(LOG_ERR, "history journal: appending: %s", strerror(-r));
	nf_log(res == NF_RES_OK ? LOG_INFO : LOG_WARNING,
	       "container %s: migration %s %s: moved %.1f MiB (kernel %.1f MiB), %.1f MiB left, "
	       "%zu tasks, %llu ms",
	       nf_cg_id(j->cg), json_object_get_string(json_object_object_get(o, "id")),
	       nf_result_name(res), m->moved_bytes / 1048576.0, kernel / 1048576.0,
	       m->residual_bytes / 1048576.0, m->tasks, (unsigned long long)(ns / 1000000));
	json_object_put(j->cg->last);
	j->cg->last = json_object_get(o);
	j->cg->residual = m->residual_bytes;
	j->cg->drifted = false;
}

/* memory.numa_stat where there is one (cheap); false on v1. */
static bool numa_stat(const nf_cgroup *cg, nf_residency *ret)
{
	nf_residency_source src;
	return cg->h->version == NF_CG_V2 && nf_cgroup_residency(cg, NULL, 0, ret, &src) == 0 &&
	       src == NF_SRC_NUMA_STAT;
}

/* Whether the kernel migrates on a cpuset.mems write itself: always on v2,
 * with cpuset.memory_migrate=1 on v1. */
static bool kernel_migrates(const nf_cgroup *cg)
{
	_cleanup_free_ char *path = NULL, *v = NULL;
	if (cg->h->version == NF_CG_V2)
		return true;
	return asprintf(&path, "%s/cpuset.memory_migrate", cg->path) > 0 &&
	       nf_read_line(path, &v) == 0 && strcmp(v, "1") == 0;
}

/* A fingerprint of where the cgroup's memory is: memory.numa_stat's text
 * (it includes the LRU counts that page isolation changes), or the tasks'
 * numa_maps bytes per node. Also the anonymous bytes outside TO. */
static uint32_t placement(const nf_cgroup *cg, const nf_nodeset *to, unsigned nnodes,
			  uint64_t *ret_outside)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	nf_residency res = {0};
	nf_residency_source src;
	size_t n = 0;
	uint32_t crc;
	if (cg->h->version == NF_CG_V2 && asprintf(&path, "%s/memory.numa_stat", cg->path) > 0 &&
	    nf_read_file(path, &text, NULL) == 0 && nf_numa_stat_parse(text, &res) == 0) {
		crc = nf_crc32(text, strlen(text));
	} else {
		if (nf_cgroup_tasks(cg, false, &pids, &n) == 0)
			nf_cgroup_residency(cg, pids, n, &res, &src);
		crc = nf_crc32(&res, sizeof(res));
	}
	*ret_outside = 0;
	for (unsigned k = 0; k < nnodes; k++)
		*ret_outside += nf_nodeset_has(to, k) ? 0 : res.anon[k];
	return crc;
}

/* Where the kernel migrates in the writer's context, the agent acts at the
 * writer's close, after that migration; but an ancestor's write, or a
 * reconcile, can still find the kernel at work. Racing it would only split the
 * work and blur what each moved, so wait until no anonymous memory is outside
 * TO, or until the placement has not changed for 1 s: the kernel left
 * something. (A quiet 200 ms ended, in the VM, before the kernel had moved
 * anything: it first isolates the pages and drains every CPU's LRU cache.)
 * At most 60 s. */
static void settle(const nf_cgroup *cg, const nf_nodeset *to, unsigned nnodes,
		   const _Atomic bool *cancel)
{
	uint64_t out;
	if (!kernel_migrates(cg))
		return;
	uint32_t prev = placement(cg, to, nnodes, &out);
	uint64_t t0 = nf_now_ns();
	for (unsigned quiet = 0;
	     out && quiet < 10 && !*cancel && nf_now_ns() - t0 < 60 * UINT64_C(1000000000);) {
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);
		uint32_t cur = placement(cg, to, nnodes, &out);
		quiet = cur == prev ? quiet + 1 : 0;
		prev = cur;
	}
}

/* Runs J with the lock dropped around the engine. What the kernel moved is the
 * difference between the last sample outside the target and what is outside
 * it now, before the engine starts. */
static void run_job(nf_agent *a, nf_job *j)
{
	nf_cg *c = j->cg;
	char started[40], *rel = strdup(c->rel);
	uint64_t before = nf_cg_outside(a, c, &j->to, false);
	nf_migrate_opts o = {.to = j->to,
			     .from = j->from,
			     .has_from = j->has_from,
			     .retries = a->retries,
			     .backoff_ms = 20,
			     .no_descendants = true,
			     .cancel = &j->cancel};
	nf_migration m = {0};
	nf_residency now, after;
	nf_cgroup cg = {0};
	rfc3339(started, sizeof(started));
	json_object_object_add(j->record, "started_at", json_object_new_string(started));
	json_object_object_add(j->record, "result", json_object_new_string("running"));
	pthread_mutex_unlock(&a->lock);

	uint64_t t0 = nf_now_ns(), kernel = 0;
	int r = rel ? nf_cgroup_open(&a->h, rel, &cg) : -ENOMEM;
	if (r == 0 && j->has_from)
		settle(&cg, &j->to, a->nnodes, &j->cancel);
	bool v2 = r == 0 && numa_stat(&cg, &now);
	if (r == 0)
		r = nf_migrate(&cg, &o, &m);
	uint64_t now_out = v2	    ? nf_residency_outside(&now, &j->to)
			   : r == 0 ? nf_residency_outside(&m.before, &j->to)
				    : before;
	kernel = before > now_out ? before - now_out : 0;
	bool sampled = r == 0 && (v2 ? numa_stat(&cg, &after) : (after = m.after, true));
	uint64_t ns = nf_now_ns() - t0;
	nf_cgroup_done(&cg);
	free(rel);

	pthread_mutex_lock(&a->lock);
	finish(a, j, r, &m, kernel, ns);
	if (sampled && !c->gone)
		store_residency(a, c, &after);
	nf_migration_done(&m);
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

/* True when C's latest migration came from a reconcile. At a write's close
 * that means the reconcile may have read the new mems while the writer was
 * still in its write(2): on v2 (or v1 with memory_migrate) the kernel moves
 * the pages before the write returns, and a migration racing it finds them
 * busy and may report them left behind. */
static bool reconcile_raced(const nf_cg *c)
{
	const char *t = nf_json_string(c->last, "trigger");
	return c->running ? c->running->trigger == NF_TRIG_RECONCILE
			  : t && strcmp(t, "reconcile") == 0;
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
	if (nf_cg_is_container(c) && !nf_nodeset_equal(&old, &c->eff) && !nf_nodeset_empty(&old) &&
	    !nf_nodeset_empty(&c->eff)) {
		char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
		nf_log(LOG_INFO, "container %s: effective mems %s -> %s (%s)", nf_cg_id(c),
		       nf_nodeset_format(&old, b1, sizeof(b1)),
		       nf_nodeset_format(&c->eff, b2, sizeof(b2)), nf_trigger_name(t));
		request(a, c, t, &old);
	} else if (t == NF_TRIG_INOTIFY && nf_cg_is_container(c) && reconcile_raced(c)) {
		nf_log(LOG_INFO,
		       "container %s: the write of its mems is over, and a reconcile's migration "
		       "may have raced the kernel's; migrating again",
		       nf_cg_id(c));
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

/* Watches C before listing it, so a child is either listed or announced. */
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

static void handle_event(nf_agent *a, const struct inotify_event *ev)
{
	a->events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		a->overflows++;
		a->rescan = true;
		nf_log(LOG_WARNING, "inotify queue overflowed; reconciling everything");
		nf_agent_reconcile(a);
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
		if (ev->mask & IN_CLOSE_WRITE)
			check_subtree(a, c, NF_TRIG_INOTIFY);
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
			handle_event(a, ev);
			p += sizeof(*ev) + ev->len;
		}
		pthread_mutex_unlock(&a->lock);
	}
}

/* ---- reconcile ---- */

/* Anonymous memory outside the mems that was not there after the last
 * migration: drift. Page cache is left alone (migrate_pages skips what is not
 * mapped). Decided on the last sample. */
static void repair_drift(nf_agent *a, nf_cg *c)
{
	if (!nf_cg_is_container(c) || c->running || c->pending || !c->anon ||
	    (c->reg && c->reg->opted_out))
		return;
	uint64_t out = nf_cg_outside(a, c, &c->eff, true);
	if (out > c->residual && !nf_nodeset_empty(&c->eff)) {
		c->drifted = true;
		a->drift_repairs++;
		nf_log(LOG_INFO, "container %s: %.1f MiB outside its mems; repairing", nf_cg_id(c),
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
	if (reread && nf_cg_is_container(c)) {
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

void nf_agent_reconcile(nf_agent *a)
{
	a->reconciles++;
	/* Directory listings only when events were lost: an overflow, or a
	 * watch that could not be added (then on every reconcile). */
	if (a->rescan || a->scan_errors)
		rescan_children(a, a->top);
	a->rescan = false;
	reconcile_subtree(a, a->top, true);
}

/* ---- lookups for the API ---- */

static nf_cg *find_in(nf_cg *c, const char *id)
{
	if (nf_cg_is_container(c) && strcmp(nf_cg_id(c), id) == 0)
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

nf_cg *nf_agent_find(nf_agent *a, const char *id)
{
	nf_cg *c = find_in(a->top, id);
	if (!c && id[0] == '/' && (c = find_path(a, id, false)) && !nf_cg_is_container(c))
		c = NULL;
	return c;
}

int nf_agent_cg_of_pid(nf_agent *a, pid_t pid, nf_cg **ret)
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

void nf_agent_refresh(nf_agent *a, nf_cg *c)
{
	sample(a, c);
}

/* ---- start and stop ---- */

static void replay(const char *record, void *userdata)
{
	nf_agent *a = userdata;
	json_object *o = json_tokener_parse(record), *id;
	if (!o || !json_object_object_get_ex(o, "id", &id)) {
		json_object_put(o);
		return;
	}
	uint64_t v = json_object_get_int64(id);
	if (v >= a->next_id)
		a->next_id = v + 1;
	hist_push(a, o);
	json_object_put(o);
}

/* Each container's last migration, from the history just replayed. */
static void link_history(nf_agent *a)
{
	for (size_t i = 0; i < a->hist_len; i++) {
		json_object *o = a->hist[(a->hist_first + i) % a->hist_cap], *cg, *left;
		if (!json_object_object_get_ex(o, "cgroup", &cg))
			continue;
		nf_cg *c = find_path(a, json_object_get_string(cg), false);
		if (c) {
			json_object_put(c->last);
			c->last = json_object_get(o);
			c->residual = json_object_object_get_ex(o, "residual_bytes", &left)
					  ? json_object_get_int64(left)
					  : 0;
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

int nf_agent_start(nf_agent *a, const nf_agent_config *cfg)
{
	int r;
	a->inotify_fd = -1;
	a->nnodes = numa_max_node() + 1;
	if (a->nnodes > NF_MAX_NODES)
		a->nnodes = NF_MAX_NODES;
	a->retries = cfg->retries;
	a->next_id = 1;
	a->hist_cap = cfg->history ? cfg->history : 1;
	a->wd_buckets = WD_BUCKETS;
	a->started_ns = nf_now_ns();
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	if (!(a->hist = calloc(a->hist_cap, sizeof(*a->hist))) ||
	    !(a->wd_hash = calloc(a->wd_buckets, sizeof(*a->wd_hash))))
		return -ENOMEM;
	if ((r = nf_hierarchy_detect(&a->h)) < 0)
		return nf_log(LOG_ERR, "no cpuset controller in /proc/self/mountinfo: %s",
			      strerror(-r)),
		       r;
	if ((r = open_top(a, cfg->cgroup_root)) < 0)
		return nf_log(LOG_ERR, "--cgroup-root '%s': %s", cfg->cgroup_root, strerror(-r)), r;
	if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST)
		nf_log(LOG_ERR, "state directory '%s': %m; history will not survive a restart",
		       cfg->state_dir);
	else if ((r = nf_journal_open(cfg->state_dir, cfg->journal_max, replay, a, &a->journal)) <
		 0)
		nf_log(LOG_ERR, "history journal in '%s': %s; history will not survive a restart",
		       cfg->state_dir, strerror(-r));
	else
		a->journal_ok = true;
	a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a->inotify_fd < 0)
		return nf_log(LOG_ERR, "inotify_init1: %m"), -errno;
	uint64_t t0 = nf_now_ns();
	scan(a, a->top);
	link_history(a);
	reconcile_subtree(a, a->top, false); /* drift from before the agent started */
	nf_log(LOG_INFO, "watching %zu cgroups under '%s%s' (%s), scanned in %llu ms", a->n_cgs + 1,
	       a->h.mount, strcmp(a->top->rel, "/") ? a->top->rel : "", nf_hierarchy_name(&a->h),
	       (unsigned long long)((nf_now_ns() - t0) / 1000000));
	a->threads = calloc(cfg->workers, sizeof(*a->threads));
	for (unsigned i = 0; a->threads && i < cfg->workers; i++, a->n_threads++)
		if ((r = pthread_create(&a->threads[i], NULL, worker, a)) != 0)
			return nf_log(LOG_ERR, "starting worker: %s", strerror(r)), -r;
	return a->threads ? 0 : -ENOMEM;
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

void nf_agent_stop(nf_agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
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
	for (size_t i = 0; i < a->hist_len; i++)
		json_object_put(a->hist[(a->hist_first + i) % a->hist_cap]);
	free(a->hist);
	free(a->wd_hash);
	json_object_put(a->selfcheck);
	if (a->journal_ok)
		nf_journal_close(&a->journal);
	if (a->inotify_fd >= 0)
		close(a->inotify_fd);
	nf_hierarchy_done(&a->h);
}
