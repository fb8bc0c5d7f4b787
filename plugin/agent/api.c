/* libmicrohttpd's side of the API: the listeners, reading a request (its
 * headers, its body up to NF_API_MAX_BODY, the peer's credentials) and
 * sending the reply that route.c makes of it. Nothing here decides what a
 * request means. */
#include "api.h"
#include "route.h"
#include "stream.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <arpa/inet.h>
#include <grp.h>
#include <libgen.h>
#include <pthread.h>
#include <microhttpd.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

typedef struct {
	nf_endpoint core;
	gid_t group; /* may change things over the unix socket, besides root */
} endpoint;

struct nf_api {
	struct MHD_Daemon *unix_d, *tcp_d;
	endpoint unix_ep, tcp_ep;
	char *socket_path, *token;
	int lock_fd; /* PATH.lock, held for life: one agent per socket */
	struct nf_stream *stream;
	/* pings the event stream's clients, so that one gone away is noticed
	 * (a suspended connection is not polled) */
	pthread_t pinger;
	bool pinging, stop;
	pthread_mutex_t ping_lock;
	pthread_cond_t ping_cond;
};

typedef struct {
	char *body;
	size_t len, seen;
} request;

/* Sends R's text (and frees it). */
static enum MHD_Result send_text(struct MHD_Connection *conn, nf_reply r)
{
	if (!r.text)
		return MHD_NO;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(r.text), r.text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
	if (r.header)
		MHD_add_response_header(resp, r.header, r.value);
	enum MHD_Result ret = MHD_queue_response(conn, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- the event stream (GET /v1/events) ---- */

/* A client of the stream: libmicrohttpd's connection stops being polled while
 * the client has nothing to read (suspended), and is resumed by a publisher,
 * on any thread (stream.h's waker). */
typedef struct {
	struct MHD_Connection *conn;
	nf_stream_client *c;
} follower;

static void follower_sleep(void *ctx)
{
	MHD_suspend_connection(((follower *)ctx)->conn);
}

static void follower_wake(void *ctx)
{
	MHD_resume_connection(((follower *)ctx)->conn);
}

static ssize_t follower_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	follower *f = cls;
	(void)pos;
	ssize_t n = nf_stream_read(f->c, buf, max);
	return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

/* When the connection ends, whatever ended it. */
static void follower_free(void *cls)
{
	follower *f = cls;
	nf_stream_leave(f->c);
	free(f);
}

/* What a client that stops reading may hold in the kernel: the rest waits in
 * its bounded queue, then is dropped (stream.h), and libmicrohttpd closes a
 * connection that takes nothing for its timeout (10 s). */
#define FOLLOWER_SNDBUF (8 * 1024)

static enum MHD_Result follow(struct MHD_Connection *conn, struct nf_stream *s, nf_reply r)
{
	follower *f = calloc(1, sizeof(*f));
	int err = f ? 0 : -ENOMEM;
	free(r.text);
	if (f) {
		f->conn = conn;
		nf_stream_waker w = {follower_sleep, follower_wake, f};
		err = s ? nf_stream_join(s, &w, &f->c) : -ESHUTDOWN;
	}
	if (err < 0) {
		free(f);
		return send_text(
		    conn, (nf_reply){.status = 503,
				     .type = "application/json",
				     .text = strdup(err == -EBUSY
							? "{\"error\":\"too many event clients\"}\n"
							: "{\"error\":\"no event stream\"}\n")});
	}
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		(void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &(int){FOLLOWER_SNDBUF},
				 sizeof(int));
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, 4096, follower_read, f, follower_free);
	if (!resp) {
		follower_free(f);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
	MHD_add_response_header(resp, r.header, r.value);
	enum MHD_Result ret = MHD_queue_response(conn, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void *pinger(void *userdata)
{
	nf_api *api = userdata;
	pthread_mutex_lock(&api->ping_lock);
	while (!api->stop) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_sec += 15;
		if (pthread_cond_timedwait(&api->ping_cond, &api->ping_lock, &t) == ETIMEDOUT)
			nf_stream_ping(api->stream);
	}
	pthread_mutex_unlock(&api->ping_lock);
	return NULL;
}

static int start_pinger(nf_api *api)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&api->ping_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&api->ping_lock, NULL);
	int r = pthread_create(&api->pinger, NULL, pinger, api);
	api->pinging = r == 0;
	return -r;
}

static void stop_pinger(nf_api *api)
{
	if (!api->pinging)
		return;
	pthread_mutex_lock(&api->ping_lock);
	api->stop = true;
	pthread_cond_signal(&api->ping_cond);
	pthread_mutex_unlock(&api->ping_lock);
	pthread_join(api->pinger, NULL);
	pthread_cond_destroy(&api->ping_cond);
	pthread_mutex_destroy(&api->ping_lock);
}

/* ---- requests and replies ---- */

/* Sends R: its text, or the event stream. */
static enum MHD_Result reply(const endpoint *ep, struct MHD_Connection *conn, nf_reply r)
{
	if (r.text && r.stream)
		return follow(conn, ep->core.stream, r);
	return send_text(conn, r);
}

/* The peer's supplementary groups from the socket (SO_PEERGROUPS, Linux
 * 4.13): what it had at connect(2), not /proc/PID of a pid that may be reused. */
static bool peer_in_group(int fd, gid_t g)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false; /* ERANGE: over 256 groups; changes need root or the gid then */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == g)
			return true;
	return false;
}

