/* The staged move: a cgroup's cpuset.mems changed to new nodes without anyone
 * waiting on the kernel for the bulk. On cgroup v2 (and v1 with
 * memory_migrate=1) a write of cpuset.mems migrates inside the write, and the
 * writer waits for all of it. But the kernel skips source nodes that are in
 * the destination set when the two sets differ in size, so writing old u new
 * first moves nothing; the engine then moves the memory (gently, in
 * parallel), and the final write of the new set finds only what was
 * allocated meanwhile. Where the kernel does not migrate (v1,
 * memory_migrate=0), the new set is written first, then the engine moves. */
#ifndef NF_STAGED_H
#define NF_STAGED_H

#include "engine.h"

typedef struct {
	nf_nodeset old, widened; /* effective mems before; the union written first, if any */
	bool widen, kernel_migrates;
	uint64_t widen_ns, move_ns, narrow_ns;
	/* what the final write's migration moved: outside the target before it,
	 * less after (numa_maps of the tasks) */
	uint64_t kernel_bytes;
	nf_residency after;	 /* of the tasks, at the end */
	uint64_t residual_bytes; /* outside the target at the end */
	nf_migration m;		 /* the engine's run */
	/* cpuset.mems as the move last wrote it (or found it), and whether it
	 * wrote at all; resumed: a move cut short after its widening went on */
	nf_nodeset wrote;
	bool written, resumed;
	/* another writer's cpuset.mems (RACED_MEMS) was there instead of WROTE
	 * when the move came to write again: it wrote nothing more (no
	 * narrowing, no putting back), theirs win */
	bool raced;
	nf_nodeset raced_mems;
	/* after a failure past a write: the old mems put back, or RESTORE_R,
	 * the -errno of that write (cpuset.mems then stays as the move left it) */
	bool restored;
	int restore_r;
} nf_staged;

/* Moves CG to O->to in stages (O->from and has_from are set from the cgroup's
 * effective mems). -EROFS or -EACCES before anything is written when
 * cpuset.mems cannot be written. Before each write after the first, it
 * checks cpuset.mems is still what it wrote; when not, it stops writing
 * (RET->raced) and returns 0 with what the engine did, also when the engine
 * failed meanwhile (its moves to nodes outside those mems fail). Any other
 * failure after a write puts the old mems back (when still its own) and
 * returns -errno with only RET's old, widened, written, restored and
 * restore_r set. */
int nf_staged_move(const nf_cgroup *cg, const nf_migrate_opts *o, nf_staged *ret);
/* The same for a move cut short (a crash, a SIGKILL) after it widened CG's
 * mems from OLD to OLD u O->to: it moves from OLD and narrows to O->to.
 * -ESTALE, nothing written, when cpuset.mems is not that union (or the
 * kernel does not migrate on a write, where nothing is widened). A failure
 * puts OLD back. */
int nf_staged_resume(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_nodeset *old,
		     nf_staged *ret);
void nf_staged_done(nf_staged *s);

#endif
