#include "api.h"
#include "metrics.h"
#include "../lib/nf.h"
#include "../lib/json.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <arpa/inet.h>
#include <grp.h>
#include <libgen.h>
#include <microhttpd.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

typedef struct {
	nf_agent *a;
	bool tcp;
	const char *token;
	gid_t group;
	json_object *self_check;
} endpoint;

struct nf_api {
	struct MHD_Daemon *unix_d, *tcp_d;
	endpoint unix_ep, tcp_ep;
	char *socket_path, *token;
	int lock_fd; /* PATH.lock, held for life: one agent per socket */
};

typedef struct {
	char *body;
	size_t len, seen;
} request;

/* Bodies over NF_API_MAX_BODY are read and dropped, to answer 413 on a
 * connection the client still reads; past this they are not worth reading. */
#define DISCARD_MAX (1024 * 1024)

/* ---- replies ---- */

/* Sends TEXT (and frees it), with header HDR: VALUE when HDR is set. */
static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type,
				 char *text, const char *hdr, const char *value)
{
	if (!text)
		return MHD_NO;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (hdr)
		MHD_add_response_header(r, hdr, value);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Sends O (and drops the reference), with a newline for curl users. */
static enum MHD_Result send_json_hdr(struct MHD_Connection *conn, unsigned status, json_object *o,
				     const char *hdr, const char *value)
{
	char *s = NULL;
	if (!o)
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
				 strdup("{\"error\":\"out of memory\"}\n"), NULL, NULL);
	if (asprintf(&s, "%s\n",
		     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		s = NULL;
	json_object_put(o);
	return send_text(conn, status, "application/json", s, hdr, value);
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_object *o)
{
	return send_json_hdr(conn, status, o, NULL, NULL);
}

/* {"error": MSG}; MSG may quote a URL's bytes, so it is made valid UTF-8. */
static json_object *error_json(const char *msg)
{
	json_object *o = json_object_new_object();
	if (o && !nf_json_add(o, "error", nf_json_text(msg)))
		return json_object_put(o), NULL;
	return o;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
				  ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt,
				  ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return send_json(conn, status, error_json(msg));
}

static enum MHD_Result send_405(struct MHD_Connection *conn, const char *allow, const char *method)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "method %s not allowed here (allowed: %s)", method, allow);
	return send_json_hdr(conn, MHD_HTTP_METHOD_NOT_ALLOWED, error_json(msg),
			     MHD_HTTP_HEADER_ALLOW, allow);
}

/* ---- JSON views ---- */

/* A string member, null when empty: nf_json_add() of a null member must not fail. */
static bool put_str(json_object *o, const char *key, const char *s)
{
	return s && *s ? nf_json_add(o, key, nf_json_text(s))
		       : json_object_object_add(o, key, NULL) == 0;
}

static bool put_pod(json_object *o, const nf_container *c)
{
	const nf_registration *r = c->reg;
	if (!*c->pod_uid && !(r && (r->pod_name || r->pod_namespace)))
		return json_object_object_add(o, "pod", NULL) == 0;
	json_object *p = json_object_new_object();
	if (p && put_str(p, "uid", c->pod_uid) && put_str(p, "name", r ? r->pod_name : NULL) &&
	    put_str(p, "namespace", r ? r->pod_namespace : NULL))
		return nf_json_add(o, "pod", p);
	json_object_put(p);
	return false;
}

/* A copy: the response is freed after the agent's lock is dropped, and
 * json-c's reference counts are not atomic. */
static bool put_annotations(json_object *o, json_object *ann)
{
	json_object *copy = NULL;
	if (ann && json_object_deep_copy(ann, &copy, NULL) < 0)
		return false;
	if (json_object_object_add(o, "annotations", copy) == 0)
		return true;
	json_object_put(copy);
	return false;
}

static bool put_registration(json_object *o, const nf_registration *r)
{
	if (!nf_json_add(o, "registered", json_object_new_boolean(r != NULL)))
		return false;
	return !r || (nf_json_add(o, "pid", json_object_new_int(r->pid)) &&
		      put_str(o, "bundle", r->bundle) && put_str(o, "status", r->status) &&
		      put_annotations(o, r->annotations));
}

/* The last migration's record, or null. */
static bool put_last(json_object *o, const nf_record *last)
{
	return last ? nf_json_add(o, "last_migration", nf_record_json(last))
		    : json_object_object_add(o, "last_migration", NULL) == 0;
}

