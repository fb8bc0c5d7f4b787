/* libFuzzer harness for the agent's HTTP API (plugin/agent/route.c) over an
 * agent held in memory (fake-agent.c), no socket. Built and run by
 * `make fuzz`; seeds in tests/fuzz/seeds-api, tokens in api.dict.
 *
 * The input is text. Its first line says how the requests arrive, by its
 * first character: 'u' the unix socket from root, 'n' the unix socket from a
 * peer that may not change things, 't' TCP with no token configured, 'k' TCP
 * with the token "s3cret" configured. Then up to 8 requests, each as on the
 * wire: "METHOD TARGET ...", headers, a blank line, and a body of
 * Content-Length bytes, or with Transfer-Encoding (taken as decoded) the
 * rest of the input, or none. The header "X-Fuzz-Too-Big" stands for a body
 * over NF_API_MAX_BODY.
 *
 * What it checks of every reply, besides not crashing, not leaking and not
 * reading out of bounds: a status the API sends, never 500 (no allocation
 * fails here); JSON bodies that json-c's strict parser takes whole, an
 * "error" string on every >= 400; /metrics lines in the exposition format;
 * Allow exactly on 405, WWW-Authenticate exactly on 401; over TCP without
 * the token nothing but /healthz and /metrics; 403 only for a refused peer's
 * changes; and no change to the agent from a refused request or any error. */
#include "fake-agent.h"
#include "../../plugin/agent/route.h"
#include "../../plugin/lib/json.h"
#include "../../cgroup/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_REQUESTS 8
#define MAX_ARGS     16
#define TOKEN	     "s3cret"

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz-api: %s fails: %s %s -> %u %s\n", #cond, q->method,  \
				q->path, r->status, r->text ? r->text : "(no text)");              \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

typedef enum { UNIX_ROOT, UNIX_REFUSED, TCP_READ_ONLY, TCP_TOKEN } transport;

typedef struct {
	char *key[MAX_ARGS], *value[MAX_ARGS];
	size_t n;
} args;

/* As libmicrohttpd: the first argument of that name; NULL when it has no '='. */
static const char *query(void *userdata, const char *key)
{
	const args *g = userdata;
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->key[i], key) == 0)
			return g->value[i];
	return NULL;
}

static void decode(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '+')
			*p = ' ';
	nf_route_unescape(s);
}

/* "k=v&k2=v2&k3" into G, decoded; S is cut up in place. */
static void parse_query(char *s, args *g)
{
	for (char *save = NULL, *kv = strtok_r(s, "&", &save); kv && g->n < MAX_ARGS;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq++ = '\0', decode(eq);
		decode(kv);
		g->key[g->n] = kv;
		g->value[g->n++] = eq;
	}
}

/* The next line of [*P, END) as a string in BUF (\r\n or \n cut off). */
static bool next_line(const char **p, const char *end, char *buf, size_t size)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', end - *p), *e = nl ? nl : end;
	size_t n = e - *p;
	if (n && (*p)[n - 1] == '\r')
		n--;
	n = n < size - 1 ? n : size - 1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = nl ? nl + 1 : end;
	return true;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	for (char *e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t');)
		*--e = '\0';
	return s;
}

/* ---- what a reply must be ---- */

static bool json_whole(const char *text, json_object **ret)
{
	size_t len = strlen(text);
	if (!len || text[len - 1] != '\n')
		return false;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, text, len - 1);
	bool ok = json_tokener_get_error(tok) == json_tokener_success &&
		  (size_t)json_tokener_get_parse_end(tok) == len - 1;
	json_tokener_free(tok);
	if (!ok)
		return json_object_put(o), false;
	*ret = o;
	return true;
}

static const char *name_end(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
		return NULL;
	while (isalnum((unsigned char)*s) || *s == '_' || *s == ':')
		s++;
	return s;
}

