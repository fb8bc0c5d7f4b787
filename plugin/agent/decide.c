#include "decide.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nf_req_action nf_decide_request(nf_trigger t, bool opted_out, bool staging, bool pending,
				bool running)
{
	if (staging || (opted_out && t != NF_TRIG_API))
		return NF_REQ_SKIP;
	if (pending)
		return NF_REQ_RETARGET;
	return running ? NF_REQ_SUPERSEDE : NF_REQ_QUEUE;
}

const char *nf_cg_state_name(nf_cg_state s)
{
	static const char *const n[NF_CS_COUNT] = {"in_sync", "migrating", "opted_out", "drifted",
						   "failed"};
	return n[s];
}

nf_cg_state nf_decide_state(bool busy, bool opted_out, bool drifted, const nf_record *last)
{
	if (busy)
		return NF_CS_MIGRATING;
	if (opted_out)
		return NF_CS_OPTED_OUT;
	if (drifted)
		return NF_CS_DRIFTED;
	if (last && last->state == NF_REC_DONE &&
	    (last->result == NF_RES_FAILED || last->result == NF_RES_PARTIAL))
		return NF_CS_FAILED;
	return NF_CS_IN_SYNC;
}

bool nf_decide_drift(uint64_t outside_anon, uint64_t last_residual, bool eff_empty)
{
	return !eff_empty && outside_anon > last_residual;
}

/* No record that says nothing a user would care about: a widening of a
 * container with nothing outside the new set (the kernel moves nothing, nor
 * will the agent); or a container still starting under runc. A narrowing
 * always has one: on v2 the kernel moved inside the write, and the last
 * sample, taken before the container's memory grew maybe, cannot say it was
 * nothing. A migration under way takes the change on (superseded or
 * retargeted), so its record says it. */
const char *nf_decide_nothing_to_move(bool idle, bool narrowed, bool sampled, uint64_t outside,
				      bool (*runc_init)(void *userdata), void *userdata)
{
	if (!idle)
		return NULL;
	if (!narrowed && sampled && outside == 0)
		return "a widening, with none of its memory outside";
	return runc_init(userdata) ? "its tasks are still runc's init" : NULL;
}

bool nf_decide_raced(const nf_trigger *running, const nf_record *last)
{
	if (running)
		return *running == NF_TRIG_RECONCILE;
	return last && last->trigger == NF_TRIG_RECONCILE;
}

nf_reg_action nf_decide_registration(const char *id, const char *registered_id, bool root,
				     bool id_taken, bool eff_empty)
{
	if (root)
		return NF_REG_ROOT;
	if (id_taken)
		return NF_REG_ID_TAKEN;
	if (eff_empty)
		return NF_REG_NO_CPUSET;
	return registered_id && strcmp(registered_id, id) == 0 ? NF_REG_UPDATE : NF_REG_NEW;
}

int nf_decide_refusal(int e, nf_reg_action act, int pid, const char *id, const char *rel,
		      const char *other, char **ret_msg)
{
	char *m = NULL;
	int n;
	if (e < 0) {
		n = asprintf(&m, "pid %d%s%s", pid,
			     e == -ESRCH   ? ": no such process"
			     : e == -EXDEV ? " is in a cgroup outside the watched root"
					   : ": its cpuset cgroup cannot be found: ",
			     e == -ESRCH || e == -EXDEV ? "" : strerror(-e));
	} else if (act == NF_REG_ROOT) {
		e = -EPERM;
		n = asprintf(&m,
			     "pid %d is in the root cgroup: refusing to treat the whole machine as "
			     "one container",
			     pid);
	} else if (act == NF_REG_ID_TAKEN) {
		e = -EEXIST;
		n = asprintf(&m, "id '%s' is the container of cgroup '%s'", id, other);
	} else {
		e = -ENXIO;
		n = asprintf(&m, "cgroup '%s' has no cpuset", rel);
	}
	if (n < 0)
		m = NULL;
	if (ret_msg)
		*ret_msg = m;
	else
		free(m);
	return e;
}