/* NULL when the peer may change things; otherwise why not. Over TCP the
 * token, checked by the routes, is what allows it. */
static const char *refuse(const endpoint *ep, struct MHD_Connection *conn)
{
	if (ep->core.tcp)
		return NULL;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return "cannot tell who the peer is (SO_PEERCRED)";
	if (cr.uid == 0 || cr.gid == ep->group || peer_in_group(ci->connect_fd, ep->group))
		return NULL;
	return "changes need root or the socket's group";
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	unsigned *n = cls;
	(void)kind, (void)value;
	n[0] += strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0;
	n[1] += strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0;
	return MHD_YES;
}

static const char *query(void *userdata, const char *key)
{
	return MHD_lookup_connection_value(userdata, MHD_GET_ARGUMENT_KIND, key);
}

/* The request as the routes take it; its body Q's. */
static nf_request read_request(struct MHD_Connection *conn, const char *url, const char *method,
			       const request *q)
{
	unsigned n[2] = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, n);
	return (nf_request){
	    .method = method,
	    .path = url,
	    .query = query,
	    .userdata = conn,
	    .authorization =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
	    .content_length =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
	    .n_content_length = n[0],
	    .n_transfer_encoding = n[1],
	    .body = q->body,
	    .len = q->len,
	    .too_big = q->seen > NF_API_MAX_BODY,
	};
}