static json_object *container_json(const nf_container *c)
{
	json_object *o = json_object_new_object();
	bool ok =
	    o && nf_json_add(o, "id", nf_json_text(c->id)) && put_str(o, "runtime", c->runtime) &&
	    put_str(o, "name", c->reg ? c->reg->name : NULL) && put_pod(o, c) &&
	    nf_json_add(o, "cgroup", nf_json_text(c->cgroup)) &&
	    nf_json_add(o, "mems", nf_json_nodeset(&c->mems)) &&
	    nf_json_add(o, "mems_effective", nf_json_nodeset(&c->eff)) &&
	    nf_json_add(o, "tasks", json_object_new_int64(c->tasks)) &&
	    nf_json_add(o, "memory", nf_json_per_node(c->anon, c->file, c->anon ? c->nnodes : 0)) &&
	    nf_json_add(o, "residual_bytes", json_object_new_int64(c->outside)) &&
	    nf_json_add(o, "state", json_object_new_string(nf_cg_state_name(c->state))) &&
	    put_last(o, c->last) && put_registration(o, c->reg);
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* Collects views into an array; ok turns false on the first failure. POD and
 * NAMESPACE, when set, keep the containers of that pod uid or namespace. */
typedef struct {
	json_object *arr;
	bool ok;
	const char *pod, *ns;
} collector;

static bool wanted(const collector *k, const nf_container *c)
{
	const char *ns = c->reg ? c->reg->pod_namespace : NULL;
	return (!k->pod || strcmp(c->pod_uid, k->pod) == 0) &&
	       (!k->ns || (ns && strcmp(ns, k->ns) == 0));
}

static void collect_container(const nf_container *c, void *userdata)
{
	collector *k = userdata;
	if (!wanted(k, c))
		return;
	k->ok = k->ok && nf_json_append(k->arr, container_json(c));
}

static void collect_record(const nf_record *r, void *userdata)
{
	collector *k = userdata;
	k->ok = k->ok && nf_json_append(k->arr, nf_record_json(r));
}

/* {KEY: the collected array}, or NULL when anything failed. */
static json_object *wrapped(const char *key, collector *k)
{
	json_object *o = k->ok ? json_object_new_object() : NULL;
	if (o && nf_json_add(o, key, k->arr))
		return o;
	if (!o) /* else nf_json_add() dropped it */
		json_object_put(k->arr);
	json_object_put(o);
	return NULL;
}

static json_object *migrations_json(nf_agent *a, const char *id, size_t limit)
{
	collector k = {.arr = json_object_new_array(), .ok = true};
	k.ok = k.arr != NULL;
	if (k.ok)
		nf_agent_each_record(a, id, limit, collect_record, &k);
	return wrapped("migrations", &k);
}

static json_object *containers_json(nf_agent *a, const char *pod, const char *ns)
{
	collector k = {.arr = json_object_new_array(), .ok = true, .pod = pod, .ns = ns};
	k.ok = k.arr != NULL;
	if (k.ok)
		nf_agent_each_container(a, collect_container, &k);
	return wrapped("containers", &k);
}

static json_object *results_json(const nf_agent_stats *s)
{
	json_object *m = json_object_new_object();
	for (int r = 0; m && r < NF_RES_COUNT; r++)
		if (!nf_json_add(m, nf_result_name(r), json_object_new_int64(s->results[r])))
			return json_object_put(m), NULL;
	return m;
}

static json_object *status_json(const endpoint *ep)
{
	nf_agent_stats s;
	nf_agent_stats_get(ep->a, &s);
	json_object *o = json_object_new_object();
	bool ok =
	    o && nf_json_add(o, "version", json_object_new_string(NF_VERSION)) &&
	    nf_json_add(o, "uptime_s", json_object_new_int64(s.uptime_ns / 1000000000)) &&
	    nf_json_add(o, "hierarchy", json_object_new_string(nf_hierarchy_name(s.h))) &&
	    nf_json_add(o, "mount", json_object_new_string(s.h->mount)) &&
	    nf_json_add(o, "cgroup_root", json_object_new_string(s.cgroup_root)) &&
	    nf_json_add(o, "cgroups_watched", json_object_new_int64(s.cgroups_watched)) &&
	    nf_json_add(o, "containers", json_object_new_int64(s.containers)) &&
	    nf_json_add(o, "workers", json_object_new_int(s.workers)) &&
	    nf_json_add(o, "queued", json_object_new_int64(s.queued)) &&
	    nf_json_add(o, "migrations", results_json(&s)) &&
	    nf_json_add(o, "history_persistent", json_object_new_boolean(s.history_persistent)) &&
	    json_object_object_add(o, "self_check", json_object_get(ep->self_check)) == 0;
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* ---- mutations ---- */

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

static bool token_ok(const endpoint *ep, struct MHD_Connection *conn)
{
	const char *auth =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	size_t n = ep->token ? strlen(ep->token) : 0;
	if (!n || !auth || strncmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) != n)
		return false;
	unsigned char diff = 0; /* constant time */
	for (size_t i = 0; i < n; i++)
		diff |= auth[7 + i] ^ ep->token[i];
	return diff == 0;
}

/* Over TCP only /healthz and /metrics are public: the rest names pods,
 * namespaces, cgroups and pids, and the kubelet's read-only port 10255 is the
 * lesson. NULL when the request may go on; otherwise why not (401). */
static const char *tcp_gate(const endpoint *ep, struct MHD_Connection *conn, const char *url)
{
	if (!ep->tcp || strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0 ||
	    token_ok(ep, conn))
		return NULL;
	return ep->token ? "missing or wrong bearer token"
			 : "over TCP only /healthz and /metrics are served without a token "
			   "(configure --token-file)";
}

/* NULL when the peer may change things; otherwise why not. Over TCP the
 * token, checked by tcp_gate, is what allows it. */
static const char *refuse(const endpoint *ep, struct MHD_Connection *conn)
{
	if (ep->tcp)
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

static char *first_of(json_object *ann, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = nf_json_string(ann, *keys);
		if (v && *v)
			return strdup(v);
	}
	return NULL;
}

/* The fields of a registration body, checked; names from annotations. */
static const char *parse_registration(json_object *b, nf_registration *r)
{
	json_object *v;
	if (!json_object_is_type(b, json_type_object))
		return "the body must be a JSON object";
	if (!json_object_object_get_ex(b, "id", &v) || !json_object_is_type(v, json_type_string) ||
	    !*json_object_get_string(v) || json_object_get_string_len(v) > 255)
		return "'id' must be a string of 1 to 255 characters";
	/* an id is a name in logs, metrics and URLs: no control characters */
	for (const char *p = json_object_get_string(v); *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "'id' must not contain control characters";
	r->id = strdup(json_object_get_string(v));
	if (!json_object_object_get_ex(b, "pid", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) <= 0 || json_object_get_int64(v) > INT32_MAX)
		return "'pid' must be a positive integer";
	r->pid = json_object_get_int64(v);
	static const char *const strs[] = {"bundle", "status", "name"};
	char **dst[] = {&r->bundle, &r->status, &r->name};
	for (size_t i = 0; i < NF_ARRAY_SIZE(strs); i++) {
		if (!json_object_object_get_ex(b, strs[i], &v) ||
		    json_object_is_type(v, json_type_null))
			continue;
		if (!json_object_is_type(v, json_type_string))
			return "'bundle', 'status' and 'name' must be strings";
		*dst[i] = strdup(json_object_get_string(v));
	}
	if (json_object_object_get_ex(b, "annotations", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!nf_json_is_string_map(v))
			return "'annotations' must be an object of strings";
		r->annotations = json_object_get(v);
	}
	json_object *ann = r->annotations;
	r->opted_out = nf_json_flag(ann, "numafollow.io/migrate", false);
	const char *rate = nf_json_string(ann, "numafollow.io/max-rate");
	uint64_t mib;
	if (rate && (nf_parse_u64(rate, NULL, &mib) < 0 || mib == 0 || mib > 1 << 20))
		return "annotation numafollow.io/max-rate must be a number of MiB/s from 1 to "
		       "1048576";
	r->max_rate = rate ? mib << 20 : 0;
	if (!r->name)
		r->name =
		    first_of(ann, (const char *const[]){"io.kubernetes.cri.container-name",
							"io.kubernetes.container.name", NULL});
	r->pod_name = first_of(ann, (const char *const[]){"io.kubernetes.cri.sandbox-name",
							  "io.kubernetes.pod.name", NULL});
	r->pod_namespace =
	    first_of(ann, (const char *const[]){"io.kubernetes.cri.sandbox-namespace",
						"io.kubernetes.pod.namespace", NULL});
	r->pod_uid = first_of(ann, (const char *const[]){"io.kubernetes.cri.sandbox-uid",
							 "io.kubernetes.pod.uid", NULL});
	return NULL;
}

typedef struct {
	json_object *o;
} one;

static void take_container(const nf_container *c, void *userdata)
{
	((one *)userdata)->o = container_json(c);
}

static json_object *parse_body(const request *q)
{
	json_tokener *tok = json_tokener_new();
	/* RFC 8259 and nothing more: no comments, no single quotes, UTF-8 only. */
	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *b = tok ? json_tokener_parse_ex(tok, q->body ? q->body : "", q->len) : NULL;
	bool complete = tok && json_tokener_get_error(tok) == json_tokener_success &&
			(size_t)json_tokener_get_parse_end(tok) == q->len;
	json_tokener_free(tok);
	if (!complete)
		return json_object_put(b), NULL;
	return b;
}

static enum MHD_Result do_register(nf_agent *a, struct MHD_Connection *conn, const request *q)
{
	json_object *b = parse_body(q);
	if (!b)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "the body is not valid JSON");
	nf_registration *r = calloc(1, sizeof(*r));
	const char *why = r ? parse_registration(b, r) : "out of memory";
	json_object_put(b);
	if (why) {
		nf_registration_free(r);
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
	}
	_cleanup_free_ char *msg = NULL;
	one c = {0};
	int e = nf_agent_register(a, r, take_container, &c, &msg);
	if (e < 0)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", msg ? msg : strerror(-e));
	return send_json(conn, e == 1 ? MHD_HTTP_OK : MHD_HTTP_CREATED, c.o);
}

/* ---- routing ---- */

static enum MHD_Result get_migrations(nf_agent *a, struct MHD_Connection *conn)
{
	const char *cont = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "container");
	const char *lim = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	uint64_t limit = 100;
	if (lim && (nf_parse_u64(lim, NULL, &limit) < 0 || limit == 0 || limit > 100000))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "limit: '%s' is not a number from 1 to 100000", lim);
	return send_json(conn, MHD_HTTP_OK, migrations_json(a, cont, limit));
}

