/* libcgroup (2.0.2), wrapped at this one edge: what the cgroup layer takes
 * from it, in the project's 0/-errno convention. Only cgroup/libcg.c includes
 * <libcgroup.h>. */
#ifndef NF_LIBCG_H
#define NF_LIBCG_H

/* libcgroup's result (0, or one of its positive ECG* codes; ECGOTHER carries
 * the errno of the thread's last failure) as 0 or -errno. */
int nf_libcg_errno(int ecg);
/* Reads the mounted hierarchies once (cgroup_init: /proc/cgroups, /proc/mounts
 * and each cgroup2 mount's cgroup.controllers), with libcgroup's logging off:
 * its default logger writes to stdout, which is the CLI's JSON and the text
 * runc folds into a hook's error. It rewrites libcgroup's global mount table
 * (under libcgroup's own lock): call it once, before other threads use
 * libcgroup. */
int nf_libcg_init(void);
/* Where CONTROLLER's hierarchy is mounted, as of nf_libcg_init: -ENOENT when
 * no mounted hierarchy offers it. */
int nf_libcg_mount(const char *controller, char **ret);

#endif
