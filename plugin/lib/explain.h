/* Why memory stayed outside the target, and what would move it: one line per
 * class of residue, for the CLI's report, the agent's record and metrics. */
#ifndef NF_EXPLAIN_H
#define NF_EXPLAIN_H

#include "engine.h"

#define NF_REASONS_MAX 12

/* Classes of residue; their names are stable (JSON, metric labels). */
typedef enum {
	NF_WHY_DEADLINE,   /* not tried: the run's deadline came first */
	NF_WHY_SUPERSEDED, /* not tried: a newer change stopped the run */
	NF_WHY_NO_MEMORY,  /* move_pages: -ENOMEM, the target node is full */
	NF_WHY_DENIED,	   /* move_pages: -EACCES */
	NF_WHY_IO_ERROR,   /* move_pages: -EIO */
	NF_WHY_SHARED,	   /* numa_maps: mapped by several processes */
	NF_WHY_PINNED,	   /* numa_maps: private, could not be isolated */
	NF_WHY_FILE,	   /* numa_maps: page cache */
	NF_WHY_HUGETLB,	   /* numa_maps: hugetlb */
	NF_WHY_COUNT
} nf_why;
const char *nf_why_name(nf_why w);
int nf_why_parse(const char *s, nf_why *ret);

typedef struct {
	nf_why why;
	uint64_t bytes;
	char text[240]; /* "41.0 MiB mapped by several processes: ..." */
} nf_reason;

/* The reasons for M's residue towards TO, biggest first; how many. Where the
 * residue is nothing, nothing is said, whatever the mover met on the way. */
size_t nf_explain(const nf_migration *m, const nf_nodeset *to, nf_reason ret[NF_REASONS_MAX]);

#endif
