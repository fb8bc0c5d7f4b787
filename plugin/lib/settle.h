/* Waiting out the kernel's own migration after a cpuset.mems write. */
#ifndef NF_SETTLE_H
#define NF_SETTLE_H

#include "../../cgroup/cgroup.h"
#include "../../cgroup/residency.h"

#include <stdatomic.h>
#include <stdbool.h>

/* Whether the kernel migrates on a cpuset.mems write itself: always on v2,
 * with cpuset.memory_migrate=1 on v1 (0, or -errno when that cannot be read). */
int nf_kernel_migrates(const nf_cgroup *cg, bool *ret);
/* CG's memory.numa_stat where there is one (cheap): 0, -ENODATA on v1 or
 * without the memory controller, or another -errno. */
int nf_cgroup_numa_stat(const nf_cgroup *cg, nf_residency *ret);
/* Whether to stop waiting: nothing anonymous left OUTSIDE the target, the
 * placement unchanged for QUIET polls in a row, or past the limit. */
bool nf_settled(uint64_t outside, unsigned quiet, uint64_t waited_ns);
/* Where the kernel migrates in the writer's context, waits until CG's
 * placement settles (nf_settled), polling every 100 ms; stops early when
 * CANCEL is set. Where that cannot be known, it does not wait. */
void nf_settle(const nf_cgroup *cg, const nf_nodeset *to, unsigned nnodes,
	       const _Atomic bool *cancel);

#endif
