/* A container's sample: its tasks and where its memory is, as the API, the
 * metrics and the decisions see it between events; and docker's names for
 * docker's containers. Called with the lock held (agent-internal.h), but for
 * nf_sample_named, on docker's thread, which takes it. */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <string.h>

/* A docker container's name, asked of dockerd once (again at its next
 * sample while dockerd does not answer); a registration's name comes first. */
static void ask_name(nf_agent *a, nf_cg *c)
{
	if (a->docker && c->name_state == NAME_UNASKED && !c->reg && nf_cg_is_container(c) &&
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

void nf_sample_named(void *userdata, const char *id, const char *name, bool retry)
{
	nf_agent *a = userdata;
	nf_agent_lock(a);
	nf_cg *c = a->top ? find_docker(a->top, id) : NULL;
	if (c && c->name_state == NAME_ASKED) {
		c->name_state = name || !retry ? NAME_DONE : NAME_UNASKED;
		if (name && (c->name = strdup(name)))
			nf_log(LOG_DEBUG, "container %s: docker calls it %s", nf_cg_id(c), name);
	}
	nf_agent_unlock(a);
}

uint64_t nf_cg_outside(const nf_agent *a, const nf_cg *c, const nf_nodeset *set, bool anon_only)
{
	uint64_t sum = 0;
	for (unsigned n = 0; c->anon && n < a->nnodes; n++)
		if (!nf_nodeset_has(set, n))
			sum += c->anon[n] + (anon_only ? 0 : c->file[n]);
	return sum;
}

uint64_t *nf_cg_node_totals(const nf_agent *a, const nf_cg *c)
{
	uint64_t *t = c->anon ? calloc(a->nnodes, sizeof(*t)) : NULL;
	for (unsigned n = 0; t && n < a->nnodes; n++)
		t[n] = c->anon[n] + c->file[n];
	return t;
}

void nf_sample_store(nf_agent *a, nf_cg *c, const nf_residency *r)
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

void nf_read_failed(nf_agent *a, const nf_cg *c, const char *what, int r)
{
	if (r == -ENOENT || r == -ENODEV || r == -ESRCH)
		return; /* the cgroup or a task went away meanwhile: events say so */
	nf_log_errno(a->stats.read_errors++ == 0 ? LOG_WARNING : LOG_DEBUG, r,
		     "cgroup '%s': reading its %s (numafollow_read_errors_total counts these; "
		     "the first is logged as a warning)",
		     c->rel, what);
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

/* v1: the tasks' numa_maps (as the engine counts it), re-read only when the
 * memory cgroup's numa_stat or the tasks changed (a page-table walk of every
 * process each reconcile was most of an idle agent's CPU). */
static void sample_v1(nf_agent *a, nf_cg *c, const nf_cgroup *cg, const pid_t *pids, size_t n)
{
	nf_residency st, res;
	/* no memory hierarchy, or another memory cgroup: numa_maps only */
	uint64_t sig =
	    n && nf_cgroup_v1_stat(cg, pids[0], &st) == 0 ? v1_signature(a, &st, pids, n) : 0;
	if (sig && c->anon && sig == c->v1_sig)
		return;
	int r = nf_tasks_residency(pids, n, &res);
	if (r < 0) {
		nf_read_failed(a, c, "tasks' numa_maps", r);
		return;
	}
	nf_sample_store(a, c, &res);
	c->v1_sig = sig;
}

/* Tasks and, for a container, where its memory is: memory.numa_stat on v2,
 * the tasks' numa_maps on v1. */
void nf_sample(nf_agent *a, nf_cg *c)
{
	char path[PATH_MAX];
	nf_cgroup cg = nf_cg_cgroup(a, c, path);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	nf_residency res;
	nf_residency_source src;
	int r = 0;

	c->tasks = 0;
	c->sampled_ns = nf_now_ns();
	if (strcmp(c->rel, "/") != 0 && (r = nf_cgroup_tasks(&cg, false, &pids, &n)) == 0)
		c->tasks = n;
	else if (r < 0)
		nf_read_failed(a, c, "tasks", r);
	nf_announce_presence(a, c);
	if (!nf_cg_is_container(c)) {
		free(c->anon), free(c->file);
		c->anon = c->file = NULL;
		return;
	}
	ask_name(a, c);
	if (a->h.version != NF_CG_V2)
		sample_v1(a, c, &cg, pids, n);
	else if ((r = nf_cgroup_residency(&cg, pids, n, &res, &src)) == 0)
		nf_sample_store(a, c, &res);
	else
		nf_read_failed(a, c, "memory", r);
}
