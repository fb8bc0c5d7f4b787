/* What the NRI plugin decides, apart from any I/O: the registration it sends
 * the agent for a container (the OCI hook's body), and whether a CRI update
 * of a container's mems gets the gentle re-pin. Unit-tested
 * (tests/unit/test-nri.c). */
#ifndef NF_NRI_POLICY_H
#define NF_NRI_POLICY_H

#include "pb.h"
#include "../../cgroup/nodeset.h"

#include <json.h>
#include <stdbool.h>

/* The body of POST /v1/containers for C of POD, as the OCI hook sends it: id,
 * pid, status and the annotations, where the CRI's pod and container names are
 * added when the runtime's annotations lack them. NULL when C has no id or
 * pid, or out of memory. */
json_object *nf_nri_registration(const nf_pb_container *c, const nf_pb_pod *pod,
				 const char *status);

/* What the cgroup shows of the container beyond its spec: memory.min, .low
 * or .high set (kubelet's MemoryQoS writes them through `unified`); KNOWN
 * false when its files could not be read, and then no adjustment. */
typedef struct {
	bool known, unified_memory;
} nf_nri_cgroup_facts;

/* The container's cgroup under the cgroup2 mount, from its spec's
 * cgroupsPath: a path (the cgroupfs driver) as it is; "SLICE:PREFIX:NAME"
 * (the systemd driver) as systemd lays it out, each slice under its parent
 * ("a-b.slice" in "a.slice") and the scope "PREFIX-NAME.scope". Not
 * /proc/PID/cgroup, which a plugin in a container's cgroup namespace reads
 * relative to its own. NULL when it is neither, or out of memory. */
char *nf_nri_cgroup_path(const char *cgroups_path);

typedef enum {
	NF_REPIN_ADJUST,      /* answer with old u new, move, then narrow */
	NF_REPIN_OFF,	      /* the setting is off */
	NF_REPIN_NO_CHANGE,   /* the update sets no mems, or the same */
	NF_REPIN_WIDENS,      /* new mems include the old: the kernel moves nothing */
	NF_REPIN_NOT_RUNNING, /* the runtime only updates the spec */
	NF_REPIN_BAD_MEMS,    /* a node list that does not parse */
	NF_REPIN_SWAP,	      /* an adjusted update would lose kubelet's swap limit */
	NF_REPIN_UNIFIED,     /* ... or its unified values */
	NF_REPIN_NO_CGROUP,   /* its cgroup's memory files could not be read */
	NF_REPIN_COUNT
} nf_repin_verdict;

const char *nf_repin_verdict_text(nf_repin_verdict v);

/* The container's cgroup under the cgroup2 mount, from its spec's
 * cgroupsPath: a path (the cgroupfs driver) as it is; "SLICE:PREFIX:NAME"
 * (the systemd driver) as systemd lays it out, each slice under its parent
 * ("a-b.slice" in "a.slice") and the scope "PREFIX-NAME.scope". Not
 * /proc/PID/cgroup, which a plugin in a container's cgroup namespace reads
 * relative to its own. NULL when it is neither, or out of memory. */
char *nf_nri_cgroup_path(const char *cgroups_path);

/* Whether the update Q of container C (whose spec has the old mems; empty
 * means every node of ALL) gets the re-pin, and if so the nodes to answer
 * with (old u new) in *RET_UNION, the old and new in *RET_OLD, *RET_NEW. */
nf_repin_verdict nf_nri_repin_decide(bool enabled, const nf_pb_container *c,
				     const nf_pb_resources *q, const nf_nodeset *all,
				     const nf_nri_cgroup_facts *facts, nf_nodeset *ret_old,
				     nf_nodeset *ret_new, nf_nodeset *ret_union);

/* The container's mems in its spec (empty: not set). */
const char *nf_nri_spec_mems(const nf_pb_container *c);

/* One ContainerUpdate: container ID's mems to SET, nothing else. IGNORE:
 * ignore_failure, which the answer to UpdateContainer carries: when a plugin
 * called before (a resource policy) set the mems too, the runtime drops this
 * claim instead of failing the CRI call (NRI 0.6.1 pkg/adaptation/result.go,
 * update()). The caller frees it with nf_nri_update_free. */
nf_pb_update *nf_nri_mems_update(const char *id, const nf_nodeset *set, bool ignore);
void nf_nri_update_free(nf_pb_update *u);

#endif