/* GET: the container, with its 20 newest migrations. */
static enum MHD_Result get_container(nf_agent *a, struct MHD_Connection *conn, const char *id)
{
	one c = {0};
	if (nf_agent_container(a, id, take_container, &c) < 0)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no container '%s'", id);
	json_object *m = c.o ? migrations_json(a, id, 20) : NULL, *arr;
	if (!m || !json_object_object_get_ex(m, "migrations", &arr) ||
	    !nf_json_add(c.o, "migrations", json_object_get(arr))) {
		json_object_put(m);
		json_object_put(c.o);
		return send_json(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
	}
	json_object_put(m);
	return send_json(conn, MHD_HTTP_OK, c.o);
}

static enum MHD_Result delete_container(nf_agent *a, struct MHD_Connection *conn, const char *id)
{
	int r = nf_agent_unregister(a, id);
	if (r == -ENOENT)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no container '%s'", id);
	if (r == -ENODATA)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "container '%s' is not registered", id);
	json_object *o = json_object_new_object();
	if (o && !nf_json_add(o, "deleted", nf_json_text(id)))
		o = (json_object_put(o), NULL);
	return send_json(conn, MHD_HTTP_OK, o);
}

/* A record's JSON, made under the agent's lock (a worker fills it in). */
static void take_record(const nf_record *r, void *userdata)
{
	((one *)userdata)->o = nf_record_json(r);
}

