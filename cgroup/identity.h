/* Which container a cgroup belongs to, from the names runtimes and kubelet
 * give their cgroups (BRIEF.md section 4). */
#ifndef NF_IDENTITY_H
#define NF_IDENTITY_H

#include <stdbool.h>

typedef struct {
	char runtime[16]; /* docker, podman, containerd, crio, or "" when unknown */
	char id[256];	  /* the container id; the cgroup path when no pattern matched */
	char pod_uid[40]; /* kubelet pods only */
	bool skip;	  /* a runtime's helper (conmon), not a container */
} nf_identity;

/* REL is the cgroup's path inside the hierarchy ("/a/b"). Always succeeds for
 * paths that fit; -ENAMETOOLONG otherwise. */
int nf_identify(const char *rel, nf_identity *ret);

#endif
