/* The migration engine: moves a cgroup's memory to a node set, verifies where
 * it ended up, retries the residue and says why what stayed, stayed. */
#ifndef NF_ENGINE_H
#define NF_ENGINE_H

#include "../../cgroup/cgroup.h"
#include "../../cgroup/residency.h"

typedef struct {
	nf_nodeset to;
	nf_nodeset from; /* previous mems, for the kernel's relative mapping */
	bool has_from;
	bool dry_run;
	unsigned retries;    /* extra sweeps of what verification finds left */
	unsigned backoff_ms; /* before the first retry; quadruples each time */
	bool no_descendants; /* only the cgroup's own processes */
	pid_t skip;	     /* not this process (a runtime's, about to exec), if > 0 */
	/* Set by another thread to stop between tasks (a newer change supersedes). */
	const _Atomic bool *cancel;
} nf_migrate_opts;

typedef struct {
	pid_t pid;
	int err; /* positive errno */
	const char *what;
} nf_task_error;

typedef struct {
	unsigned from, to;
	uint64_t bytes;
} nf_plan_step;

typedef struct {
	bool dry_run;
	bool cancelled; /* stopped early through opts.cancel */
	size_t tasks, tasks_migrated, tasks_exited, tasks_failed;
	uint64_t pages_not_moved; /* as the kernel counted them */
	unsigned sweeps;
	nf_residency before, after; /* of the tasks' mappings (numa_maps) */
	/* bytes outside the target after the run; in a dry run, now */
	uint64_t moved_bytes, residual_bytes;
	uint64_t residual[NF_STAY_COUNT];
	uint64_t duration_ns;
	nf_plan_step *plan;
	size_t n_plan;
	nf_task_error *errors;
	size_t n_errors;
} nf_migration;

/* The node set the kernel would let this process migrate to: its own
 * Mems_allowed (the kernel ANDs migrate_pages targets with it). */
int nf_self_mems(nf_nodeset *ret);
/* Online nodes that have memory. */
int nf_memory_nodes(nf_nodeset *ret);

/* Migrates every task of CG. Returns 0 when the migration ran (the report
 * says how well), or -errno when it could not start. */
int nf_migrate(const nf_cgroup *cg, const nf_migrate_opts *o, nf_migration *ret);
void nf_migration_done(nf_migration *m);

#endif
