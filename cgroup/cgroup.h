/* Where the cpuset controller lives, and the cgroups in it. */
#ifndef NF_CGROUP_H
#define NF_CGROUP_H

#include "nodeset.h"

#include <stdio.h>
#include <sys/types.h>

typedef enum { NF_CG_V1 = 1, NF_CG_V2 = 2 } nf_cgroup_version;

typedef struct {
	nf_cgroup_version version;
	char *mount;  /* mount point of the hierarchy that holds cpuset */
	char *memory; /* v1: mount point of the memory hierarchy, or NULL */
} nf_hierarchy;

typedef struct {
	const nf_hierarchy *h;
	char *path; /* absolute file system path */
	char *rel;  /* path inside the hierarchy, "/" for its root */
} nf_cgroup;

/* Finds the hierarchy that holds cpuset (through libcgroup: cgroup/libcg.h),
 * v1 on hybrid hosts: -ENOENT when none does. Once per process, before any
 * other thread uses libcgroup. */
int nf_hierarchy_detect(nf_hierarchy *ret);
void nf_hierarchy_done(nf_hierarchy *h);
const char *nf_hierarchy_name(const nf_hierarchy *h);

/* Lexically turns ARG (a path inside the hierarchy, or an absolute path under
 * MOUNT) into "/a/b". "." and empty components go; ".." is refused (-EXDEV). */
int nf_cgroup_normalize(const char *mount, const char *arg, char **ret_rel);
/* Normalizes ARG and checks the directory really is that cgroup: -ENOENT when
 * missing, -EXDEV when a symlink leads elsewhere, -ENOTDIR when not a cgroup. */
int nf_cgroup_open(const nf_hierarchy *h, const char *arg, nf_cgroup *ret);
void nf_cgroup_done(nf_cgroup *cg);

/* mems as written (v2: empty means inherited; not read when RET_MEMS is NULL)
 * and as in effect. */
int nf_cgroup_read_mems(const nf_cgroup *cg, nf_nodeset *ret_mems, nf_nodeset *ret_effective);
/* Whether cpuset.mems may be written: -EROFS (a read-only cgroup mount, as a
 * DaemonSet's), -EACCES, -ENOENT, else 0. Nothing is opened, so no watcher
 * sees a write. */
int nf_cgroup_mems_writable(const nf_cgroup *cg);
/* Writes SET to cpuset.mems, as one write(2) (on v2 the kernel migrates
 * within it; it returns when that is done). */
int nf_cgroup_write_mems(const nf_cgroup *cg, const nf_nodeset *set);
/* Thread-group ids of the cgroup and (with RECURSIVE) all its descendants,
 * sorted, unique. */
int nf_cgroup_tasks(const nf_cgroup *cg, bool recursive, pid_t **ret, size_t *ret_n);

/* Finds the cpuset cgroup's path in /proc/PID/cgroup text. -ENOENT when absent. */
int nf_proc_cgroup_parse(const char *text, nf_cgroup_version v, char **ret_rel);
/* PID's cpuset cgroup, as the kernel says: -ESRCH for no such process,
 * -ENOENT when /proc/PID/cgroup has no cpuset line. */
int nf_pid_cgroup(pid_t pid, nf_cgroup_version v, char **ret_rel);
/* PID's cgroup in the v1 memory hierarchy; -ENOENT when there is none. */
int nf_pid_memcg(pid_t pid, char **ret_rel);

#endif
