/* json-c helpers shared by the CLI and the agent. */
#ifndef NF_JSON_H
#define NF_JSON_H

#include "../cgroup/nodeset.h"

#include <json.h>

/* A node set as the kernel's list string ("0-1,3"). */
static inline json_object *nf_json_nodeset(const nf_nodeset *s)
{
	char buf[NF_NODESET_STRLEN];
	return json_object_new_string(nf_nodeset_format(s, buf, sizeof(buf)));
}

#endif
