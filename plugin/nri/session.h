/* One connection to the runtime's NRI socket: non-blocking reads and writes
 * on the trunk, the runtime's requests handed to a handler, the plugin's own
 * calls matched to their responses by stream id, each with a deadline. Driven
 * by the plugin's poll loop (main.c); nothing here blocks. */
#ifndef NF_NRI_SESSION_H
#define NF_NRI_SESSION_H

#include "ttrpc.h"
#include "ttrpc/request.pb-c.h"

#include <stdint.h>

typedef struct nf_session nf_session;

/* A response to one of the plugin's calls: ERR 0 with the runtime's RSP (its
 * status may still say an error), or -ETIMEDOUT, -ECONNRESET (the session
 * ended first), -EPROTO (an unreadable response), RSP then NULL. */
typedef void (*nf_call_fn)(nf_session *s, int err, const Ttrpc__Response *rsp, void *userdata);

/* A request of the runtime's on connection 1: the handler answers it with
 * nf_session_reply() (now or later) on STREAM. */
typedef void (*nf_request_fn)(nf_session *s, uint32_t stream, const Ttrpc__Request *q,
			      void *userdata);

/* Takes FD (a connected stream socket, made non-blocking here). */
int nf_session_new(int fd, nf_request_fn on_request, void *userdata, nf_session **ret);
/* Ends every pending call with -ECONNRESET, closes the fd. */
void nf_session_free(nf_session *s);
int nf_session_fd(const nf_session *s);
void *nf_session_userdata(const nf_session *s);
/* Whether bytes wait to be written (poll for POLLOUT). */
bool nf_session_wants_write(const nf_session *s);
/* The earliest deadline of a pending call, in nf_now_ns() time; 0: none. */
uint64_t nf_session_deadline(const nf_session *s);

/* Reads what the trunk has and dispatches it. -ECONNRESET at end of file,
 * -EMSGSIZE, -EPROTO (a frame the plugin cannot follow), -errno. */
int nf_session_read(nf_session *s);
/* Writes what it can. -EPIPE, -errno. */
int nf_session_flush(nf_session *s);
/* Ends the calls whose deadline passed with -ETIMEDOUT. */
void nf_session_expire(nf_session *s, uint64_t now_ns);

/* Calls SERVICE/METHOD on the runtime's server (connection 2) with MSG;
 * FN gets the outcome once, within TIMEOUT_MS. */
int nf_session_call(nf_session *s, const char *service, const char *method,
		    const ProtobufCMessage *msg, unsigned timeout_ms, nf_call_fn fn,
		    void *userdata);
/* Answers request STREAM: MSG when CODE is NF_GRPC_OK, else the error. */
int nf_session_reply(nf_session *s, uint32_t stream, int code, const char *text,
		     const ProtobufCMessage *msg);

#endif
