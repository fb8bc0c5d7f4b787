/* The gentle CRI re-pin, after the plugin's answer (docs/nri.md): the runtime
 * has written old u new to the container's cpuset.mems (the kernel moved
 * nothing: its sources are in the destination), the agent moves the memory
 * to the new nodes with its engine, and the plugin narrows the mems to the
 * new nodes with UpdateContainers (the kernel sweeps only what was allocated
 * meanwhile). Each re-pin is a file in the state directory from before the
 * answer until the narrowing, so that a plugin killed in between narrows the
 * widened container when it starts again; each finished one is a line of
 * STATE_DIR/repins.journal with its phases' times. */
#ifndef NF_NRI_REPIN_H
#define NF_NRI_REPIN_H

#include "../../cgroup/nodeset.h"

#include <stdbool.h>

typedef struct nf_repins nf_repins;

/* Writes container ID's mems to SET through the runtime (UpdateContainers),
 * waiting for its answer: 0, -ENOTCONN while no runtime is connected, or
 * another -errno. Called on a re-pin's thread. */
typedef int (*nf_narrow_fn)(void *userdata, const char *id, const nf_nodeset *set);

typedef struct {
	const char *state_dir, *agent_socket;
	unsigned move_timeout_s; /* the longest wait for the agent's move */
	nf_narrow_fn narrow;
	void *userdata;
} nf_repin_config;

/* Loads the re-pins a previous run left unfinished (they wait for
 * nf_repins_resume). -errno when the state directory cannot be made. */
int nf_repins_new(const nf_repin_config *cfg, nf_repins **ret);
/* Waits for the re-pins' threads (they stop between steps). */
void nf_repins_free(nf_repins *rp);

/* Before the answer that widens container ID: its state file. A re-pin of it
 * already under way is superseded (it will not narrow). -errno: no answer
 * with old u new then (without its file a crash would leave it widened). */
int nf_repin_begin(nf_repins *rp, const char *id, const nf_nodeset *old, const nf_nodeset *new,
		   const nf_nodeset *uni);
/* The runtime applied an update of ID (post-update): with SPEC_MEMS = old u
 * new the move starts; anything else ends the re-pin (someone else decided). */
void nf_repin_applied(nf_repins *rp, const char *id, const char *spec_mems);
/* ID is gone, or an update of it was not re-pinned: any re-pin of it ends. */
void nf_repin_forget(nf_repins *rp, const char *id);
/* Re-pins still waiting for their post-update after MAX_WAIT_S end (the CRI
 * call failed after the answer: the runtime wrote nothing). */
void nf_repins_expire(nf_repins *rp, unsigned max_wait_s);

/* A container the runtime knows, as Synchronize lists it. */
typedef struct {
	const char *id, *spec_mems;
} nf_repin_seen;

/* After (re)connecting: the re-pins a previous run left, against the
 * runtime's containers (N of SEEN; SEEN NULL: no Synchronize, as for a
 * pre-launched plugin, so every one goes on). A container still at old u new
 * is moved and narrowed; one at the new nodes was done; the rest end. */
void nf_repins_resume(nf_repins *rp, const nf_repin_seen *seen, size_t n);

#endif
