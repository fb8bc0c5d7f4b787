/* What the hook told about a container (agent.h's nf_registration), apart
 * from the agent, so that tests/fuzz/fake-agent.c links the real one. */
#include "agent.h"

#include <stdlib.h>

void nf_registration_free(nf_registration *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->name);
	free(r->pod_uid);
	free(r->pod_name);
	free(r->pod_namespace);
	free(r->bundle);
	free(r->status);
	json_object_put(r->annotations);
	free(r);
}
