/* The gentle mover: moves the pages of thread groups between NUMA nodes with
 * batched move_pages(2) calls on a pool of worker threads. Unlike one
 * migrate_pages(2) per process, which holds the mm's mmap_lock for the whole
 * walk, move_pages takes it per page, so the process's own mmap/munmap wait for
 * one batch at most. Functions return 0 or -errno. */
#ifndef NF_MOVER_H
#define NF_MOVER_H

#include "progress.h"
#include "../../cgroup/nodeset.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What one move_pages(2) call should take when nf_move_opts.batch_pages is 0:
 * each worker times its calls and sizes the next one (in 4 KiB units, a THP
 * counting 512) to take about this long, from NF_MOVE_BATCH_FIRST units, within
 * [NF_MOVE_BATCH_MIN, NF_MOVE_BATCH_MAX]. move_pages takes the mmap_lock per
 * page, so a call's length is not what the workload waits for; what it bounds
 * is how late a cancel, the deadline or the rate limit is seen. Shorter calls
 * cost throughput where threads write the memory: 384 MiB took 5.6-5.7 s in
 * 5 ms calls, 2.7 s in 50 ms calls and 2.4-2.6 s in 4096-page calls (test VM,
 * docs/architecture.md, "Calls sized by time"). */
#define NF_MOVE_CALL_NS	    (UINT64_C(50) * 1000 * 1000)
#define NF_MOVE_BATCH_FIRST 256
#define NF_MOVE_BATCH_MIN   32
#define NF_MOVE_BATCH_MAX   16384
#define NF_MOVE_THREADS_MAX 8

typedef struct {
	int dest[NF_MAX_NODES]; /* where pages on node n go; -1 (or n): leave them */
	unsigned threads;	/* worker threads; 0: the online CPUs of the source nodes
				 * (sources, if any) and their destinations (all online
				 * CPUs if those have none), at most 8 */
	size_t batch_pages;	/* memory per call in 4 KiB pages (a 2 MiB page counts 512);
				 * 0: sized by time, NF_MOVE_CALL_NS per call */
	uint64_t call_ns;     /* with batch_pages 0, what a call should take; 0: NF_MOVE_CALL_NS */
	uint64_t max_rate;    /* bytes per second over all workers; 0: unthrottled */
	uint64_t deadline_ns; /* nf_now_ns() time to stop at; 0: none */
	const _Atomic bool *cancel; /* checked between batches */
	bool move_all;		    /* MPOL_MF_MOVE_ALL (shared pages; needs CAP_SYS_NICE) */
	bool reverse;		    /* the last task first, each from its top address down */
	/* Nodes that hold pages to move, for the default thread count; empty:
	 * every node with a destination. */
	nf_nodeset sources;
	/* Called every NF_PROGRESS_NS while the workers move (phase MOVE; done and
	 * total are the mover's own), from the calling thread; NULL: never. */
	nf_progress_fn progress;
	void *progress_data;
} nf_move_opts;

/* Why pages that should have moved stayed: the per-page status move_pages(2)
 * returned, or the error of the whole call for all of its pages. -ENOENT and
 * -EFAULT are no memory that stayed: 6.1 returns -EFAULT, not -ENOENT, for an
 * absent page of an anonymous mapping (follow_page with FOLL_DUMP), and for the
 * shared zero page, and for an address no longer mapped. */
typedef enum {
	NF_MOVE_EBUSY,	/* busy or pinned; also pages still on their source node */
	NF_MOVE_EACCES, /* shared without move_all, or the destination is outside
			 * the target task's cpuset (the whole call) */
	NF_MOVE_ENOMEM, /* the destination node is full */
	NF_MOVE_EIO,
	NF_MOVE_HIDDEN, /* present, but -ENOENT even after a touch: 6.1's follow_page()
			 * does not see through NUMA-balancing PROT_NONE PTEs */
	NF_MOVE_OTHER,
	NF_MOVE_ERR_COUNT
} nf_move_err;

const char *nf_move_err_name(nf_move_err e);

typedef struct {
	uint64_t moved_bytes; /* pages whose status came back as their destination */
	uint64_t stayed_bytes[NF_MOVE_ERR_COUNT];
	uint64_t calls, addresses; /* move_pages calls that moved, addresses passed */
	uint64_t query_calls;	   /* move_pages calls that only asked where pages are */
	uint64_t calls_paced;	   /* calls whose time sized the next one */
	uint64_t call_ns_max;	   /* the longest call that moved */
	/* in ranges too sparse to address page by page: left for the caller's
	 * migrate_pages sweep */
	uint64_t sparse_bytes;
	/* not attempted: the deadline or the cancel flag stopped the run */
	uint64_t left_bytes;
	size_t tasks, tasks_exited;
	int error; /* the first -errno that failed a whole task (not ESRCH), or 0 */
	bool deadline_hit, cancelled;
	unsigned threads;
	size_t batch_pages; /* fixed per call, or 0: sized by time */
	uint64_t scan_ns;   /* reading smaps, numa_maps and pagemap */
	uint64_t duration_ns;
} nf_move_result;

/* Opts that leave every node where it is; set dest[] after. */
void nf_move_opts_init(nf_move_opts *o);

/* Moves the pages of thread groups TGIDS (read and moved through a live thread
 * of each) that sit on nodes with a destination. Returns 0 when it ran (the
 * result says how well) or -errno when it could not start. */
int nf_move_pages(const pid_t *tgids, size_t n, const nf_move_opts *o, nf_move_result *ret);

#endif
