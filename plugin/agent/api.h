/* numafollowd's HTTP/JSON API (libmicrohttpd): a unix socket, and optionally
 * TCP that is read-only unless a bearer token is configured. */
#ifndef NF_API_H
#define NF_API_H

#include "agent.h"
#include "kevents.h"

#include <sys/types.h>

typedef struct {
	const char *socket_path;
	const char *socket_group; /* may mutate, besides root; NULL: the agent's group */
	const char *listen;	  /* "ADDR:PORT" or NULL */
	const char *token;	  /* for mutations over TCP; NULL: TCP is read-only */
	json_object *self_check;  /* served in /v1/status */
	nf_kevents *kevents;	  /* its counters in /v1/status and /metrics; NULL: off */
	struct nf_stream *stream; /* GET /v1/events; closed by nf_api_stop */
} nf_api_config;

typedef struct nf_api nf_api;

int nf_api_start(nf_agent *a, const nf_api_config *cfg, nf_api **ret);
void nf_api_stop(nf_api *api);

#endif
