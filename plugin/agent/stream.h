/* GET /v1/events: the agent's events as server-sent events, to every client
 * that follows them. Publishers (the workers, the event loop, a migration's
 * progress callback) copy an event once; each client holds at most
 * queue_max of them by reference, so a client that stops reading costs a
 * bounded queue: when it is full, the client's queue is emptied and its next
 * read says how many events it lost (`event: lost`). A publisher never waits
 * for a client. One mutex of its own guards it all; it calls only the
 * clients' sleep and wake under it, and nothing else locks after it.
 *
 * Transport-free: api.c gives each client a waker (libmicrohttpd's suspend
 * and resume of its connection) and a read function for its reply. */
#ifndef NF_STREAM_H
#define NF_STREAM_H

#include <json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct nf_stream nf_stream;
typedef struct nf_stream_client nf_stream_client;

/* How a reader that found nothing to read waits: SLEEP when it found the
 * queue empty, WAKE when there is something again; both called with the
 * stream's lock held, WAKE only after a SLEEP. */
typedef struct {
	void (*sleep)(void *ctx);
	void (*wake)(void *ctx);
	void *ctx;
} nf_stream_waker;

typedef struct {
	size_t clients;
	uint64_t published; /* events published while someone listened */
	uint64_t lost;	    /* events dropped from the queues of clients that fell behind */
	size_t queued_max;  /* the longest queue of a client now */
} nf_stream_stats;

#define NF_STREAM_QUEUE	  256 /* events per client, by default */
#define NF_STREAM_CLIENTS 32  /* clients at once */

/* QUEUE_MAX events per client (at least 1), CLIENTS_MAX clients. */
int nf_stream_new(size_t queue_max, size_t clients_max, nf_stream **ret);
/* After nf_stream_close and once every client has left. */
void nf_stream_free(nf_stream *s);
/* Whether anyone follows (a hint, read without the lock): publishers need not
 * build an event nobody reads. False for a NULL stream. */
bool nf_stream_listened(const nf_stream *s);
/* Sends event TYPE with DATA (JSON, one line) to every client; S may be NULL. */
void nf_stream_publish(nf_stream *s, const char *type, json_object *data);
/* A comment line to every client, so that a client gone away is noticed. */
void nf_stream_ping(nf_stream *s);
/* -EBUSY: CLIENTS_MAX follow already; -ESHUTDOWN: closed; -ENOMEM. */
int nf_stream_join(nf_stream *s, const nf_stream_waker *w, nf_stream_client **ret);
void nf_stream_leave(nf_stream_client *c);
/* Up to MAX bytes of C's next events, as text/event-stream. 0: nothing now,
 * and the waker's sleep was called; -EPIPE: the stream is closed. */
ssize_t nf_stream_read(nf_stream_client *c, char *buf, size_t max);
/* Readers get -EPIPE from now on (each sleeping one is woken); no one joins. */
void nf_stream_close(nf_stream *s);
void nf_stream_stats_get(nf_stream *s, nf_stream_stats *ret);

#endif
