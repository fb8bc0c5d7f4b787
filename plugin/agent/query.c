/* What the API and the metrics read: containers as nf_container views and the
 * history's records, each with the lock held for the whole call, callbacks
 * included (agent.h). */
#include "agent-internal.h"
#include "../../cgroup/util.h"

#include <string.h>

static nf_cg_state cg_state(const nf_cg *c)
{
	return nf_decide_state(c->running || c->pending, nf_cg_opted_out(c), c->drifted, c->last);
}

nf_container nf_cg_view(const nf_agent *a, const nf_cg *c)
{
	return (nf_container){
	    .id = nf_cg_id(c),
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
	    .outside = nf_cg_outside(a, c, &c->eff, false),
	    .state = cg_state(c),
	    .last = c->last,
	};
}

static void each_in(const nf_agent *a, const nf_cg *c, nf_container_fn fn, void *userdata)
{
	if (nf_cg_is_container(c)) {
		nf_container v = nf_cg_view(a, c);
		fn(&v, userdata);
	}
	for (const nf_cg *k = c->child; k; k = k->next)
		each_in(a, k, fn, userdata);
}

/* Samples containers below C sampled before SINCE, *LEFT at most. */
static void resample_in(nf_agent *a, nf_cg *c, uint64_t since, size_t *left)
{
	if (nf_cg_is_container(c) && c->sampled_ns < since) {
		nf_sample(a, c);
		(*left)--;
	}
	for (nf_cg *k = c->child; k && *left; k = k->next)
		resample_in(a, k, since, left);
}

/* One hold per batch; each batch starts again from the top (cgroups may come
 * and go between two), and ends the sooner for what the last one sampled. */
void nf_agent_resample(nf_agent *a, uint64_t max_age_ms)
{
	uint64_t now = nf_now_ns(), age = max_age_ms * 1000000;
	for (size_t left = 0; left == 0;) {
		left = NF_BATCH;
		nf_agent_lock(a);
		resample_in(a, a->top, now > age ? now - age : 0, &left);
		nf_agent_unlock(a);
	}
}

void nf_agent_each_container(nf_agent *a, nf_container_fn fn, void *userdata)
{
	nf_agent_lock(a);
	each_in(a, a->top, fn, userdata);
	nf_agent_unlock(a);
}

int nf_agent_container(nf_agent *a, const char *id, nf_container_fn fn, void *userdata)
{
	nf_agent_lock(a);
	nf_cg *c = nf_tree_find(a, id);
	if (c) {
		nf_sample(a, c);
		nf_container v = nf_cg_view(a, c);
		fn(&v, userdata);
	}
	nf_agent_unlock(a);
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
	nf_agent_lock(a);
	const nf_cg *c = id ? nf_tree_find(a, id) : NULL;
	const char *cid = c ? nf_cg_id(c) : id;
	nf_record *r;
	for (size_t i = 0, n = 0; n < limit && (r = nf_history_newest(&a->hist, i)); i++)
		if (!id || record_of(r, cid, c ? c->rel : NULL)) {
			fn(r, userdata);
			n++;
		}
	nf_agent_unlock(a);
}

int nf_agent_record(nf_agent *a, uint64_t id, nf_record_fn fn, void *userdata)
{
	nf_agent_lock(a);
	const nf_record *r = nf_history_find(&a->hist, id);
	if (r)
		fn(r, userdata);
	nf_agent_unlock(a);
	return r ? 0 : -ENOENT;
}