/* A sample line: name{label="value",...} number. */
static bool sample_line(const char *s)
{
	if (!(s = name_end(s)))
		return false;
	if (*s == '{') {
		do {
			if (!(s = name_end(s + 1)) || strncmp(s, "=\"", 2) != 0)
				return false;
			for (s += 2; *s != '"'; s++) {
				if (!*s || *s == '\n')
					return false;
				if (*s == '\\' && !(*++s == '\\' || *s == '"' || *s == 'n'))
					return false;
			}
			s++;
		} while (*s == ',');
		if (*s++ != '}')
			return false;
	}
	if (*s++ != ' ' || !*s)
		return false;
	char *end;
	strtod(s, &end);
	return *end == '\0' || strcmp(s, "+Inf") == 0;
}

static bool exposition(const char *text)
{
	_cleanup_free_ char *copy = strdup(text);
	if (!copy)
		abort();
	if (!nf_utf8_valid(text) || !*text || text[strlen(text) - 1] != '\n')
		return false;
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, "# HELP numafollow_", 18) != 0 &&
		    strncmp(l, "# TYPE numafollow_", 18) != 0 &&
		    !(strncmp(l, "numafollow_", 11) == 0 && sample_line(l)))
			return false;
	return true;
}

static bool public_path(const char *path)
{
	return strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0;
}

/* The allowed methods in ALLOW, as a 405 lists them, do not include M's. */
static bool not_listed(const char *allow, const char *m)
{
	const char *as = strcmp(m, "HEAD") == 0 ? "GET" : m;
	_cleanup_free_ char *copy = strdup(allow);
	if (!copy)
		abort();
	for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save))
		if (strcmp(t, as) == 0)
			return false;
	return true;
}

static size_t array_len(json_object *o, const char *key)
{
	json_object *a;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
		return SIZE_MAX;
	return json_object_array_length(a);
}

/* What the list filters keep: containers of pod uid POD (none when empty)
 * and namespace NS. */
static bool filtered(json_object *o, const char *pod, const char *ns)
{
	json_object *arr, *p;
	if (!json_object_object_get_ex(o, "containers", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i);
		const char *uid = NULL, *n = NULL;
		if (json_object_object_get_ex(c, "pod", &p) && p)
			uid = nf_json_string(p, "uid"), n = nf_json_string(p, "namespace");
		if (pod && !(*pod ? uid && strcmp(uid, pod) == 0 : !uid))
			return false;
		if (ns && !(n && strcmp(n, ns) == 0))
			return false;
	}
	return true;
}

static bool same_string(json_object *o, const char *key, const char *want)
{
	const char *v = nf_json_string(o, key);
	return !nf_utf8_valid(want) || (v && strcmp(v, want) == 0);
}

/* The strings of a registration that its container shows, byte for byte:
 * none may be cut short (at a \u0000, say). */
static const char *const taken[] = {"id", "bundle", "status", "name"};

static bool taken_whole(json_object *body, json_object *reply, const char *key)
{
	json_object *b, *r;
	if (!json_object_object_get_ex(body, key, &b) ||
	    !json_object_is_type(b, json_type_string) || !json_object_get_string_len(b))
		return true;
	return json_object_object_get_ex(reply, key, &r) &&
	       json_object_is_type(r, json_type_string) &&
	       json_object_get_string_len(r) == json_object_get_string_len(b) &&
	       memcmp(json_object_get_string(r), json_object_get_string(b),
		      json_object_get_string_len(b)) == 0;
}

/* A staged move's record goes to the body's "to", read whole. */
static bool moved_to(const char *body, json_object *rec)
{
	_cleanup_json_ json_object *b = json_tokener_parse(body);
	json_object *to;
	nf_nodeset want, got;
	return json_object_object_get_ex(b, "to", &to) &&
	       json_object_is_type(to, json_type_string) &&
	       strlen(json_object_get_string(to)) == (size_t)json_object_get_string_len(to) &&
	       nf_nodeset_parse(json_object_get_string(to), &want) == 0 &&
	       nf_nodeset_parse(nf_json_string(rec, "to"), &got) == 0 &&
	       nf_nodeset_equal(&want, &got);
}