static enum MHD_Result migrate_container(nf_agent *a, struct MHD_Connection *conn, const char *id)
{
	one rec = {0};
	int r = nf_agent_migrate(a, id, take_record, &rec);
	if (r == -ENOENT)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no container '%s'", id);
	if (r == -ENXIO)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "container '%s' has no effective mems", id);
	if (r == -EBUSY)
		return send_error(conn, MHD_HTTP_CONFLICT,
				  "container '%s': a staged move of it is under way", id);
	if (r < 0)
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", strerror(-r));
	return send_json(conn, MHD_HTTP_ACCEPTED, rec.o);
}

/* The nodes of a move's body {"to": "NODES"}: a node list of online nodes
 * with memory. NULL, or why not. */
static const char *move_target(const request *q, nf_nodeset *ret, char *why, size_t len)
{
	_cleanup_json_ json_object *b = parse_body(q);
	nf_nodeset mem, bad;
	const char *to = nf_json_string(b, "to");
	if (!b)
		return "the body is not valid JSON";
	if (!to || nf_nodeset_parse(to, ret) < 0 || nf_nodeset_empty(ret))
		return "'to' must be a node list, like \"1\" or \"0-1\"";
	if (nf_memory_nodes(&mem) < 0)
		return "cannot read the nodes with memory";
	nf_nodeset_minus(ret, &mem, &bad);
	if (nf_nodeset_empty(&bad))
		return NULL;
	snprintf(why, len, "'to': node %s is offline or has no memory", to);
	return why;
}

