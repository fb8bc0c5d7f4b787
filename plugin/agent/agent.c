/* The agent as an object: its start and stop, its lock (agent-internal.h has
 * the rule), its counters and its tuning. The rooms it is made of are listed
 * in agent-internal.h. */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <numa.h>
#include <string.h>
#include <sys/inotify.h>

const double nf_duration_bounds[NF_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5,
							1,    2.5,  5,	 10,   30};

#define WD_BUCKETS 4096

/* ---- the lock, timed ---- */

void nf_agent_hold_begins(nf_agent *a, const char *fn)
{
	a->locked_ns = nf_now_ns();
	a->locked_in = fn;
}

void nf_agent_hold_ends(nf_agent *a)
{
	uint64_t d = nf_now_ns() - a->locked_ns;
	a->stats.lock_holds++;
	a->stats.lock_held_ns += d;
	if (d > a->stats.lock_held_max_ns) {
		a->stats.lock_held_max_ns = d;
		a->stats.lock_held_max_in = a->locked_in;
	}
}

void nf_agent_lock_in(nf_agent *a, const char *fn)
{
	pthread_mutex_lock(&a->lock);
	nf_agent_hold_begins(a, fn);
}

void nf_agent_unlock(nf_agent *a)
{
	nf_agent_hold_ends(a);
	pthread_mutex_unlock(&a->lock);
}

/* ---- the event loop's side ---- */

int nf_agent_fd(const nf_agent *a)
{
	return a->inotify_fd;
}

void nf_agent_set_tuning(nf_agent *a, const nf_agent_tuning *t)
{
	nf_agent_lock(a);
	a->tuning = *t;
	nf_agent_unlock(a);
}

static size_t count_containers(const nf_cg *c)
{
	size_t n = nf_cg_is_container(c);
	for (const nf_cg *k = c->child; k; k = k->next)
		n += count_containers(k);
	return n;
}

void nf_agent_stats_get(nf_agent *a, nf_agent_stats *ret)
{
	nf_agent_lock(a);
	*ret = a->stats;
	ret->h = &a->h;
	ret->cgroup_root = a->top->rel;
	ret->uptime_ns = nf_now_ns() - a->started_ns;
	ret->cgroups_watched = a->n_cgs + 1;
	ret->containers = count_containers(a->top);
	for (nf_job *j = a->head; j; j = j->next)
		ret->queued++;
	ret->workers = a->n_threads;
	ret->history_persistent = nf_history_persistent(&a->hist);
	ret->history_write_errors = a->hist.write_errors;
	nf_agent_unlock(a);
}

/* ---- start and stop ---- */

static nf_cg *find_path(void *userdata, const char *rel)
{
	return nf_tree_find_path(userdata, rel, false);
}

/* Records replayed as queued or running were cut short by a stop or a crash:
 * concluded as such; a staged move among them that had widened its
 * container's mems is resumed (jobs.c), newest first. */
static void conclude_interrupted(nf_agent *a)
{
	nf_record *r, **cut = calloc(a->hist.len + 1, sizeof(*cut));
	size_t n = 0;
	for (size_t i = 0; cut && (r = nf_history_newest(&a->hist, i)); i++)
		if (r->state == NF_REC_RUNNING && r->trigger == NF_TRIG_MOVE)
			cut[n++] = nf_record_ref(r);
	if (!cut)
		nf_log(LOG_WARNING, "out of memory: staged moves cut short are not resumed");
	nf_history_conclude_interrupted(&a->hist);
	for (size_t i = 0; i < n; i++) {
		nf_job_resume_staged(a, cut[i]);
		nf_record_unref(cut[i]);
	}
	free(cut);
}

/* Scans and watches the tree, gives each container its last migration,
 * resumes staged moves cut short and queues the repair of drift from before
 * the start. */
static void scan(nf_agent *a)
{
	uint64_t t0 = nf_now_ns();
	/* The docker thread's answers take the lock. Not timed: the lock_*
	 * figures are those of the agent at work. */
	pthread_mutex_lock(&a->lock);
	nf_tree_scan(a, a->top);
	nf_history_link(&a->hist, find_path, a);
	conclude_interrupted(a);
	nf_reconcile_drift(a, a->top);
	pthread_mutex_unlock(&a->lock);
	nf_log(LOG_INFO, "watching %zu cgroups under '%s%s' (%s), scanned in %llu ms", a->n_cgs + 1,
	       a->h.mount, strcmp(a->top->rel, "/") ? a->top->rel : "", nf_hierarchy_name(&a->h),
	       (unsigned long long)((nf_now_ns() - t0) / 1000000));
}

static int start_workers(nf_agent *a, unsigned n)
{
	int r;
	if (!(a->threads = calloc(n, sizeof(*a->threads))))
		return nf_log_errno(LOG_ERR, -ENOMEM, "starting workers");
	for (unsigned i = 0; i < n; i++, a->n_threads++)
		if ((r = pthread_create(&a->threads[i], NULL, nf_job_worker, a)) != 0)
			return nf_log_errno(LOG_ERR, -r, "starting worker");
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
	if ((r = nf_tree_open_top(a, cfg->cgroup_root)) < 0)
		return nf_log_errno(LOG_ERR, r, "--cgroup-root '%s'", cfg->cgroup_root);
	if ((r = nf_history_open(&a->hist, cfg->state_dir, cfg->journal_max)) < 0)
		return r;
	a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a->inotify_fd < 0)
		return nf_log_errno(LOG_ERR, -errno, "inotify_init1");
	if (cfg->docker_socket && *cfg->docker_socket &&
	    (r = nf_docker_new(cfg->docker_socket, nf_sample_named, a, &a->docker)) < 0)
		return nf_log_errno(LOG_ERR, r, "starting the docker name lookups");
	scan(a);
	return start_workers(a, cfg->workers);
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
	a->stream = cfg->stream;
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

/* Drains the workers: running migrations finish, assists end now. */
static void stop_workers(nf_agent *a)
{
	nf_agent_lock(a);
	a->docker = NULL;
	a->stopping = true;
	nf_assist_cancel_all(a->top);
	pthread_cond_broadcast(&a->work);
	nf_agent_unlock(a);
	for (unsigned i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	free(a->threads);
}

void nf_agent_free(nf_agent *a)
{
	if (!a)
		return;
	nf_docker_free(a->docker); /* its thread takes the lock */
	stop_workers(a);
	while (a->head) {
		nf_job *j = a->head;
		a->head = j->next;
		j->cg->pending = NULL;
		if (j->cg->gone)
			nf_cg_free(j->cg);
		nf_job_free(j);
	}
	if (a->top)
		nf_tree_free(a->top);
	nf_history_done(&a->hist);
	free(a->wd_hash);
	if (a->inotify_fd >= 0)
		close(a->inotify_fd);
	nf_hierarchy_done(&a->h);
	pthread_cond_destroy(&a->work);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
