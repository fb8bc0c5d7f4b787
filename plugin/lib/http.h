/* One HTTP request (libcurl): to the agent, over its unix socket or TCP, the
 * transport that the CLI and the OCI hook share; and the agent's own requests
 * to the Kubernetes API server over https (kevents.c). */
#ifndef NF_HTTP_H
#define NF_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
	const char *socket;	   /* the agent's unix socket, used when url is NULL */
	const char *url;	   /* "http://host:port" instead of the socket */
	const char *token;	   /* a bearer token, or NULL */
	const char *ca_file;	   /* https: the CA bundle the server's certificate must chain
				    * to (a cluster's ca.crt), and no other CA; NULL: the
				    * system's */
	const char *content_type;  /* of a body; NULL: application/json */
	long connect_ms, total_ms; /* total_ms 0: none (a stream) */
	/* A 2xx body as it comes (an event stream), instead of collected in the
	 * reply: each piece to on_data, which returns false to stop (the
	 * request then ends with 0). NULL: collected. */
	bool (*on_data)(const char *p, size_t n, void *userdata);
	void *on_data_data;
	/* when set, the request ends (-ECANCELED) within about a second of it
	 * turning true: a stop does not wait out total_ms */
	const _Atomic bool *abort;
} nf_http_peer;

typedef struct {
	long status;
	char *body; /* NUL-terminated, or NULL when the answer had none */
	size_t len;
	long retry_after_s; /* the answer's Retry-After in seconds (either form); 0: none */
	char error[256];    /* curl's words when the request failed */
	bool too_big;	    /* the answer passed 4 MiB: -EFBIG */
} nf_http_reply;

/* METHOD PATH with BODY (JSON, or NULL). Returns 0 when an answer came, whatever
 * its status; -ECONNREFUSED when nobody listens (no socket, refused),
 * -ETIMEDOUT, -EFBIG (an answer past 4 MiB), -ECANCELED (p->abort), -ENOMEM
 * or -EIO, with curl's message (or ours) in ret->error. */
int nf_http(const nf_http_peer *p, const char *method, const char *path, const char *body,
	    nf_http_reply *ret);
void nf_http_reply_done(nf_http_reply *r);
/* libcurl's global state, set up once by main() before any request and torn
 * down at its end; TLS only for a program that may speak https. */
int nf_http_setup(bool tls);
void nf_http_teardown(void);
/* S escaped for a URL path segment; NULL when out of memory. */
char *nf_http_escape(const char *s);

#endif
