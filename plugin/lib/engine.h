/* The migration engine: moves a cgroup's memory to a node set, verifies where
 * it ended up, retries the residue and says why what stayed, stayed. */
#ifndef NF_ENGINE_H
#define NF_ENGINE_H

#include "mover.h"
#include "../../cgroup/cgroup.h"
#include "../../cgroup/residency.h"

/* How the bulk of a migration moves. migrate_pages(2) is one call per
 * process that holds its mmap_lock for the whole walk: the process's own
 * mmap/munmap wait for the whole move. move_pages(2) in batches on a pool of
 * threads (mover.h) takes it per page. AUTO gives the bulk of a task with at
 * least NF_GENTLE_MIN_BYTES to move to move_pages, the rest (small tasks,
 * sparse mappings, stragglers) to migrate_pages sweeps. */
typedef enum { NF_METHOD_AUTO, NF_METHOD_MIGRATE_PAGES, NF_METHOD_MOVE_PAGES } nf_method;
/* Below this a task's migrate_pages freeze is a few ms on hardware (the
 * engine moves several GB/s there; ~16 MiB took 40-80 ms in the emulated
 * VM), less than the mover's own scan and thread start. */
#define NF_GENTLE_MIN_BYTES (UINT64_C(16) << 20)
const char *nf_method_name(nf_method m);
int nf_method_parse(const char *s, nf_method *ret);

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
	nf_method method;
	unsigned threads;     /* move_pages workers; 0: the mover's default */
	size_t batch_pages;   /* per move_pages call; 0: the mover's default */
	uint64_t max_rate;    /* bytes per second the mover may move; 0: unthrottled */
	uint64_t deadline_ns; /* nf_now_ns() time to stop at, what is left reported; 0: none */
	/* Told how far the run is, at each phase and every NF_PROGRESS_NS while
	 * the bulk moves, from the calling thread; NULL: never. */
	nf_progress_fn progress;
	void *progress_data;
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
	bool cancelled;	   /* stopped early through opts.cancel */
	bool deadline_hit; /* stopped early at opts.deadline_ns */
	bool target_full;  /* migrate_pages said -ENOMEM: a target node is full */
	size_t tasks, tasks_migrated, tasks_exited, tasks_failed;
	uint64_t pages_not_moved; /* as the kernel counted them */
	unsigned sweeps;
	nf_residency before, after; /* of the tasks' mappings (numa_maps) */
	/* bytes outside the target after the run; in a dry run, now */
	uint64_t moved_bytes, residual_bytes;
	uint64_t residual[NF_STAY_COUNT];
	/* the mover's share: what it moved, and why pages it addressed stayed
	 * (move_pages' per-page status) */
	nf_method method; /* what moved the bulk */
	bool sys_nice;	  /* numafollow had CAP_SYS_NICE (shared pages could move) */
	unsigned threads;
	uint64_t gentle_bytes, gentle_ns;
	uint64_t stayed[NF_MOVE_ERR_COUNT];
	uint64_t duration_ns;
	nf_plan_step *plan;
	size_t n_plan;
	nf_task_error *errors;
	size_t n_errors;
} nf_migration;

/* The node set the kernel would let this process migrate to: its own
 * Mems_allowed (the kernel ANDs migrate_pages targets with it). */
int nf_self_mems(nf_nodeset *ret);
/* Whether capability CAP (CAP_SYS_NICE...) is in this process's effective set. */
bool nf_self_capable(unsigned cap);
/* Online nodes that have memory. */
int nf_memory_nodes(nf_nodeset *ret);

/* Migrates every task of CG. Returns 0 when the migration ran (the report
 * says how well), or -errno when it could not start. */
int nf_migrate(const nf_cgroup *cg, const nf_migrate_opts *o, nf_migration *ret);
void nf_migration_done(nf_migration *m);

/* Moves CG's pages from O->from to O->to with the mover alone, beside the
 * kernel's own migration of the same change (a v2 cpuset.mems write), to the
 * destinations of the kernel's relative mapping and only from nodes outside
 * O->to: no page is moved twice or back. The kernel migrates one task after
 * another in cgroup.procs order, holding each mm's mmap_lock for the whole
 * of it; the mover takes the tasks the other way round (and each from the top
 * down, nf_move_opts.reverse), so the two meet. The result counts what moved
 * (moved_bytes, tasks, tasks_exited, cancelled, threads, duration_ns). Uses
 * O's threads, max_rate, cancel, no_descendants; no verification (the kernel
 * is still at work). */
/* Pages per call of an assist. The kernel isolates all of a task's pages on
 * a source node before it copies any (6.1, migrate_to_node()), and pages it
 * isolated are not the mover's to take: what the mover gets is what its calls
 * isolate first, from the top while the kernel walks up from the bottom. One
 * large call races that walk; small ones would each wait for a copy. */
#define NF_ASSIST_BATCH 65536
int nf_assist(const nf_cgroup *cg, const nf_migrate_opts *o, nf_move_result *ret);

#endif
