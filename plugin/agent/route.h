/* The agent's HTTP API apart from its transport: a request as plain values
 * in, a reply as plain values out. api.c reads them off libmicrohttpd and
 * sends the reply; tests/fuzz/fuzz-api.c calls it with no socket at all. */
#ifndef NF_ROUTE_H
#define NF_ROUTE_H

#include "agent.h"
#include "kevents.h"

#include <stdbool.h>
#include <stddef.h>

#define NF_API_MAX_BODY (64 * 1024)
/* The list's memory figures are at most this old: fresher than the reconcile's
 * (30 s), and each container is sampled at most once in this time however
 * often the list is asked for. The samples are taken with the agent's lock
 * held, as the reconcile's are, a batch of containers per hold
 * (agent-internal.h, the lock rule; "lock" in /v1/status says how long).
 * Metrics keep the reconcile's figures. */
#define NF_LIST_MAX_AGE_MS 5000
/* Bodies over NF_API_MAX_BODY are read and dropped, to answer 413 on a
 * connection the client still reads; past this they are not worth reading. */
#define NF_API_DISCARD_MAX (1024 * 1024)

typedef struct {
	nf_agent *a;
	bool tcp;		  /* only /healthz and /metrics are served without the token */
	const char *token;	  /* for everything else over TCP; NULL: TCP is read-only */
	json_object *self_check;  /* served in /v1/status */
	nf_kevents *kevents;	  /* Kubernetes events, or NULL when off */
	struct nf_stream *stream; /* GET /v1/events' counters in /v1/status, or NULL */
} nf_endpoint;

/* A query argument, percent-decoded, or NULL when the query has none. */
typedef const char *(*nf_query_fn)(void *userdata, const char *key);

typedef struct {
	const char *method;
	const char *path; /* percent-decoded by nf_route_unescape, without the query */
	nf_query_fn query;
	void *userdata;
	/* The headers that matter: the first of each, or NULL; and how many
	 * Content-Length and Transfer-Encoding headers there were. */
	const char *authorization, *content_length;
	unsigned n_content_length, n_transfer_encoding;
	/* Over the unix socket, why the peer may not change things (SO_PEERCRED);
	 * NULL when it may. Over TCP the token decides and this is NULL. */
	const char *refused;
	const char *body; /* NUL-terminated, or NULL when there is none */
	size_t len;
	bool too_big; /* over NF_API_MAX_BODY: the body was dropped */
} nf_request;

typedef struct {
	unsigned status;
	const char *type;	    /* Content-Type */
	char *text;		    /* the body, to free; NULL when out of memory */
	const char *header, *value; /* one more header (Allow, WWW-Authenticate), or NULL */
	bool stream; /* 200 to GET /v1/events: the transport follows the event stream */
} nf_reply;

/* The checks made as soon as the headers are in, before the body is read:
 * the body's framing and its declared length. True, with the answer in
 * *ret, when they settle the request. */
bool nf_route_head(const nf_request *q, nf_reply *ret);
/* The answer to a request whose body is in. */
nf_reply nf_route(const nf_endpoint *ep, const nf_request *q);
/* Percent-decodes S in place as libmicrohttpd does, except that %00 stays as
 * it is; returns the new length. For the path and the query's arguments. */
size_t nf_route_unescape(char *s);

#endif
