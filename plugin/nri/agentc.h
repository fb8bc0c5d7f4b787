/* The NRI plugin's side of numafollowd's API: registrations sent on a thread
 * of their own, so that an agent that is slow or gone never holds up an
 * answer to the runtime; and the calls a re-pin makes (migrate, poll). */
#ifndef NF_NRI_AGENTC_H
#define NF_NRI_AGENTC_H

#include "../lib/http.h"

#include <json.h>
#include <stdint.h>

typedef struct nf_agentq nf_agentq;

/* Starts the thread that talks to the agent at SOCKET. Every CHECK_S seconds
 * without work it asks the agent's uptime: an agent that restarted lost its
 * registrations (they are not journaled), and they are sent again. */
int nf_agentq_start(const char *socket, unsigned check_s, nf_agentq **ret);
/* Stops it; what is queued is dropped. */
void nf_agentq_stop(nf_agentq *q);
/* Queues POST /v1/containers with BODY (taken), the OCI hook's request. The
 * last body of each container is kept: when the agent was unreachable, they
 * are sent again once it answers. */
void nf_agentq_register(nf_agentq *q, const char *id, json_object *body);
/* Queues DELETE /v1/containers/ID and forgets its body. */
void nf_agentq_unregister(nf_agentq *q, const char *id);

/* One request to the agent, with TIMEOUT_MS in all (nf_http's returns). */
int nf_agent_request(const char *socket, const char *method, const char *path, const char *body,
		     long timeout_ms, nf_http_reply *ret);

#endif
