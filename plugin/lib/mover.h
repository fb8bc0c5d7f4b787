/* The gentle mover: moves the pages of thread groups between NUMA nodes with
 * batched move_pages(2) calls on a pool of worker threads. Unlike one
 * migrate_pages(2) per process, which holds the mm's mmap_lock for the whole
 * walk, move_pages takes it per page, so the process's own mmap/munmap wait for
 * one batch at most. Functions return 0 or -errno. */
#ifndef NF_MOVER_H
#define NF_MOVER_H

#include "../../cgroup/nodeset.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Memory per move_pages(2) call when nf_move_opts.batch_pages is 0, in 4 KiB
 * pages. Measured: a call costs ~45 us plus ~275 ns per page on the host (6.18)
 * and calls of 256 pages ran at half the rate of 4096 in the VM (6.1, 2 vCPUs);
 * 4096 (16 MiB) and 16384 were alike in rate, and the probe's worst wait stayed
 * 8-28 ms up to 4096 on one process. Smaller batches buy nothing in waits. */
#define NF_MOVE_BATCH_DEFAULT 4096
#define NF_MOVE_THREADS_MAX   8

typedef struct {
	int dest[NF_MAX_NODES];	    /* where pages on node n go; -1 (or n): leave them */
	unsigned threads;	    /* worker threads; 0: the online CPUs of the destination
				     * nodes (all online CPUs if those have none), at most 8 */
	size_t batch_pages;	    /* memory per call in 4 KiB pages (a 2 MiB page counts 512);
				     * 0: NF_MOVE_BATCH_DEFAULT */
	uint64_t max_rate;	    /* bytes per second over all workers; 0: unthrottled */
	uint64_t deadline_ns;	    /* nf_now_ns() time to stop at; 0: none */
	const _Atomic bool *cancel; /* checked between batches */
	bool move_all;		    /* MPOL_MF_MOVE_ALL (shared pages; needs CAP_SYS_NICE) */
	bool reverse;		    /* the last task first, each from its top address down */
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
	/* in ranges too sparse to address page by page: left for the caller's
	 * migrate_pages sweep */
	uint64_t sparse_bytes;
	/* not attempted: the deadline or the cancel flag stopped the run */
	uint64_t left_bytes;
	size_t tasks, tasks_exited;
	int error; /* the first -errno that failed a whole task (not ESRCH), or 0 */
	bool deadline_hit, cancelled;
	unsigned threads;
	size_t batch_pages;
	uint64_t scan_ns; /* reading smaps, numa_maps and pagemap */
	uint64_t duration_ns;
} nf_move_result;

/* Opts that leave every node where it is; set dest[] after. */
void nf_move_opts_init(nf_move_opts *o);

/* Moves the pages of thread groups TGIDS (read and moved through a live thread
 * of each) that sit on nodes with a destination. Returns 0 when it ran (the
 * result says how well) or -errno when it could not start. */
int nf_move_pages(const pid_t *tgids, size_t n, const nf_move_opts *o, nf_move_result *ret);

#endif
