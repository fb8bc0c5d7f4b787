/* What the agent's API means, apart from how requests arrive: routing, the
 * TCP token, bodies and their JSON, the JSON views, the replies. It sits
 * apart from api.c, which keeps libmicrohttpd, the sockets and SO_PEERCRED,
 * so that libmicrohttpd stays wrapped at one edge and the fuzzer
 * (tests/fuzz/fuzz-api.c) reaches every route without a socket: it links
 * this file, not api.c. */
#include "route.h"
#include "stream.h"
#include "metrics.h"
#include "../lib/nf.h"
#include "../lib/json.h"
#include "../lib/jsonw.h"
#include "../../cgroup/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- replies ---- */

static nf_reply text_reply(unsigned status, const char *type, char *text)
{
	return (nf_reply){.status = status, .type = type, .text = text};
}

/* O as text (dropping the reference), with a newline for curl users. */
static nf_reply json_reply(unsigned status, json_object *o)
{
	char *s = NULL;
	if (!o)
		return text_reply(500, "application/json",
				  strdup("{\"error\":\"out of memory\"}\n"));
	if (asprintf(&s, "%s\n",
		     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		s = NULL;
	json_object_put(o);
	return text_reply(status, "application/json", s);
}

/* {"error": MSG}; MSG may quote a URL's bytes, so it is made valid UTF-8. */
static json_object *error_json(const char *msg)
{
	json_object *o = json_object_new_object();
	if (o && !nf_json_add(o, "error", nf_json_text(msg)))
		return json_object_put(o), NULL;
	return o;
}

static nf_reply error_reply(unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static nf_reply error_reply(unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_reply(status, error_json(msg));
}

static nf_reply not_allowed(const char *allow, const char *method)
{
	nf_reply r = error_reply(405, "method %s not allowed here (allowed: %s)", method, allow);
	if (r.status == 405)
		r.header = "Allow", r.value = allow;
	return r;
}

/* ---- JSON views ---- */

/* The container's members, in an object the caller opens and closes. */
static void container_members(nf_jw *w, const nf_container *c)
{
	const nf_registration *r = c->reg;
	char b[NF_NODESET_STRLEN];
	nf_jw_key(w, "id");
	nf_jw_str(w, c->id);
	nf_jw_key(w, "runtime");
	nf_jw_str_or_null(w, c->runtime);
	nf_jw_key(w, "name");
	nf_jw_str_or_null(w, c->name);
	nf_jw_key(w, "pod");
	if (!*c->pod_uid && !(r && (r->pod_name || r->pod_namespace))) {
		nf_jw_null(w);
	} else {
		nf_jw_open(w, '{');
		nf_jw_key(w, "uid");
		nf_jw_str_or_null(w, c->pod_uid);
		nf_jw_key(w, "name");
		nf_jw_str_or_null(w, r ? r->pod_name : NULL);
		nf_jw_key(w, "namespace");
		nf_jw_str_or_null(w, r ? r->pod_namespace : NULL);
		nf_jw_close(w, '}');
	}
	nf_jw_key(w, "cgroup");
	nf_jw_str(w, c->cgroup);
	nf_jw_key(w, "mems");
	nf_jw_str(w, nf_nodeset_format(&c->mems, b, sizeof(b)));
	nf_jw_key(w, "mems_effective");
	nf_jw_str(w, nf_nodeset_format(&c->eff, b, sizeof(b)));
	nf_jw_key(w, "tasks");
	nf_jw_u64(w, c->tasks);
	nf_jw_key(w, "memory"); /* {"node": bytes} for the nodes with any */
	nf_jw_open(w, '{');
	for (unsigned n = 0; c->anon && n < c->nnodes; n++)
		if (c->anon[n] + c->file[n]) {
			snprintf(b, sizeof(b), "%u", n);
			nf_jw_key(w, b);
			nf_jw_u64(w, c->anon[n] + c->file[n]);
		}
	nf_jw_close(w, '}');
	nf_jw_key(w, "residual_bytes");
	nf_jw_u64(w, c->outside);
	nf_jw_key(w, "state");
	nf_jw_str(w, nf_cg_state_name(c->state));
	nf_jw_key(w, "last_migration");
	json_object *last = c->last ? nf_record_json(c->last) : NULL;
	w->oom |= c->last && !last;
	nf_jw_json(w, last);
	json_object_put(last);
	nf_jw_key(w, "registered");
	nf_jw_bool(w, r != NULL);
	if (!r)
		return;
	nf_jw_key(w, "pid");
	nf_jw_int(w, r->pid);
	nf_jw_key(w, "bundle");
	nf_jw_str_or_null(w, r->bundle);
	nf_jw_key(w, "status");
	nf_jw_str_or_null(w, r->status);
	/* written under the agent's lock, which guards the registration */
	nf_jw_key(w, "annotations");
	nf_jw_json(w, r->annotations);
}

/* Writes views into an array. POD and NAMESPACE, when set, keep the
 * containers of that pod uid or namespace. */
typedef struct {
	nf_jw *w;
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
	nf_jw_open(k->w, '{');
	container_members(k->w, c);
	nf_jw_close(k->w, '}');
}

static void collect_record(const nf_record *r, void *userdata)
{
	nf_jw *w = ((collector *)userdata)->w;
	json_object *o = nf_record_json(r);
	w->oom |= !o;
	nf_jw_json(w, o);
	json_object_put(o);
}

/* W's text as the reply, or 500 when anything failed. */
static nf_reply jw_reply(unsigned status, nf_jw *w)
{
	char *text = nf_jw_done(w);
	return text ? text_reply(status, "application/json", text) : json_reply(500, NULL);
}

/* The KEY member: the array of ID's (or all) newest records, at most LIMIT. */
static void migrations_member(nf_jw *w, nf_agent *a, const char *key, const char *id, size_t limit)
{
	collector k = {.w = w};
	nf_jw_key(w, key);
	nf_jw_open(w, '[');
	nf_agent_each_record(a, id, limit, collect_record, &k);
	nf_jw_close(w, ']');
}

static nf_reply migrations_reply(nf_agent *a, const char *id, size_t limit)
{
	nf_jw w = {0};
	nf_jw_open(&w, '{');
	migrations_member(&w, a, "migrations", id, limit);
	nf_jw_close(&w, '}');
	return jw_reply(200, &w);
}

static nf_reply containers_reply(nf_agent *a, const char *pod, const char *ns)
{
	nf_jw w = {0};
	collector k = {.w = &w, .pod = pod, .ns = ns};
	nf_jw_open(&w, '{');
	nf_jw_key(&w, "containers");
	nf_jw_open(&w, '[');
	nf_agent_resample(a, NF_LIST_MAX_AGE_MS);
	nf_agent_each_container(a, collect_container, &k);
	nf_jw_close(&w, ']');
	nf_jw_close(&w, '}');
	return jw_reply(200, &w);
}

static json_object *results_json(const nf_agent_stats *s)
{
	json_object *m = json_object_new_object();
	for (int r = 0; m && r < NF_RES_COUNT; r++)
		if (!nf_json_add(m, nf_result_name(r), json_object_new_int64(s->results[r])))
			return json_object_put(m), NULL;
	return m;
}

/* {enabled, server, created, patched, ...}: the Kubernetes events' state. */
static json_object *kevents_json(nf_kevents *k)
{
	nf_kevents_stats s;
	nf_kevents_stats_get(k, &s);
	json_object *o = json_object_new_object(), *failed = json_object_new_object();
	for (int f = 0; failed && f < NF_KEV_FAIL_COUNT; f++)
		if (!nf_json_add(failed, nf_kev_fail_name(f), json_object_new_int64(s.failed[f])))
			failed = (json_object_put(failed), NULL);
	const char *server = nf_kevents_server(k);
	bool ok = o && nf_json_add(o, "enabled", json_object_new_boolean(s.enabled)) &&
		  (server ? nf_json_add(o, "server", json_object_new_string(server))
			  : json_object_object_add(o, "server", NULL) == 0) &&
		  nf_json_add(o, "queued", json_object_new_int64(s.queued)) &&
		  nf_json_add(o, "created", json_object_new_int64(s.created)) &&
		  nf_json_add(o, "patched", json_object_new_int64(s.patched)) &&
		  nf_json_add(o, "retries", json_object_new_int64(s.retries)) &&
		  nf_json_add(o, "dropped", json_object_new_int64(s.dropped)) &&
		  nf_json_add(o, "rate_limited", json_object_new_int64(s.rate_limited)) &&
		  nf_json_add(o, "failed", TAKE_PTR(failed));
	json_object_put(failed);
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* How long the agent's lock was held (agent-internal.h, the lock rule). */
static json_object *lock_json(const nf_agent_stats *s)
{
	json_object *o = json_object_new_object();
	const char *in = s->lock_held_max_in;
	bool ok =
	    o && nf_json_add(o, "holds", json_object_new_int64(s->lock_holds)) &&
	    nf_json_add(o, "held_ms", json_object_new_double(s->lock_held_ns / 1e6)) &&
	    nf_json_add(o, "held_max_ms", json_object_new_double(s->lock_held_max_ns / 1e6)) &&
	    (in ? nf_json_add(o, "held_max_in", json_object_new_string(in))
		: json_object_object_add(o, "held_max_in", NULL) == 0);
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

static json_object *stream_json(struct nf_stream *st)
{
	nf_stream_stats s;
	if (!st)
		return json_object_new_null();
	nf_stream_stats_get(st, &s);
	json_object *o = json_object_new_object();
	bool ok = o && nf_json_add(o, "clients", json_object_new_int64(s.clients)) &&
		  nf_json_add(o, "published", json_object_new_int64(s.published)) &&
		  nf_json_add(o, "lost", json_object_new_int64(s.lost)) &&
		  nf_json_add(o, "queued_max", json_object_new_int64(s.queued_max));
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

static json_object *status_json(const nf_endpoint *ep)
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
	    nf_json_add(o, "lock", lock_json(&s)) &&
	    nf_json_add(o, "kube_events", kevents_json(ep->kevents)) &&
	    (ep->stream ? nf_json_add(o, "events", stream_json(ep->stream))
			: json_object_object_add(o, "events", NULL) == 0) &&
	    json_object_object_add(o, "self_check", json_object_get(ep->self_check)) == 0;
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* ---- who may ---- */

static bool token_ok(const nf_endpoint *ep, const nf_request *q)
{
	const char *auth = q->authorization;
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
static const char *tcp_gate(const nf_endpoint *ep, const nf_request *q)
{
	if (!ep->tcp || strcmp(q->path, "/healthz") == 0 || strcmp(q->path, "/metrics") == 0 ||
	    token_ok(ep, q))
		return NULL;
	return ep->token ? "missing or wrong bearer token"
			 : "over TCP only /healthz and /metrics are served without a token "
			   "(configure --token-file)";
}

/* ---- registrations ---- */

static char *first_of(json_object *ann, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = nf_json_string(ann, *keys);
		if (v && *v)
			return strdup(v);
	}
	return NULL;
}

/* V's text is all of it: json-c keeps a \u0000 inside a string, where C
 * text, and every copy made of it, would end. */
static bool whole(json_object *v)
{
	return strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v);
}

static bool whole_values(json_object *o)
{
	json_object_object_foreach(o, key, val)
	{
		(void)key;
		if (!whole(val))
			return false;
	}
	return true;
}

/* The fields of a registration body, checked; names from annotations. */
static const char *parse_registration(json_object *b, nf_registration *r)
{
	json_object *v;
	if (!json_object_is_type(b, json_type_object))
		return "the body must be a JSON object";
	if (!json_object_object_get_ex(b, "id", &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > 255)
		return "'id' must be a string of 1 to 255 characters";
	/* an id is a name in logs, metrics and URLs: no control characters; nor
	 * \u0000, which json-c keeps in the string and strdup() would cut the id
	 * short at ("ctr\u0000x" registered "ctr") */
	const char *id = json_object_get_string(v);
	for (int i = 0; i < json_object_get_string_len(v); i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return "'id' must not contain control characters";
	r->id = strdup(id);
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
		if (!whole(v))
			return "'bundle', 'status' and 'name' must not contain \\u0000";
		*dst[i] = strdup(json_object_get_string(v));
	}
	if (json_object_object_get_ex(b, "annotations", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!nf_json_is_string_map(v))
			return "'annotations' must be an object of strings";
		if (!whole_values(v))
			return "annotations must not contain \\u0000";
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

/* The container, open for more members (the caller closes it). */
static void take_container(const nf_container *c, void *userdata)
{
	nf_jw_open(userdata, '{');
	container_members(userdata, c);
}

static json_object *parse_body(const nf_request *q)
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

static nf_reply do_register(nf_agent *a, const nf_request *q)
{
	json_object *b = parse_body(q);
	if (!b)
		return error_reply(400, "the body is not valid JSON");
	nf_registration *r = calloc(1, sizeof(*r));
	const char *why = r ? parse_registration(b, r) : "out of memory";
	json_object_put(b);
	if (why) {
		nf_registration_free(r);
		return error_reply(400, "%s", why);
	}
	_cleanup_free_ char *msg = NULL;
	nf_jw w = {0};
	int e = nf_agent_register(a, r, take_container, &w, &msg);
	if (e < 0) {
		free(w.buf);
		return error_reply(400, "%s", msg ? msg : strerror(-e));
	}
	nf_jw_close(&w, '}');
	return jw_reply(e == 1 ? 200 : 201, &w);
}

/* ---- routes ---- */

static nf_reply get_migrations(nf_agent *a, const nf_request *q)
{
	const char *cont = q->query(q->userdata, "container");
	const char *lim = q->query(q->userdata, "limit");
	uint64_t limit = 100;
	if (lim && (nf_parse_u64(lim, NULL, &limit) < 0 || limit == 0 || limit > 100000))
		return error_reply(400, "limit: '%s' is not a number from 1 to 100000", lim);
	return migrations_reply(a, cont, limit);
}

/* GET: the container, with its 20 newest migrations. */
static nf_reply get_container(nf_agent *a, const char *id)
{
	nf_jw w = {0};
	if (nf_agent_container(a, id, take_container, &w) < 0) {
		free(w.buf);
		return error_reply(404, "no container '%s'", id);
	}
	migrations_member(&w, a, "migrations", id, 20);
	nf_jw_close(&w, '}');
	return jw_reply(200, &w);
}

static nf_reply delete_container(nf_agent *a, const char *id)
{
	int r = nf_agent_unregister(a, id);
	if (r == -ENOENT)
		return error_reply(404, "no container '%s'", id);
	if (r == -ENODATA)
		return error_reply(404, "container '%s' is not registered", id);
	json_object *o = json_object_new_object();
	if (o && !nf_json_add(o, "deleted", nf_json_text(id)))
		o = (json_object_put(o), NULL);
	return json_reply(200, o);
}

/* A record's JSON, made under the agent's lock (a worker fills it in). */
static void take_record(const nf_record *r, void *userdata)
{
	((one *)userdata)->o = nf_record_json(r);
}

static const char *move_target(const nf_request *q, nf_nodeset *ret, char *why, size_t len);

/* A body's "trigger": "api" (the default) or "nri" (the NRI plugin's re-pin);
 * -1 for anything else. */
static int body_trigger(const nf_request *q)
{
	_cleanup_json_ json_object *b = parse_body(q);
	json_object *v;
	if (!b || !json_object_object_get_ex(b, "trigger", &v))
		return NF_TRIG_API;
	const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	return strcmp(t, "api") == 0 ? NF_TRIG_API : strcmp(t, "nri") == 0 ? NF_TRIG_NRI : -1;
}

/* With a body {"to": NODES[, "trigger": "nri"]}: a migration to those nodes,
 * which must be within the container's mems, and no write of them. */
static nf_reply migrate_container_to(nf_agent *a, const char *id, const nf_request *q)
{
	char buf[128];
	nf_nodeset to;
	one rec = {0};
	const char *why = move_target(q, &to, buf, sizeof(buf));
	int t = body_trigger(q);
	if (why || t < 0)
		return error_reply(400, "%s", why ? why : "'trigger' must be \"api\" or \"nri\"");
	int r = nf_agent_migrate_to(a, id, &to, t, take_record, &rec);
	if (r == -ENOENT)
		return error_reply(404, "no container '%s'", id);
	if (r == -EBUSY)
		return error_reply(409, "container '%s': a migration of it is under way", id);
	if (r == -ERANGE)
		return error_reply(400, "container '%s': 'to' is not within its mems", id);
	if (r < 0)
		return error_reply(503, "%s", strerror(-r));
	return json_reply(202, rec.o);
}

static nf_reply migrate_container(nf_agent *a, const char *id, const nf_request *q)
{
	one rec = {0};
	if (q->len) /* curl -X POST with no body, as the CLI sends it */
		return migrate_container_to(a, id, q);
	int r = nf_agent_migrate(a, id, take_record, &rec);
	if (r == -ENOENT)
		return error_reply(404, "no container '%s'", id);
	if (r == -ENXIO)
		return error_reply(503, "container '%s' has no effective mems", id);
	if (r == -EBUSY)
		return error_reply(409, "container '%s': a staged move of it is under way", id);
	if (r < 0)
		return error_reply(503, "%s", strerror(-r));
	return json_reply(202, rec.o);
}

/* The nodes of a move's body {"to": "NODES"}: a node list of online nodes
 * with memory. NULL, or why not. */
static const char *move_target(const nf_request *q, nf_nodeset *ret, char *why, size_t len)
{
	_cleanup_json_ json_object *b = parse_body(q);
	nf_nodeset mem, bad;
	json_object *v;
	const char *to = nf_json_string(b, "to");
	if (!b)
		return "the body is not valid JSON";
	if (!to || !json_object_object_get_ex(b, "to", &v) || !whole(v) ||
	    nf_nodeset_parse(to, ret) < 0 || nf_nodeset_empty(ret))
		return "'to' must be a node list, like \"1\" or \"0-1\"";
	if (nf_memory_nodes(&mem) < 0)
		return "cannot read the nodes with memory";
	nf_nodeset_minus(ret, &mem, &bad);
	if (nf_nodeset_empty(&bad))
		return NULL;
	snprintf(why, len, "'to': node %s is offline or has no memory", to);
	return why;
}

static nf_reply move_container(nf_agent *a, const char *id, const nf_request *q)
{
	char buf[128];
	nf_nodeset to;
	one rec = {0};
	_cleanup_free_ char *msg = NULL;
	const char *why = move_target(q, &to, buf, sizeof(buf));
	if (why)
		return error_reply(400, "%s", why);
	int r = nf_agent_move(a, id, &to, take_record, &rec, &msg);
	if (r == -ENOENT)
		return error_reply(404, "no container '%s'", id);
	if (r < 0)
		return error_reply(r == -EBUSY ? 409 : 503, "container '%s': %s", id,
				   msg ? msg : strerror(-r));
	return json_reply(202, rec.o);
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

static nf_reply container_route(nf_agent *a, const nf_request *q, bool get, const char *rest)
{
	const char *action;
	_cleanup_free_ char *id = split_action(rest, &action);
	bool del = strcmp(q->method, "DELETE") == 0, post = strcmp(q->method, "POST") == 0;
	if (!id)
		return (nf_reply){.status = 500}; /* no text: no memory for an answer */
	if (action ? !post : !(get || del))
		return not_allowed(action ? "POST" : "GET, DELETE", q->method);
	if (!get && q->refused)
		return error_reply(403, "%s", q->refused);
	if (action)
		return strcmp(action, "/move") == 0 ? move_container(a, id, q)
						    : migrate_container(a, id, q);
	return get ? get_container(a, id) : delete_container(a, id);
}

static nf_reply get_migration(nf_agent *a, const char *arg)
{
	uint64_t id;
	one rec = {0};
	if (nf_parse_u64(arg, NULL, &id) < 0 || nf_agent_record(a, id, take_record, &rec) < 0)
		return error_reply(404, "no migration '%s'", arg);
	return json_reply(200, rec.o);
}

static nf_reply containers(nf_agent *a, const nf_request *q, bool get)
{
	if (get)
		return containers_reply(a, q->query(q->userdata, "pod"),
					q->query(q->userdata, "namespace"));
	if (strcmp(q->method, "POST") != 0)
		return not_allowed("GET, POST", q->method);
	return q->refused ? error_reply(403, "%s", q->refused) : do_register(a, q);
}

/* The stream itself is the transport's (api.c, stream.h). */
static nf_reply events_reply(void)
{
	nf_reply r = text_reply(200, "text/event-stream", strdup(""));
	r.stream = true;
	r.header = "Cache-Control", r.value = "no-cache";
	return r;
}

static nf_reply route(const nf_endpoint *ep, const nf_request *q)
{
	nf_agent *a = ep->a;
	const char *url = q->path, *m = q->method;
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	const char *why = tcp_gate(ep, q);
	if (why) {
		nf_reply r = error_reply(401, "%s", why);
		if (r.status == 401)
			r.header = "WWW-Authenticate", r.value = "Bearer";
		return r;
	}
	if (strcmp(url, "/healthz") == 0)
		return get ? text_reply(200, "application/json", strdup("{\"status\":\"ok\"}\n"))
			   : not_allowed("GET", m);
	if (strcmp(url, "/metrics") == 0)
		return get ? text_reply(200, "text/plain; version=0.0.4; charset=utf-8",
					nf_metrics(a, ep->kevents))
			   : not_allowed("GET", m);
	if (strcmp(url, "/v1/status") == 0)
		return get ? json_reply(200, status_json(ep)) : not_allowed("GET", m);
	if (strcmp(url, "/v1/containers") == 0 || strcmp(url, "/v1/containers/") == 0)
		return containers(a, q, get);
	if (strncmp(url, "/v1/containers/", 15) == 0)
		return container_route(a, q, get, url + 15);
	if (strcmp(url, "/v1/migrations") == 0)
		return get ? get_migrations(a, q) : not_allowed("GET", m);
	if (strcmp(url, "/v1/events") == 0)
		return get ? events_reply() : not_allowed("GET", m);
	if (strncmp(url, "/v1/migrations/", 15) == 0)
		return get ? get_migration(a, url + 15) : not_allowed("GET", m);
	return error_reply(404, "no route '%s'", url);
}

/* ---- the request ---- */

/* A body's length must be said once and one way: two Content-Length headers,
 * or one beside chunked encoding, are how a request is smuggled past a proxy
 * that reads them otherwise. */
bool nf_route_head(const nf_request *q, nf_reply *ret)
{
	unsigned cl = q->n_content_length, te = q->n_transfer_encoding;
	uint64_t n;
	if (cl > 1)
		*ret = error_reply(400, "more than one Content-Length header");
	else if (te > 1 || (cl && te))
		*ret = error_reply(
		    400,
		    "Content-Length and Transfer-Encoding together, or Transfer-Encoding twice");
	else if (q->content_length && nf_parse_u64(q->content_length, NULL, &n) == 0 &&
		 n > NF_API_DISCARD_MAX)
		*ret = error_reply(413, "the body is over %d bytes", NF_API_MAX_BODY);
	else
		return false;
	return true;
}

nf_reply nf_route(const nf_endpoint *ep, const nf_request *q)
{
	if (q->too_big)
		return error_reply(413, "the body is over %d bytes", NF_API_MAX_BODY);
	return route(ep, q);
}

static int hex(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* %00 stays: a NUL would cut the path short ("/v1/containers/a%00b" would
 * name "a"). */
size_t nf_route_unescape(char *s)
{
	char *o = s;
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
