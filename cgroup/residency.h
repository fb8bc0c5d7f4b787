/* Where memory sits: per-node bytes from memory.numa_stat or numa_maps. */
#ifndef NF_RESIDENCY_H
#define NF_RESIDENCY_H

#include "cgroup.h"
#include "nodeset.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct {
	uint64_t anon[NF_MAX_NODES]; /* bytes */
	uint64_t file[NF_MAX_NODES];
} nf_residency;

/* Why pages outside a target may have stayed, as far as numa_maps tells. */
typedef enum {
	NF_STAY_ANON,	/* private anonymous: busy, pinned or isolated by someone else */
	NF_STAY_FILE,	/* file-backed page cache mapped by this task */
	NF_STAY_SHARED, /* mapped by several processes (moves only with CAP_SYS_NICE) */
	NF_STAY_HUGE,	/* hugetlb pages: the target needs free huge pages */
	NF_STAY_COUNT
} nf_stay_class;

const char *nf_stay_class_name(nf_stay_class c);

uint64_t nf_residency_node(const nf_residency *r, unsigned node);
/* Bytes on nodes outside TARGET. */
uint64_t nf_residency_outside(const nf_residency *r, const nf_nodeset *target);
void nf_residency_add(nf_residency *sum, const nf_residency *r);
/* Nodes that hold any memory. */
void nf_residency_nodes(const nf_residency *r, nf_nodeset *ret);

/* Parses cgroup v2 memory.numa_stat ("anon N0=<bytes> N1=<bytes>"). */
int nf_numa_stat_parse(const char *text, nf_residency *ret);
/* Parses cgroup v1 memory.numa_stat: the hierarchical_anon and
 * hierarchical_file rows ("hierarchical_anon=<pages> N0=<pages> ..."). */
int nf_numa_stat_v1_parse(const char *text, nf_residency *ret);
/* What a task's numa_maps says: where its memory is and, by class, how much
 * of it is outside a target. */
typedef struct {
	nf_residency res;
	uint64_t stay[NF_STAY_COUNT]; /* bytes outside the target (none without one) */
} nf_task_maps;

/* One line of numa_maps, "<start> <policy> [tokens]": the VMA's pages per
 * node and what the kernel says of them. The one parser of numa_maps lines
 * (the mover reads them too). */
typedef struct {
	uint64_t start;
	uint64_t pages[NF_MAX_NODES]; /* nodes [0, top) */
	unsigned top;
	uint64_t page_kb; /* kernelpagesize_kB, 4 unless said */
	uint64_t anon, mapmax;
	bool file, huge;
} nf_numa_vma;
/* Parses the line [LINE, EOL), which ends at EOL or at its newline. -EBADMSG without a start,
 * -ERANGE for a node number out of range or a count that overflows bytes. */
int nf_numa_vma_parse(const char *line, const char *eol, nf_numa_vma *ret);
/* Parses /proc/PID/numa_maps, with the bytes outside TARGET (optional) by
 * class. Page sizes come from kernelpagesize_kB. */
int nf_numa_maps_parse(const char *text, const nf_nodeset *target, nf_task_maps *ret);
/* A live thread of thread group PID: PID itself unless the leader has exited
 * before the other threads (its numa_maps is then empty). -ESRCH when gone. */
int nf_task_thread(pid_t pid, pid_t *ret_tid);
/* Reads and parses /proc/PID/task/TID/numa_maps. -ESRCH when the task is gone. */
int nf_task_numa_maps(pid_t pid, pid_t tid, const nf_nodeset *target, nf_task_maps *ret);
/* The sum of TASKS' numa_maps (tasks gone meanwhile are skipped). */
int nf_tasks_residency(const pid_t *tasks, size_t n, nf_residency *ret);
/* cgroup v1: memory.numa_stat of TASK's memory cgroup when it has CG's path
 * (-EXDEV when not, -ENOENT without a memory hierarchy). LRU pages, children
 * included: page cache and shmem count, unlike in numa_maps. */
int nf_cgroup_v1_stat(const nf_cgroup *cg, pid_t task, nf_residency *ret);

typedef enum { NF_SRC_NUMA_STAT, NF_SRC_NUMA_MAPS } nf_residency_source;
/* A cgroup's memory: memory.numa_stat where the memory controller offers it
 * (v2; v1 where the tasks' memory cgroup has the cpuset cgroup's path, as
 * runtimes make it: what `numafollow show` reports), else the sum of its
 * tasks' numa_maps. */
int nf_cgroup_residency(const nf_cgroup *cg, const pid_t *tasks, size_t n, nf_residency *ret,
			nf_residency_source *ret_source);

#endif