static enum MHD_Result move_container(nf_agent *a, struct MHD_Connection *conn, const char *id,
				      const request *q)
{
	char buf[128];
	nf_nodeset to;
	one rec = {0};
	_cleanup_free_ char *msg = NULL;
	const char *why = move_target(q, &to, buf, sizeof(buf));
	if (why)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
	int r = nf_agent_move(a, id, &to, take_record, &rec, &msg);
	if (r == -ENOENT)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no container '%s'", id);
	if (r < 0)
		return send_error(conn,
				  r == -EBUSY ? MHD_HTTP_CONFLICT : MHD_HTTP_SERVICE_UNAVAILABLE,
				  "container '%s': %s", id, msg ? msg : strerror(-r));
	return send_json(conn, MHD_HTTP_ACCEPTED, rec.o);
}

/* ID, and which action its path names: "/migrate", "/move", or none. */
static char *split_action(const char *rest, const char **ret_action)
{
	size_t len = strlen(rest);
	static const char *const actions[] = {"/migrate", "/move"};
	*ret_action = NULL;
	for (size_t i = 0; i < NF_ARRAY_SIZE(actions); i++) {
		size_t n = strlen(actions[i]);
		if (len > n && strcmp(rest + len - n, actions[i]) == 0) {
			*ret_action = actions[i];
			return strndup(rest, len - n);
		}
	}
	return strdup(rest);
}

static enum MHD_Result container_route(const endpoint *ep, struct MHD_Connection *conn,
				       const char *method, const char *rest, const request *q)
{
	const char *action;
	_cleanup_free_ char *id = split_action(rest, &action);
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0,
	     del = strcmp(method, "DELETE") == 0, post = strcmp(method, "POST") == 0;
	if (!id)
		return MHD_NO;
	if (action ? !post : !(get || del))
		return send_405(conn, action ? "POST" : "GET, DELETE", method);
	const char *why = get ? NULL : refuse(ep, conn);
	if (why)
		return send_error(conn, MHD_HTTP_FORBIDDEN, "%s", why);
	if (action)
		return strcmp(action, "/move") == 0 ? move_container(ep->a, conn, id, q)
						    : migrate_container(ep->a, conn, id);
	return get ? get_container(ep->a, conn, id) : delete_container(ep->a, conn, id);
}

static enum MHD_Result get_migration(nf_agent *a, struct MHD_Connection *conn, const char *arg)
{
	uint64_t id;
	one rec = {0};
	if (nf_parse_u64(arg, NULL, &id) < 0 || nf_agent_record(a, id, take_record, &rec) < 0)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no migration '%s'", arg);
	return send_json(conn, MHD_HTTP_OK, rec.o);
}

static enum MHD_Result route(const endpoint *ep, struct MHD_Connection *conn, const char *url,
			     const char *method, const request *q)
{
	nf_agent *a = ep->a;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	const char *why = tcp_gate(ep, conn, url);
	if (why)
		return send_json_hdr(conn, MHD_HTTP_UNAUTHORIZED, error_json(why),
				     MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (strcmp(url, "/healthz") == 0) {
		if (!get)
			return send_405(conn, "GET", method);
		return send_text(conn, MHD_HTTP_OK, "application/json",
				 strdup("{\"status\":\"ok\"}\n"), NULL, NULL);
	}
	if (strcmp(url, "/metrics") == 0) {
		if (!get)
			return send_405(conn, "GET", method);
		return send_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
				 nf_metrics(a), NULL, NULL);
	}
	if (strcmp(url, "/v1/status") == 0)
		return get ? send_json(conn, MHD_HTTP_OK, status_json(ep))
			   : send_405(conn, "GET", method);
	if (strcmp(url, "/v1/containers") == 0 || strcmp(url, "/v1/containers/") == 0) {
		if (get)
			return send_json(
			    conn, MHD_HTTP_OK,
			    containers_json(
				a, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "pod"),
				MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
							    "namespace")));
		if (strcmp(method, "POST") != 0)
			return send_405(conn, "GET, POST", method);
		why = refuse(ep, conn);
		return why ? send_error(conn, MHD_HTTP_FORBIDDEN, "%s", why)
			   : do_register(a, conn, q);
	}
	if (strncmp(url, "/v1/containers/", 15) == 0)
		return container_route(ep, conn, method, url + 15, q);
	if (strcmp(url, "/v1/migrations") == 0)
		return get ? get_migrations(a, conn) : send_405(conn, "GET", method);
	if (strncmp(url, "/v1/migrations/", 15) == 0)
		return get ? get_migration(a, conn, url + 15) : send_405(conn, "GET", method);
	return send_error(conn, MHD_HTTP_NOT_FOUND, "no route '%s'", url);
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