/* What a successful answer says, by route. */
static void check_answer(const nf_request *q, const nf_reply *r, json_object *o, bool get)
{
	const char *path = q->path, *rest = strlen(path) >= 15 ? path + 15 : "";
	bool list = strcmp(path, "/v1/containers") == 0 || strcmp(path, "/v1/containers/") == 0;
	uint64_t n = 100;
	if (list && get)
		check(
		    filtered(o, q->query(q->userdata, "pod"), q->query(q->userdata, "namespace")));
	if (list && !get) { /* a registration: the container it landed in, registered */
		_cleanup_json_ json_object *b = json_tokener_parse(q->body);
		json_object *reg;
		check(json_object_object_get_ex(o, "registered", &reg) &&
		      json_object_get_boolean(reg));
		for (size_t i = 0; i < NF_ARRAY_SIZE(taken); i++)
			check(taken_whole(b, o, taken[i]));
	}
	if (strcmp(path, "/v1/migrations") == 0) {
		const char *lim = q->query(q->userdata, "limit");
		check(!lim || nf_parse_u64(lim, NULL, &n) == 0);
		check(array_len(o, "migrations") <= n);
	}
	if (strncmp(path, "/v1/migrations/", 15) == 0) {
		json_object *id;
		check(nf_parse_u64(rest, NULL, &n) == 0 &&
		      json_object_object_get_ex(o, "id", &id) &&
		      (uint64_t)json_object_get_int64(id) == n);
	}
	if (strncmp(path, "/v1/containers/", 15) != 0 || list)
		return;
	if (r->status == 202) { /* a migration asked for: queued, or the queued one */
		check(same_string(o, "result", "queued"));
		size_t len = strlen(rest);
		if (len > 5 && strcmp(rest + len - 5, "/move") == 0) /* to all the nodes asked */
			check(moved_to(q->body, o));
	} else if (strcmp(q->method, "DELETE") == 0) {
		check(same_string(o, "deleted", rest));
	} else if (rest[0] != '/') { /* by id; by cgroup path otherwise */
		check(same_string(o, "id", rest) && array_len(o, "migrations") <= 20);
	}
}

static void check_reply(transport how, const nf_request *q, const nf_reply *r, bool early,
			unsigned long changed)
{
	static const unsigned sent[] = {200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 503};
	bool known = false, get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
	bool authorized =
	    how == TCP_TOKEN && q->authorization && strcmp(q->authorization, "Bearer " TOKEN) == 0;
	for (size_t i = 0; i < NF_ARRAY_SIZE(sent); i++)
		known |= r->status == sent[i];
	check(known);
	check(r->text != NULL);
	check((r->status == 405) == (r->header && strcmp(r->header, "Allow") == 0));
	check((r->status == 401) == (r->header && strcmp(r->header, "WWW-Authenticate") == 0));
	if (r->status == 405)
		check(not_listed(r->value, q->method));
	if (r->status == 401)
		check(strcmp(r->value, "Bearer") == 0);

	bool gated = how >= TCP_READ_ONLY && !authorized && !public_path(q->path);
	if (gated && !early && !q->too_big)
		check(r->status == 401);
	if (r->status == 401)
		check(gated);
	if (r->status == 403)
		check(how == UNIX_REFUSED && !get);
	if (r->status >= 400 || how == UNIX_REFUSED || (how >= TCP_READ_ONLY && !authorized))
		check(!changed);

	/* the event stream: the transport's (api.c), with nothing but the headers */
	check(r->stream == (strcmp(q->path, "/v1/events") == 0 && r->status == 200 && !early));
	if (r->stream) {
		check(get);
		check(strcmp(r->type, "text/event-stream") == 0 && !*r->text);
		return;
	}
	if (strcmp(q->path, "/metrics") == 0 && r->status == 200 && !early) {
		check(strcmp(r->type, "text/plain; version=0.0.4; charset=utf-8") == 0);
		check(exposition(r->text));
		return;
	}
	json_object *o = NULL, *e;
	check(strcmp(r->type, "application/json") == 0);
	check(json_whole(r->text, &o));
	if (r->status >= 400)
		check(json_object_object_get_ex(o, "error", &e) &&
		      json_object_is_type(e, json_type_string));
	else
		check(json_object_is_type(o, json_type_object));
	if (r->status < 300 && !early)
		check_answer(q, r, o, get);
	json_object_put(o);
}

/* ---- one request ---- */

typedef struct {
	char line[4096], target[4096], auth[1024], cl[64];
	args g;
} scratch;

