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
} nf_staged;

/* Moves CG to O->to in stages (O->from and has_from are set from the cgroup's
 * effective mems). -EROFS or -EACCES before anything is written when
 * cpuset.mems cannot be written; a failure after a write puts the old mems
 * back. */
int nf_staged_move(const nf_cgroup *cg, const nf_migrate_opts *o, nf_staged *ret);
void nf_staged_done(nf_staged *s);

#endif