/* A body's length must be said once and one way: two Content-Length headers,
 * or one beside chunked encoding, are how a request is smuggled past a proxy
 * that reads them otherwise. NULL when the framing is plain. */
static const char *framing(struct MHD_Connection *conn)
{
	unsigned n[2] = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, n);
	if (n[0] > 1)
		return "more than one Content-Length header";
	if (n[1] > 1 || (n[0] && n[1]))
		return "Content-Length and Transfer-Encoding together, or Transfer-Encoding twice";
	return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	const endpoint *ep = cls;
	request *q = *con_cls;
	(void)version;
	if (!q) {
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*con_cls = q;
		const char *why = framing(conn);
		if (why)
			return send_error(conn, MHD_HTTP_BAD_REQUEST, "%s", why);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n;
		if (cl && nf_parse_u64(cl, NULL, &n) == 0 && n > DISCARD_MAX)
			return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					  "the body is over %d bytes", NF_API_MAX_BODY);
		return MHD_YES;
	}
	if (*upload_size) {
		q->seen += *upload_size;
		if (q->seen > DISCARD_MAX)
			return MHD_NO;
		if (q->seen <= NF_API_MAX_BODY) {
			char *b = realloc(q->body, q->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + q->len, upload, *upload_size);
			q->len += *upload_size;
			b[q->len] = '\0';
			q->body = b;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->seen > NF_API_MAX_BODY)
		return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %d bytes",
				  NF_API_MAX_BODY);
	return route(ep, conn, url, method, q);
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

static int hex(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decoding as libmicrohttpd's own, but %00 stays as it is: a NUL
 * would cut the path short ("/v1/containers/a%00b" would name "a"). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *o = s;
	(void)cls, (void)conn;
	for (const char *p = s; *p; p++) {
		int hi = p[0] == '%' ? hex(p[1]) : -1, lo = hi >= 0 ? hex(p[2]) : -1;
		if (lo >= 0 && (hi | lo)) {
			*o++ = (char)(hi << 4 | lo);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return o - s;
}

/* Connections are cheap with epoll, so the limits are set by file
 * descriptors, not by what a few idle clients can hold: hundreds of slow
 * connections (slowloris) must not keep a normal request out. */
#define LIMITS(conns)                                                                              \
	MHD_OPTION_CONNECTION_LIMIT, (unsigned)(conns), MHD_OPTION_CONNECTION_TIMEOUT,             \
	    (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),                 \
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape,  \
	    NULL

static struct MHD_Daemon *daemon_start(endpoint *ep, int fd, const struct sockaddr_in *sa)
{
	if (fd >= 0) /* per-IP limits mean nothing on a unix socket */
		return MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, handle, ep,
					MHD_OPTION_LISTEN_SOCKET, fd, LIMITS(512), MHD_OPTION_END);
	return MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, ntohs(sa->sin_port), NULL, NULL,
				handle, ep, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
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
	api->unix_ep = (endpoint){.a = a, .group = group, .self_check = cfg->self_check};
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
		api->tcp_ep = (endpoint){
		    .a = a, .tcp = true, .token = api->token, .self_check = cfg->self_check};
		if (!(api->tcp_d = daemon_start(&api->tcp_ep, -1, &sa))) {
			nf_log(LOG_ERR, "--listen '%s': cannot listen there", cfg->listen);
			nf_api_stop(api);
			return -EADDRINUSE;
		}
		nf_log(LOG_INFO, "API on tcp %s (%s)", cfg->listen,
		       api->token ? "changes need the token" : "read-only");
	}
	nf_log(LOG_INFO, "API on unix socket '%s'", cfg->socket_path);
	*ret = api;
	return 0;
}

void nf_api_stop(nf_api *api)
{
	if (!api)
		return;
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