/* Reads a request from [*P, END) into Q (strings in S); false at the end. */
static bool read_request(const char **p, const char *end, scratch *s, nf_request *q,
			 char **ret_body)
{
	char *method, *path, *sp;
	uint64_t n;
	if (!next_line(p, end, s->line, sizeof(s->line)))
		return false;
	*q = (nf_request){.query = query, .userdata = &s->g};
	s->g.n = 0;
	method = s->line;
	sp = strchr(method, ' ');
	if (!sp || sp == method)
		return false; /* libmicrohttpd answers that itself */
	*sp = '\0';
	path = sp + 1;
	path[strcspn(path, " ")] = '\0';
	if (!*path)
		return false;
	snprintf(s->target, sizeof(s->target), "%s", path);
	char *qm = strchr(s->target, '?');
	if (qm)
		*qm++ = '\0', parse_query(qm, &s->g);
	size_t len = nf_route_unescape(s->target);
	if (len != strlen(s->target) || strlen(path) < len)
		__builtin_trap();
	q->method = method, q->path = s->target;

	char h[4096];
	while (next_line(p, end, h, sizeof(h)) && *h) {
		char *colon = strchr(h, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = trim(colon + 1);
		if (strcasecmp(h, "Content-Length") == 0 && q->n_content_length++ == 0)
			q->content_length = strcpy(s->cl, strlen(v) < sizeof(s->cl) ? v : "x");
		q->n_transfer_encoding += strcasecmp(h, "Transfer-Encoding") == 0;
		if (strcasecmp(h, "Authorization") == 0 && !q->authorization)
			q->authorization = strcpy(s->auth, strlen(v) < sizeof(s->auth) ? v : "x");
		q->too_big |= strcasecmp(h, "X-Fuzz-Too-Big") == 0;
	}
	size_t body = q->n_transfer_encoding ? (size_t)(end - *p) : 0;
	if (q->content_length && nf_parse_u64(q->content_length, NULL, &n) == 0)
		body = n < (size_t)(end - *p) ? n : (size_t)(end - *p);
	if (body > NF_API_MAX_BODY)
		q->too_big = true;
	else if (body) /* as api.c keeps it: NUL-terminated, or NULL for none */
		*ret_body = strndup(*p, body), q->body = *ret_body, q->len = body;
	*p += body;
	return true;
}

/* FUZZ_API_TRACE=1: every request and its reply on stderr (to read what a
 * seed reaches: build/fuzz-api -runs=0 tests/fuzz/seeds-api). */
static bool trace;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	trace = getenv("FUZZ_API_TRACE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char first[16];
	if (!next_line(&p, end, first, sizeof(first)))
		return 0;
	transport how = first[0] == 'u'	  ? UNIX_ROOT
			: first[0] == 'n' ? UNIX_REFUSED
			: first[0] == 't' ? TCP_READ_ONLY
			: first[0] == 'k' ? TCP_TOKEN
					  : (unsigned char)first[0] % 4;
	nf_agent *a = fake_agent_new();
	nf_endpoint ep = {.a = a,
			  .tcp = how >= TCP_READ_ONLY,
			  .token = how == TCP_TOKEN ? TOKEN : NULL,
			  .self_check = NULL};
	scratch *s = malloc(sizeof(*s));
	if (!s)
		abort();
	nf_request q;
	char *body = NULL;
	for (int i = 0; i < MAX_REQUESTS && read_request(&p, end, s, &q, &body); i++) {
		unsigned long before = fake_agent_changes(a);
		if (how == UNIX_REFUSED)
			q.refused = "changes need root or the socket's group";
		nf_reply r;
		bool early = nf_route_head(&q, &r);
		if (!early)
			r = nf_route(&ep, &q);
		if (trace)
			fprintf(stderr, "%s %s -> %u %s", q.method, q.path, r.status,
				r.text ? r.text : "(no text)\n");
		check_reply(how, &q, &r, early, fake_agent_changes(a) - before);
		free(r.text);
		free(body);
		body = NULL;
		fake_agent_tick(a);
	}
	free(body);
	free(s);
	fake_agent_free(a);
	return 0;
}
