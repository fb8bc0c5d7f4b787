/* The API's event sources: registrations from the hook (POST and DELETE
 * /v1/containers) and the requests to migrate or move a container. Each takes
 * the lock for itself (agent.h) and asks jobs.c, through follow.c's rules
 * where a rule applies. */
#include "agent-internal.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <string.h>

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
	const nf_cg *o = nf_tree_find_id(a->top, id);
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
	nf_sample(a, c);
	if (nf_decide_drift(nf_cg_outside(a, c, &c->eff, true), c->residual, false))
		nf_job_request(a, c, NF_TRIG_HOOK, NULL);
	nf_log(LOG_INFO, "container %s: registered (pid %d, cgroup '%s', %s)", r->id, r->pid,
	       c->rel, r->status ? r->status : "no status");
	return update;
}

int nf_agent_register(nf_agent *a, nf_registration *r, nf_container_fn fn, void *userdata,
		      char **ret_msg)
{
	nf_cg *c;
	nf_agent_lock(a);
	int e = nf_tree_cg_of_pid(a, r->pid, &c);
	if (e < 0) {
		e = nf_decide_refusal(e, NF_REG_NEW, r->pid, r->id, NULL, NULL, ret_msg);
		nf_registration_free(r);
	} else if ((e = registered(a, c, r, ret_msg)) >= 0) {
		nf_container v = nf_cg_view(a, c);
		fn(&v, userdata);
	}
	nf_agent_unlock(a);
	return e;
}

int nf_agent_unregister(nf_agent *a, const char *id)
{
	nf_agent_lock(a);
	nf_cg *c = nf_tree_find(a, id);
	int r = !c ? -ENOENT : !c->reg ? -ENODATA : 0;
	if (r == 0) {
		nf_log(LOG_INFO, "container %s: unregistered", c->reg->id);
		nf_registration_free(c->reg);
		c->reg = NULL;
	}
	nf_agent_unlock(a);
	return r;
}

/* Why C's cpuset.mems cannot take a staged move (R), for the API's answer. */
static void move_refused(int r, char **ret_msg)
{
	if (ret_msg &&
	    asprintf(ret_msg, "%s",
		     r == -EBUSY   ? "a migration of it is under way; try again"
		     : r == -EROFS ? "its cpuset.mems is on a read-only mount, and the staged "
				     "move writes it: mount /sys/fs/cgroup read-write for the "
				     "agent (the DaemonSet mounts it read-only), or write the "
				     "mems yourself and let the agent follow"
				   : strerror(-r)) < 0)
		*ret_msg = NULL;
}

/* A staged move of C to TO: queued unless C has a migration under way. */
static int queue_move(nf_agent *a, nf_cg *c, const nf_nodeset *to, nf_record_fn fn, void *userdata,
		      char **ret_msg)
{
	char path[PATH_MAX];
	nf_cgroup cg = nf_cg_cgroup(a, c, path);
	int r = c->running || c->pending ? -EBUSY : nf_cgroup_mems_writable(&cg);
	if (r < 0) {
		move_refused(r, ret_msg);
		return r;
	}
	nf_nodeset now = c->eff;
	nf_job *j = nf_job_new(a, c, NF_TRIG_MOVE, &now);
	if (!j)
		return -ENOMEM;
	j->to = j->record->to = *to;
	j->staged = true;
	nf_history_push(&a->hist, j->record);
	nf_history_save(&a->hist, j->record);
	c->pending = j;
	nf_job_enqueue(a, j);
	fn(j->record, userdata);
	return 0;
}

int nf_agent_move(nf_agent *a, const char *id, const nf_nodeset *to, nf_record_fn fn,
		  void *userdata, char **ret_msg)
{
	nf_agent_lock(a);
	nf_cg *c = nf_tree_find(a, id);
	int r = c ? queue_move(a, c, to, fn, userdata, ret_msg) : -ENOENT;
	nf_agent_unlock(a);
	return r;
}

int nf_agent_migrate_to(nf_agent *a, const char *id, const nf_nodeset *to, nf_trigger t,
			nf_record_fn fn, void *userdata)
{
	nf_nodeset outside;
	nf_job *j = NULL;
	nf_agent_lock(a);
	nf_cg *c = nf_tree_find(a, id);
	if (c)
		nf_nodeset_minus(to, &c->eff, &outside);
	int r = !c			      ? -ENOENT
		: c->running || c->pending    ? -EBUSY
		: !nf_nodeset_empty(&outside) ? -ERANGE
					      : 0;
	if (r == 0) {
		nf_sample(a, c);
		j = nf_job_new(a, c, t, NULL);
		r = j ? 0 : -ENOMEM;
	}
	if (j) { /* the nodes that hold memory outside TO, not outside the mems */
		j->to = j->record->to = *to;
		j->record->from = nf_job_sampled_from(a, c, to);
		nf_history_push(&a->hist, j->record);
		nf_history_save(&a->hist, j->record);
		c->pending = j;
		nf_job_enqueue(a, j);
		fn(j->record, userdata);
	}
	nf_agent_unlock(a);
	return r;
}

int nf_agent_migrate(nf_agent *a, const char *id, nf_record_fn fn, void *userdata)
{
	const nf_record *rec = NULL;
	nf_agent_lock(a);
	nf_cg *c = nf_tree_find(a, id);
	int r = !c ? -ENOENT : nf_nodeset_empty(&c->eff) ? -ENXIO : nf_cg_staging(c) ? -EBUSY : 0;
	if (r == 0) {
		nf_sample(a, c);
		rec = nf_job_request(a, c, NF_TRIG_API, NULL);
		r = rec ? 0 : -ENOMEM;
	}
	if (rec)
		fn(rec, userdata);
	nf_agent_unlock(a);
	return r;
}
