/* What the agent decides, apart from how it finds out and what it does about
 * it: pure functions of what the agent knows, unit-tested on their own
 * (tests/unit/test-decide.c). */
#ifndef NF_DECIDE_H
#define NF_DECIDE_H

#include "../lib/record.h"

#include <stdbool.h>
#include <stdint.h>

/* A request for a migration of a container to its effective mems. */
typedef enum {
	NF_REQ_SKIP,	  /* opted out (numafollow.io/migrate=false), and not asked by the API;
			   * or a staged move is under way (it ends at its own target) */
	NF_REQ_RETARGET,  /* a job is queued, not started: it takes the newest mems */
	NF_REQ_SUPERSEDE, /* a job runs: cancel it, the new one runs after it */
	NF_REQ_QUEUE,	  /* nothing runs or waits: queue it */
} nf_req_action;
nf_req_action nf_decide_request(nf_trigger t, bool opted_out, bool staging, bool pending,
				bool running);

/* A container's state, as the API and the metrics show it. */
typedef enum {
	NF_CS_IN_SYNC,
	NF_CS_MIGRATING,
	NF_CS_OPTED_OUT,
	NF_CS_DRIFTED,
	NF_CS_FAILED, /* the last migration failed or left memory behind */
	NF_CS_COUNT
} nf_cg_state;
const char *nf_cg_state_name(nf_cg_state s);
nf_cg_state nf_decide_state(bool busy, bool opted_out, bool drifted, const nf_record *last);

/* Drift: anonymous memory outside the effective mems beyond what the last
 * migration left (page cache is left alone: migrate_pages skips what is not
 * mapped). Also what makes a registration ask for a migration. */
bool nf_decide_drift(uint64_t outside_anon, uint64_t last_residual, bool eff_empty);

/* A container's effective mems changed: why that asks for no migration (a
 * reason for the log), or NULL when it asks for one. IDLE: no migration of it
 * runs or waits (assists aside); NARROWED: a node of the old mems is not in
 * the new ones; SAMPLED: its memory was sampled, OUTSIDE bytes of it outside
 * the new mems. RUNC_INIT(USERDATA) says whether its tasks are all runc's
 * init still; it reads /proc, so it is asked last, and only when it decides. */
const char *nf_decide_nothing_to_move(bool idle, bool narrowed, bool sampled, uint64_t outside,
				      bool (*runc_init)(void *userdata), void *userdata);

/* At the close of a cpuset.mems write that changed nothing the agent saw:
 * migrate again when the latest migration (running, else the last) came from
 * a reconcile, which may have read the new mems while the writer was still in
 * its write(2) and raced the kernel's migration (tests/vm/t-agent-race.sh). */
bool nf_decide_raced(const nf_trigger *running, const nf_record *last);

/* A registration of container ID for a pid in a cgroup that holds
 * REGISTERED_ID's registration (or none). */
typedef enum {
	NF_REG_NEW,
	NF_REG_UPDATE,	  /* the cgroup holds ID's registration already */
	NF_REG_ROOT,	  /* the pid is in the root cgroup: not a container */
	NF_REG_ID_TAKEN,  /* another container goes by ID (its cgroup's name) */
	NF_REG_NO_CPUSET, /* the cgroup has no effective mems */
} nf_reg_action;
nf_reg_action nf_decide_registration(const char *id, const char *registered_id, bool root,
				     bool id_taken, bool eff_empty);
/* Why a registration of ID for PID is refused, as -errno, and said in
 * *RET_MSG (allocated; NULL when out of memory; RET_MSG may be NULL): E is
 * the error of finding PID's cgroup (-ESRCH, -EXDEV, another), or 0 with ACT
 * a refusal (ROOT, ID_TAKEN, NO_CPUSET) of PID's cgroup REL, OTHER being the
 * cgroup that goes by ID. */
int nf_decide_refusal(int e, nf_reg_action act, int pid, const char *id, const char *rel,
		      const char *other, char **ret_msg);

#endif
