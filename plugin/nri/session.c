/* One connection to the runtime's NRI socket (session.h). */
#include "session.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct call {
	struct call *next;
	uint32_t stream;
	uint64_t deadline_ns;
	nf_call_fn fn;
	void *userdata;
} call;

struct nf_session {
	int fd;
	nf_wire_reader in;
	nf_bytes out;
	uint32_t next_stream; /* the plugin's calls: odd ids, as a ttRPC client's */
	call *calls;
	nf_request_fn on_request;
	void *userdata;
};

int nf_session_new(int fd, nf_request_fn on_request, void *userdata, nf_session **ret)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	nf_session *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (nf_session){
	    .fd = fd, .next_stream = 1, .on_request = on_request, .userdata = userdata};
	*ret = s;
	return 0;
}

void nf_session_free(nf_session *s)
{
	if (!s)
		return;
	while (s->calls) {
		call *c = s->calls;
		s->calls = c->next;
		c->fn(s, -ECONNRESET, NULL, c->userdata);
		free(c);
	}
	nf_wire_reader_done(&s->in);
	nf_bytes_done(&s->out);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

int nf_session_fd(const nf_session *s)
{
	return s->fd;
}

void *nf_session_userdata(const nf_session *s)
{
	return s->userdata;
}

bool nf_session_wants_write(const nf_session *s)
{
	return s->out.len > s->out.off;
}

uint64_t nf_session_deadline(const nf_session *s)
{
	uint64_t d = 0;
	for (const call *c = s->calls; c; c = c->next)
		d = !d || c->deadline_ns < d ? c->deadline_ns : d;
	return d;
}

/* The pending call on STREAM, unlinked; NULL when none (a late answer). */
static call *take_call(nf_session *s, uint32_t stream)
{
	for (call **p = &s->calls; *p; p = &(*p)->next)
		if ((*p)->stream == stream) {
			call *c = *p;
			*p = c->next;
			return c;
		}
	return NULL;
}

static void on_response(nf_session *s, const nf_ttrpc_msg *m)
{
	call *c = take_call(s, m->h.stream);
	if (!c)
		return;
	Ttrpc__Response *rsp = ttrpc__response__unpack(NULL, m->h.length, m->payload);
	c->fn(s, rsp ? 0 : -EPROTO, rsp, c->userdata);
	if (rsp)
		ttrpc__response__free_unpacked(rsp, NULL);
	free(c);
}

/* A request of the runtime's. NRI's are all unary: a streaming one (flags)
 * or one that does not parse gets an error status, not a closed connection. */
static void on_request(nf_session *s, const nf_ttrpc_msg *m)
{
	Ttrpc__Request *q = ttrpc__request__unpack(NULL, m->h.length, m->payload);
	if (!q || m->h.flags & (NF_TTRPC_REMOTE_OPEN | NF_TTRPC_REMOTE_CLOSED)) {
		nf_session_reply(s, m->h.stream,
				 q ? NF_GRPC_UNIMPLEMENTED : NF_GRPC_INVALID_ARGUMENT,
				 q ? "streams are not supported" : "malformed request", NULL);
	} else {
		s->on_request(s, m->h.stream, q, s->userdata);
	}
	if (q)
		ttrpc__request__free_unpacked(q, NULL);
}

/* Routes one message: requests on the plugin's connection, responses on the
 * runtime's; anything else (data frames of streams never opened) is dropped,
 * as ttRPC drops frames of unknown streams. */
static void dispatch(nf_session *s, const nf_ttrpc_msg *m)
{
	if (m->conn == NF_MUX_PLUGIN && m->h.type == NF_TTRPC_REQUEST)
		on_request(s, m);
	else if (m->conn == NF_MUX_RUNTIME && m->h.type == NF_TTRPC_RESPONSE)
		on_response(s, m);
}

int nf_session_read(nf_session *s)
{
	uint8_t buf[16384];
	for (;;) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -errno;
		int e = nf_wire_feed(&s->in, buf, n);
		if (e < 0)
			return e;
		if ((size_t)n < sizeof(buf))
			break;
	}
	nf_ttrpc_msg m;
	int e;
	while ((e = nf_wire_next(&s->in, &m)) > 0)
		dispatch(s, &m);
	return e;
}

int nf_session_flush(nf_session *s)
{
	while (s->out.len > s->out.off) {
		/* MSG_NOSIGNAL: a runtime gone mid-write is an error here, not a SIGPIPE */
		ssize_t n =
		    send(s->fd, s->out.p + s->out.off, s->out.len - s->out.off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		s->out.off += n;
	}
	s->out.len = s->out.off = 0;
	return 0;
}

void nf_session_expire(nf_session *s, uint64_t now_ns)
{
	for (call **p = &s->calls; *p;) {
		call *c = *p;
		if (c->deadline_ns > now_ns) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		c->fn(s, -ETIMEDOUT, NULL, c->userdata);
		free(c);
	}
}

int nf_session_call(nf_session *s, const char *service, const char *method,
		    const ProtobufCMessage *msg, unsigned timeout_ms, nf_call_fn fn, void *userdata)
{
	call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t stream = s->next_stream;
	int e = nf_ttrpc_put_request(&s->out, NF_MUX_RUNTIME, stream, service, method, msg,
				     timeout_ms * INT64_C(1000000));
	if (e < 0)
		return free(c), e;
	s->next_stream += 2;
	*c = (call){.next = s->calls,
		    .stream = stream,
		    .deadline_ns = nf_now_ns() + timeout_ms * UINT64_C(1000000),
		    .fn = fn,
		    .userdata = userdata};
	s->calls = c;
	/* queued: FN will hear of it; a failed write ends the session, and
	 * with it the call, from the loop */
	nf_session_flush(s);
	return 0;
}

int nf_session_reply(nf_session *s, uint32_t stream, int code, const char *text,
		     const ProtobufCMessage *msg)
{
	int e = nf_ttrpc_put_response(&s->out, NF_MUX_PLUGIN, stream, code, text, msg);
	return e < 0 ? e : nf_session_flush(s);
}