/* Keeps what fits of a piece of the body; false when past all reason. */
static bool take_body(request *q, const char *upload, size_t size)
{
	q->seen += size;
	if (q->seen > NF_API_DISCARD_MAX)
		return false;
	if (q->seen > NF_API_MAX_BODY)
		return true;
	char *b = realloc(q->body, q->len + size + 1);
	if (!b)
		return false;
	memcpy(b + q->len, upload, size);
	q->len += size;
	b[q->len] = '\0';
	q->body = b;
	return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	const endpoint *ep = cls;
	request *q = *con_cls;
	nf_reply early;
	(void)version;
	if (!q) {
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*con_cls = q;
		nf_request head = read_request(conn, url, method, q);
		return nf_route_head(&head, &early) ? reply(ep, conn, early) : MHD_YES;
	}
	if (*upload_size) {
		if (!take_body(q, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	nf_request req = read_request(conn, url, method, q);
	req.refused = refuse(ep, conn);
	return reply(ep, conn, nf_route(&ep->core, &req));
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	request *q = *con_cls;
	(void)cls, (void)conn, (void)toe;
	if (q)
		free(q->body);
	free(q);
	*con_cls = NULL;
}

/* ---- listeners ---- */

/* Locks PATH.lock (made if need be): -EADDRINUSE while another agent
 * holds it. Only then may the socket of a previous run be replaced: taking
 * over a live one left the first agent deaf once the second stopped. */
static int lock_socket(const char *path)
{
	_cleanup_free_ char *lock = NULL;
	if (asprintf(&lock, "%s.lock", path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
	return TAKE_FD(fd);
}

static int unix_listener(const char *path, gid_t group)
{
	_cleanup_free_ char *dir = strdup(path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	if (!dir || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (mkdir(dirname(dir), 0750) == 0) {
		/* members of the socket's group must get through the directory */
		if (chown(dir, -1, group) < 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a previous run's */
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chown(path, -1, group) < 0 || chmod(path, 0660) < 0 || listen(fd, 128) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int tcp_address(const char *listen, struct sockaddr_in *sa)
{
	_cleanup_free_ char *host = strdup(listen);
	char *colon = host ? strrchr(host, ':') : NULL;
	uint64_t port;
	if (!colon || nf_parse_u64(colon + 1, NULL, &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	*colon = '\0';
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
	return inet_pton(AF_INET, *host ? host : "127.0.0.1", &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* The path and the query's arguments (nf_route_unescape). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls, (void)conn;
	return nf_route_unescape(s);
}

/* Connections are cheap with epoll, so the limits are set by file
 * descriptors, not by what a few idle clients can hold: hundreds of slow
 * connections (slowloris) must not keep a normal request out. */
#define LIMITS(conns)                                                                              \
	MHD_OPTION_CONNECTION_LIMIT, (unsigned)(conns), MHD_OPTION_CONNECTION_TIMEOUT,             \
	    (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),                 \
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape,  \
	    NULL

/* One polling thread; the event stream's connections are suspended while
 * they have nothing to read. */
#define FLAGS (MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME)

static struct MHD_Daemon *daemon_start(endpoint *ep, int fd, const struct sockaddr_in *sa)
{
	if (fd >= 0) /* per-IP limits mean nothing on a unix socket */
		return MHD_start_daemon(FLAGS, 0, NULL, NULL, handle, ep, MHD_OPTION_LISTEN_SOCKET,
					fd, LIMITS(512), MHD_OPTION_END);
	return MHD_start_daemon(FLAGS, ntohs(sa->sin_port), NULL, NULL, handle, ep,
				MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)64, LIMITS(256),
				MHD_OPTION_END);
}

int nf_api_start(nf_agent *a, const nf_api_config *cfg, nf_api **ret)
{
	nf_api *api = calloc(1, sizeof(*api));
	gid_t group = getegid();
	int r;
	if (!api)
		return -ENOMEM;
	if (cfg->socket_group) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g) {
			nf_log(LOG_ERR, "socket group '%s': no such group", cfg->socket_group);
			free(api);
			return -EINVAL;
		}
		group = g->gr_gid;
	}
	api->stream = cfg->stream;
	api->unix_ep = (endpoint){.core = {.a = a,
					   .self_check = cfg->self_check,
					   .kevents = cfg->kevents,
					   .stream = cfg->stream},
				  .group = group};
	api->socket_path = strdup(cfg->socket_path);
	api->lock_fd = -1;
	int fd = -1;
	if (!api->socket_path || (api->lock_fd = lock_socket(cfg->socket_path)) < 0) {
		r = api->socket_path ? api->lock_fd : -ENOMEM;
		nf_log_errno(LOG_ERR, r, "API socket '%s'%s", cfg->socket_path,
			     r == -EADDRINUSE ? ": another numafollowd serves it" : "");
		api->socket_path = (free(api->socket_path), NULL); /* not ours to remove */
		nf_api_stop(api);
		return r;
	}
	fd = unix_listener(cfg->socket_path, group);
	if (fd < 0 || !(api->unix_d = daemon_start(&api->unix_ep, fd, NULL))) {
		r = fd < 0 ? fd : -EIO;
		nf_log(LOG_ERR, "API socket '%s': %s", cfg->socket_path, strerror(-r));
		if (fd >= 0)
			close(fd);
		nf_api_stop(api);
		return r;
	}
	if (cfg->listen) {
		struct sockaddr_in sa;
		if ((r = tcp_address(cfg->listen, &sa)) < 0) {
			nf_log(LOG_ERR, "--listen '%s': not an IPv4 ADDR:PORT", cfg->listen);
			nf_api_stop(api);
			return r;
		}
		api->token = cfg->token ? strdup(cfg->token) : NULL;
		api->tcp_ep = (endpoint){.core = {.a = a,
						  .tcp = true,
						  .token = api->token,
						  .self_check = cfg->self_check,
						  .kevents = cfg->kevents,
						  .stream = cfg->stream}};
		if (!(api->tcp_d = daemon_start(&api->tcp_ep, -1, &sa))) {
			nf_log(LOG_ERR, "--listen '%s': cannot listen there", cfg->listen);
			nf_api_stop(api);
			return -EADDRINUSE;
		}
		nf_log(LOG_INFO, "API on tcp %s (%s)", cfg->listen,
		       api->token ? "changes need the token"
				  : "without --token-file: /healthz and /metrics only");
	}
	if (api->stream && (r = start_pinger(api)) < 0) {
		nf_log_errno(LOG_ERR, r, "the event stream's pinger");
		nf_api_stop(api);
		return r;
	}
	nf_log(LOG_INFO, "API on unix socket '%s'", cfg->socket_path);
	*ret = api;
	return 0;
}

void nf_api_stop(nf_api *api)
{
	if (!api)
		return;
	stop_pinger(api);
	/* every suspended follower resumed and ended: libmicrohttpd must not
	 * stop with a connection suspended */
	nf_stream_close(api->stream);
	if (api->tcp_d)
		MHD_stop_daemon(api->tcp_d);
	if (api->unix_d) {
		MHD_stop_daemon(api->unix_d);
		unlink(api->socket_path);
	}
	if (api->lock_fd >= 0)
		close(api->lock_fd);
	free(api->socket_path);
	if (api->token)
		explicit_bzero(api->token, strlen(api->token));
	free(api->token);
	free(api);
}
