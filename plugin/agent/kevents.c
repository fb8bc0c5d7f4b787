#include "kevents.h"
#include "../lib/http.h"
#include "../lib/json.h"
#include "../lib/jsonw.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB		1048576.0
#define TOKEN_REREAD_NS (60ull * 1000000000) /* projected tokens rotate (about hourly) */
#define CONNECT_MS	5000
#define TOTAL_MS	15000
#define SERIES_PER_OBJ	3 /* (reason, type) pairs an object's events come in */
#define NOTE_DRAFT	4096

/* ---- the event and its bodies ---- */

void nf_kevent_done(nf_kevent *e)
{
	free(e->pod);
	free(e->ns);
	free(e->uid);
	free(e->note);
	*e = (nf_kevent){0};
}

void nf_kev_time(uint64_t ns, char buf[32])
{
	nf_rfc3339(ns, 6, buf, 32);
}

char *nf_kev_name(const char *pod, uint64_t ns)
{
	char suffix[24];
	int k = snprintf(suffix, sizeof(suffix), ".%llx", (unsigned long long)ns);
	size_t n = strlen(pod);
	if (n > NF_KEV_NAME_MAX - (size_t)k)
		n = NF_KEV_NAME_MAX - k;
	while (n > 0 && (pod[n - 1] == '.' || pod[n - 1] == '-'))
		n--;
	char *name;
	return asprintf(&name, "%.*s%s", (int)n, pod, suffix) < 0 ? NULL : name;
}

typedef struct {
	char buf[NOTE_DRAFT];
	size_t len;
} draft;

static void add(draft *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(draft *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(d->buf + d->len, sizeof(d->buf) - d->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->len = d->len + n < sizeof(d->buf) ? d->len + n : sizeof(d->buf) - 1;
}

/* D as a note: well-formed UTF-8 (a container's name may not be), cut on a
 * character boundary to the API's limit, with an ellipsis when cut. */
static char *note_of(const draft *d)
{
	char *s = nf_utf8_clean(d->buf);
	if (!s || strlen(s) <= NF_KEV_NOTE_MAX)
		return s;
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, 3 bytes */
	size_t n = nf_utf8_prefix(s, NF_KEV_NOTE_MAX - (sizeof(ellipsis) - 1));
	memcpy(s + n, ellipsis, sizeof(ellipsis));
	return s;
}

/* Which container, which change, how long: the sentence's tail. */
static void whom(draft *d, const nf_container *c, const nf_record *r)
{
	char from[NF_NODESET_STRLEN], to[NF_NODESET_STRLEN];
	const char *name = c->name && *c->name ? c->name : NULL;
	add(d,
	    "container %s%s%.12s%s, cpuset.mems %s -> %s, %llu task%s, trigger %s, migration %llu",
	    name ? name : "", name ? " (" : "", c->id, name ? ")" : "",
	    nf_nodeset_format(&r->from, from, sizeof(from)),
	    nf_nodeset_format(&r->to, to, sizeof(to)), (unsigned long long)r->tasks,
	    r->tasks == 1 ? "" : "s", nf_trigger_name(r->trigger), (unsigned long long)r->id);
}

static void followed(draft *d, const nf_container *c, const nf_record *r, uint64_t moved)
{
	char to[NF_NODESET_STRLEN];
	add(d,
	    "Memory followed the pod's NUMA nodes: %.1f MiB moved to node %s in %.2f s (numafollow "
	    "%.1f MiB, kernel %.1f MiB); ",
	    moved / MIB, nf_nodeset_format(&r->to, to, sizeof(to)), r->duration_ms / 1e3,
	    (r->moved_bytes + r->assisted_bytes) / MIB, r->kernel_moved_bytes / MIB);
	whom(d, c, r);
	add(d, ".");
}

/* The record's first errors, if any. */
static void errors(draft *d, const nf_record *r)
{
	for (size_t i = 0; i < r->n_errors && i < 3; i++)
		add(d, " %s.", r->errors[i]);
}

static void left_behind(draft *d, const nf_container *c, const nf_record *r, uint64_t moved)
{
	char to[NF_NODESET_STRLEN];
	add(d,
	    "Memory left behind: %.1f MiB stayed outside node %s after %.1f MiB moved in %.2f s; ",
	    r->residual_bytes / MIB, nf_nodeset_format(&r->to, to, sizeof(to)), moved / MIB,
	    r->duration_ms / 1e3);
	whom(d, c, r);
	add(d, ".");
	for (size_t i = 0; i < r->n_reasons; i++)
		add(d, "%s %s%s", i ? ";" : " Why, and what would move it:", r->reasons[i].text,
		    i + 1 == r->n_reasons ? "." : "");
	errors(d, r);
	add(d,
	    " Once the cause is gone: numafollow migrate --via-agent %.12s (or the next change "
	    "of the mems).",
	    c->id);
}

static void failed(draft *d, const nf_container *c, const nf_record *r)
{
	add(d, "Memory could not follow the pod's NUMA nodes: ");
	whom(d, c, r);
	add(d, ".");
	errors(d, r);
	if (r->n_errors == 0)
		add(d, " See the agent's log and GET /v1/migrations/%llu.",
		    (unsigned long long)r->id);
}

int nf_kevent_from(const nf_container *c, uint64_t now_ns, nf_kevent *ret)
{
	const nf_record *r = c->last;
	const nf_registration *g = c->reg;
	if (!r || r->state != NF_REC_DONE || r->result == NF_RES_SUPERSEDED)
		return -ECANCELED;
	if (!g || !g->pod_name || !*g->pod_name || !g->pod_namespace || !*g->pod_namespace)
		return -ENODATA;
	uint64_t moved = r->moved_bytes + r->kernel_moved_bytes + r->assisted_bytes;
	if (r->result == NF_RES_OK && moved == 0)
		return -ECANCELED; /* checked, nothing to move: nothing to tell */
	draft d = {.len = 0};
	d.buf[0] = '\0';
	nf_kevent e = {.time_ns = now_ns};
	if (r->result == NF_RES_OK) {
		e.type = NF_KEV_NORMAL;
		e.reason = "MemoryFollowed";
		followed(&d, c, r, moved);
	} else if (r->result == NF_RES_PARTIAL) {
		e.type = NF_KEV_WARNING;
		e.reason = "MemoryLeftBehind";
		left_behind(&d, c, r, moved);
	} else {
		e.type = NF_KEV_WARNING;
		e.reason = "MemoryMigrationFailed";
		failed(&d, c, r);
	}
	e.pod = strdup(g->pod_name);
	e.ns = strdup(g->pod_namespace);
	e.uid = strdup(c->pod_uid);
	e.note = note_of(&d);
	if (!e.pod || !e.ns || !e.uid || !e.note) {
		nf_kevent_done(&e);
		return -ENOMEM;
	}
	*ret = e;
	return 0;
}

char *nf_kev_body(const nf_kevent *e, const char *name, const nf_kev_reporter *rep)
{
	char when[32];
	nf_jw w = {0};
	nf_kev_time(e->time_ns, when);
	nf_jw_open(&w, '{');
	nf_jw_kstr(&w, "apiVersion", "events.k8s.io/v1");
	nf_jw_kstr(&w, "kind", "Event");
	nf_jw_key(&w, "metadata");
	nf_jw_open(&w, '{');
	nf_jw_kstr(&w, "name", name);
	nf_jw_kstr(&w, "namespace", e->ns);
	nf_jw_close(&w, '}');
	nf_jw_kstr(&w, "eventTime", when);
	nf_jw_kstr(&w, "reportingController", rep->controller);
	nf_jw_kstr(&w, "reportingInstance", rep->instance);
	nf_jw_kstr(&w, "action", NF_KEV_ACTION);
	nf_jw_kstr(&w, "reason", e->reason);
	nf_jw_kstr(&w, "type", e->type == NF_KEV_WARNING ? "Warning" : "Normal");
	nf_jw_key(&w, "regarding");
	nf_jw_open(&w, '{');
	nf_jw_kstr(&w, "apiVersion", "v1");
	nf_jw_kstr(&w, "kind", "Pod");
	nf_jw_kstr(&w, "namespace", e->ns);
	nf_jw_kstr(&w, "name", e->pod);
	if (*e->uid)
		nf_jw_kstr(&w, "uid", e->uid);
	nf_jw_close(&w, '}');
	nf_jw_kstr(&w, "note", e->note);
	nf_jw_close(&w, '}');
	return nf_jw_done(&w);
}

char *nf_kev_series_patch(uint32_t count, uint64_t last_ns)
{
	char when[32];
	nf_jw w = {0};
	nf_kev_time(last_ns, when);
	nf_jw_open(&w, '{');
	nf_jw_key(&w, "series");
	nf_jw_open(&w, '{');
	nf_jw_key(&w, "count");
	nf_jw_u64(&w, count);
	nf_jw_kstr(&w, "lastObservedTime", when);
	nf_jw_close(&w, '}');
	nf_jw_close(&w, '}');
	return nf_jw_done(&w);
}

uint64_t nf_kev_backoff_ms(unsigned attempt, long retry_after_s)
{
	if (retry_after_s > 0)
		return (uint64_t)(retry_after_s < NF_KEV_RETRY_AFTER_MAX ? retry_after_s
									 : NF_KEV_RETRY_AFTER_MAX) *
		       1000;
	uint64_t ms = NF_KEV_BACKOFF_MS;
	for (unsigned i = 1; i < attempt && ms < NF_KEV_BACKOFF_MAX; i++)
		ms *= 2;
	return ms < NF_KEV_BACKOFF_MAX ? ms : NF_KEV_BACKOFF_MAX;
}

/* ---- the spam filter and the series ---- */

typedef struct {
	const char *reason; /* static text; NULL: a free slot */
	nf_kev_type type;
	char *name; /* the Event whose series this is */
	uint32_t count;
	uint64_t last_ns;
} series;

/* One regarding object: its token bucket and its events' series. */
typedef struct {
	char *key; /* namespace/name/uid */
	double tokens;
	uint64_t at_ns, used_ns;
	series s[SERIES_PER_OBJ];
} object;

struct nf_kev_filter {
	object obj[NF_KEV_OBJECTS];
	size_t n;
};

int nf_kev_filter_new(nf_kev_filter **ret)
{
	nf_kev_filter *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	*ret = f;
	return 0;
}

static void object_clear(object *o)
{
	free(o->key);
	for (size_t i = 0; i < SERIES_PER_OBJ; i++)
		free(o->s[i].name);
	*o = (object){0};
}

void nf_kev_filter_free(nf_kev_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		object_clear(&f->obj[i]);
	free(f);
}

/* E's object, made (in the place of the least recently used when full) with
 * a full bucket; NULL: out of memory. */
static object *object_of(nf_kev_filter *f, const nf_kevent *e, uint64_t now, bool make)
{
	_cleanup_free_ char *key = NULL;
	if (asprintf(&key, "%s/%s/%s", e->ns, e->pod, e->uid) < 0)
		return NULL;
	object *lru = NULL;
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->obj[i].key, key) == 0)
			return &f->obj[i];
		if (!lru || f->obj[i].used_ns < lru->used_ns)
			lru = &f->obj[i];
	}
	if (!make)
		return NULL;
	object *o = f->n < NF_KEV_OBJECTS ? &f->obj[f->n++] : lru;
	object_clear(o);
	*o = (object){.key = TAKE_PTR(key), .tokens = NF_KEV_BURST, .at_ns = now, .used_ns = now};
	return o;
}

static series *series_of(object *o, const nf_kevent *e)
{
	for (size_t i = 0; i < SERIES_PER_OBJ; i++)
		if (o->s[i].reason && strcmp(o->s[i].reason, e->reason) == 0 &&
		    o->s[i].type == e->type)
			return &o->s[i];
	return NULL;
}

/* client-go's token bucket: refills one token per NF_KEV_REFILL_NS. */
static bool take(object *o, uint64_t now)
{
	if (now > o->at_ns) {
		o->tokens += (double)(now - o->at_ns) / NF_KEV_REFILL_NS;
		if (o->tokens > NF_KEV_BURST)
			o->tokens = NF_KEV_BURST;
		o->at_ns = now;
	}
	if (o->tokens < 1)
		return false;
	o->tokens -= 1;
	return true;
}

int nf_kev_filter_plan(nf_kev_filter *f, const nf_kevent *e, uint64_t mono_ns, nf_kev_plan *ret)
{
	object *o = object_of(f, e, mono_ns, true);
	if (!o)
		return -ENOMEM;
	o->used_ns = mono_ns;
	series *s = series_of(o, e);
	bool repeat = s && s->name && mono_ns - s->last_ns < NF_KEV_SERIES_NS;
	if (repeat) {
		s->count++; /* counted even when not sent: the next PATCH says the truth */
		s->last_ns = mono_ns;
	}
	if (!take(o, mono_ns)) {
		*ret = (nf_kev_plan){.verdict = NF_KEV_LIMITED};
		return 0;
	}
	*ret = repeat ? (nf_kev_plan){.verdict = NF_KEV_SERIES, .name = s->name, .count = s->count}
		      : (nf_kev_plan){.verdict = NF_KEV_CREATE};
	return 0;
}

int nf_kev_filter_created(nf_kev_filter *f, const nf_kevent *e, const char *name, uint64_t mono_ns)
{
	object *o = object_of(f, e, mono_ns, true);
	if (!o)
		return -ENOMEM;
	series *s = series_of(o, e);
	for (size_t i = 0; !s && i < SERIES_PER_OBJ; i++)
		if (!o->s[i].reason)
			s = &o->s[i];
	if (!s) /* a fourth kind of event: it takes the oldest's place */
		for (size_t i = 0; i < SERIES_PER_OBJ; i++)
			if (!s || o->s[i].last_ns < s->last_ns)
				s = &o->s[i];
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	free(s->name);
	*s = (series){
	    .reason = e->reason, .type = e->type, .name = copy, .count = 1, .last_ns = mono_ns};
	return 0;
}

void nf_kev_filter_forget(nf_kev_filter *f, const nf_kevent *e)
{
	object *o = object_of(f, e, 0, false);
	series *s = o ? series_of(o, e) : NULL;
	if (s) {
		free(s->name);
		*s = (series){0};
	}
}

/* ---- the sender ---- */

const char *nf_kev_fail_name(nf_kev_fail f)
{
	static const char *const names[NF_KEV_FAIL_COUNT] = {
	    "unreachable", "server_error", "throttled", "unauthorized", "forbidden", "rejected"};
	return f < NF_KEV_FAIL_COUNT ? names[f] : "?";
}

/* ---- the service account's ca.crt, in form ---- */

static int b64_value(char c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

/* The DER of a PEM body [S, E): base64 in lines, '=' padding at the end. */
static int b64_decode(const char *s, const char *e, unsigned char *out, size_t *ret_len)
{
	size_t n = 0, pad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	for (; s < e; s++) {
		int v;
		if (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad || (v = b64_value(*s)) < 0)
			return -EINVAL;
		acc = acc << 6 | v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[n++] = acc >> bits & 0xff;
		}
	}
	if (pad > 2)
		return -EINVAL;
	*ret_len = n;
	return 0;
}

/* One DER SEQUENCE filling D[0, N): tag, length (short or long form), body. */
static bool der_sequence(const unsigned char *d, size_t n)
{
	if (n < 2 || d[0] != 0x30)
		return false;
	size_t len = d[1], head = 2;
	if (len & 0x80) {
		unsigned k = len & 0x7f;
		if (k == 0 || k > 4 || n < 2 + k)
			return false;
		len = 0;
		for (unsigned i = 0; i < k; i++)
			len = len << 8 | d[2 + i];
		head += k;
	}
	return head + len == n;
}

int nf_kev_ca_check(const char *text)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----",
			  end[] = "-----END CERTIFICATE-----";
	unsigned certs = 0;
	for (const char *p = text;;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			break;
		if (strncmp(p, begin, strlen(begin)) != 0)
			return -EINVAL;
		const char *body = p + strlen(begin), *e = strstr(body, end);
		if (!e)
			return -EINVAL;
		_cleanup_free_ unsigned char *der = malloc(e - body);
		size_t n;
		if (!der)
			return -ENOMEM;
		if (b64_decode(body, e, der, &n) < 0 || !der_sequence(der, n))
			return -EINVAL;
		certs++;
		p = e + strlen(end);
	}
	return certs ? 0 : -EINVAL;
}

struct nf_kevents {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool stopping;
	_Atomic bool abort; /* stopping: a request under way ends now */
	nf_kevent *queue;   /* a ring of queue_max */
	size_t head, n, queue_max;
	nf_kevents_stats stats;

	/* the sender's own, after the start */
	char *url, *token_path, *ca_path, *token, *instance;
	uint64_t token_at;
	nf_kev_filter *filter;
	bool logged[NF_KEV_FAIL_COUNT]; /* said since the last success */
};

bool nf_kevents_in_cluster(const char *sa_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	return host && *host && access(path, R_OK) == 0;
}

static int read_token(nf_kevents *k)
{
	char *t = NULL;
	int r = nf_read_line(k->token_path, &t);
	if (r < 0)
		return r;
	if (!*t) {
		free(t);
		return -ENODATA;
	}
	free(k->token);
	k->token = t;
	k->token_at = nf_now_ns();
	return 0;
}

/* Waits MS, or less when stopping; false when stopping. */
static bool pause_ms(nf_kevents *k, uint64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&k->lock);
	while (!k->stopping && pthread_cond_timedwait(&k->cond, &k->lock, &until) != ETIMEDOUT)
		;
	bool go = !k->stopping;
	pthread_mutex_unlock(&k->lock);
	return go;
}

static void count(nf_kevents *k, uint64_t *counter)
{
	pthread_mutex_lock(&k->lock);
	(*counter)++;
	pthread_mutex_unlock(&k->lock);
}

/* The API server's own words (a Status's message) for the log. */
static void server_words(const nf_http_reply *rep, char *buf, size_t len)
{
	_cleanup_json_ json_object *o = rep->body ? json_tokener_parse(rep->body) : NULL;
	const char *msg = nf_json_string(o, "message");
	snprintf(buf, len, "%s", msg ? msg : "");
}

typedef struct {
	int err;	  /* nf_http's, when no answer came */
	long status;	  /* else the answer's */
	char detail[300]; /* curl's or the server's words */
	unsigned attempts;
} outcome;

static bool ok(const outcome *o)
{
	return o->err == 0 && o->status >= 200 && o->status < 300;
}

static nf_kev_fail kind(const outcome *o)
{
	if (o->err)
		return NF_KEV_FAIL_UNREACHABLE;
	if (o->status >= 500)
		return NF_KEV_FAIL_SERVER;
	switch (o->status) {
	case 429:
		return NF_KEV_FAIL_THROTTLED;
	case 401:
		return NF_KEV_FAIL_UNAUTHORIZED;
	case 403:
		return NF_KEV_FAIL_FORBIDDEN;
	default:
		return NF_KEV_FAIL_REJECTED;
	}
}

static bool retryable(nf_kev_fail f)
{
	return f == NF_KEV_FAIL_UNREACHABLE || f == NF_KEV_FAIL_SERVER ||
	       f == NF_KEV_FAIL_THROTTLED;
}

/* One request with its retries: connection errors, 5xx and 429 again after a
 * backoff (the server's Retry-After when it gave one), NF_KEV_ATTEMPTS in
 * all; a 401 once more with the token re-read (it rotates); nothing else. */
static outcome request(nf_kevents *k, const char *method, const char *path, const char *body,
		       const char *type)
{
	outcome o = {0};
	bool reread = false;
	for (unsigned attempt = 1;; attempt++) {
		if (nf_now_ns() - k->token_at > TOKEN_REREAD_NS)
			read_token(k); /* on failure the old one goes on */
		nf_http_peer p = {.url = k->url,
				  .token = k->token,
				  .ca_file = k->ca_path,
				  .content_type = type,
				  .connect_ms = CONNECT_MS,
				  .total_ms = TOTAL_MS,
				  .abort = &k->abort};
		nf_http_reply rep = {0};
		o = (outcome){.err = nf_http(&p, method, path, body, &rep), .status = rep.status};
		if (o.err)
			snprintf(o.detail, sizeof(o.detail), "%s", rep.error);
		else if (!ok(&o))
			server_words(&rep, o.detail, sizeof(o.detail));
		long after = rep.retry_after_s;
		nf_http_reply_done(&rep);
		o.attempts = attempt;
		if (ok(&o) || o.err == -ECANCELED)
			return o;
		nf_kev_fail f = kind(&o);
		if (f == NF_KEV_FAIL_UNAUTHORIZED && !reread && read_token(k) == 0) {
			reread = true;
			attempt--;
			continue;
		}
		if (!retryable(f) || attempt >= NF_KEV_ATTEMPTS)
			return o;
		uint64_t ms = nf_kev_backoff_ms(attempt, after);
		nf_log(LOG_DEBUG, "kube events: %s %s: %s%s%s; retry in %llu ms", method, path,
		       nf_kev_fail_name(f), *o.detail ? ": " : "", o.detail,
		       (unsigned long long)ms);
		count(k, &k->stats.retries);
		if (!pause_ms(k, ms))
			return o;
	}
}

static const char *hint(nf_kev_fail f)
{
	switch (f) {
	case NF_KEV_FAIL_FORBIDDEN:
		return "; the service account needs create and patch on events (the ClusterRole "
		       "in deploy/kubernetes/numafollow.yaml); not retried";
	case NF_KEV_FAIL_UNAUTHORIZED:
		return "; the service account token was refused, also re-read";
	case NF_KEV_FAIL_REJECTED:
		return "; the API server refused the event; not retried";
	default:
		return "; given up after retries";
	}
}

/* Once per kind of failure until a success: a down API server must not fill
 * the log with one line per migration. */
static void failure(nf_kevents *k, const nf_kevent *e, const outcome *o)
{
	if (o->err == -ECANCELED) { /* the stop, not the server */
		nf_log(LOG_INFO, "kube events: event %s about pod %s/%s cut short by the stop",
		       e->reason, e->ns, e->pod);
		return;
	}
	nf_kev_fail f = kind(o);
	count(k, &k->stats.failed[f]);
	char status[32] = "";
	if (!o->err)
		snprintf(status, sizeof(status), "HTTP %ld", o->status);
	nf_log(k->logged[f] ? LOG_DEBUG : LOG_WARNING,
	       "kube events: event %s about pod %s/%s not delivered to %s: %s (%s%s%s)%s%s",
	       e->reason, e->ns, e->pod, k->url, nf_kev_fail_name(f), status,
	       *status && *o->detail ? ": " : "", o->detail, hint(f),
	       k->logged[f] ? "" : "; further failures of this kind are logged at debug level");
	k->logged[f] = true;
}

static void success(nf_kevents *k, const nf_kevent *e, bool patched)
{
	bool was_failing = false;
	for (int f = 0; f < NF_KEV_FAIL_COUNT; f++)
		was_failing |= k->logged[f], k->logged[f] = false;
	count(k, patched ? &k->stats.patched : &k->stats.created);
	nf_log(was_failing ? LOG_NOTICE : LOG_DEBUG, "kube events: %s%s %s about pod %s/%s%s",
	       patched ? "series of " : "", e->reason, patched ? "counted" : "created", e->ns,
	       e->pod, was_failing ? " (delivered again)" : "");
}

static char *events_path(const nf_kevent *e, const char *name)
{
	_cleanup_free_ char *ns = nf_http_escape(e->ns), *n = name ? nf_http_escape(name) : NULL;
	char *p;
	if (!ns || (name && !n) ||
	    asprintf(&p, "/apis/events.k8s.io/v1/namespaces/%s/events%s%s", ns, n ? "/" : "",
		     n ? n : "") < 0)
		return NULL;
	return p;
}

/* Creates E as a new Event; the filter learns its name. */
static void create(nf_kevents *k, const nf_kevent *e, uint64_t mono)
{
	nf_kev_reporter rep = {.controller = NF_KEV_CONTROLLER, .instance = k->instance};
	_cleanup_free_ char *name = nf_kev_name(e->pod, e->time_ns);
	_cleanup_free_ char *body = name ? nf_kev_body(e, name, &rep) : NULL;
	_cleanup_free_ char *path = events_path(e, NULL);
	if (!body || !path) {
		nf_log(LOG_WARNING, "kube events: out of memory for an event about pod %s/%s",
		       e->ns, e->pod);
		return;
	}
	outcome o = request(k, "POST", path, body, NULL);
	/* a retried create that finds its name taken: an attempt that timed out
	 * was committed after all */
	if (!o.err && o.status == 409 && o.attempts > 1)
		nf_log(LOG_DEBUG, "kube events: POST %s: 409 on attempt %u: created before", path,
		       o.attempts);
	else if (!ok(&o))
		return failure(k, e, &o);
	nf_kev_filter_created(k->filter, e, name, mono);
	success(k, e, false);
}

static void deliver(nf_kevents *k, const nf_kevent *e)
{
	uint64_t mono = nf_now_ns();
	nf_kev_plan plan;
	if (nf_kev_filter_plan(k->filter, e, mono, &plan) < 0)
		return;
	if (plan.verdict == NF_KEV_LIMITED) {
		count(k, &k->stats.rate_limited);
		nf_log(LOG_DEBUG, "kube events: %s about pod %s/%s over the rate of its object",
		       e->reason, e->ns, e->pod);
		return;
	}
	if (plan.verdict == NF_KEV_CREATE)
		return create(k, e, mono);
	_cleanup_free_ char *patch = nf_kev_series_patch(plan.count, e->time_ns);
	_cleanup_free_ char *path = events_path(e, plan.name);
	if (!patch || !path)
		return;
	outcome o = request(k, "PATCH", path, patch, "application/merge-patch+json");
	if (!o.err && o.status == 404) { /* expired (the server keeps events an hour) */
		nf_kev_filter_forget(k->filter, e);
		return create(k, e, mono);
	}
	if (!ok(&o))
		return failure(k, e, &o);
	success(k, e, true);
}

static void *sender(void *userdata)
{
	nf_kevents *k = userdata;
	for (;;) {
		pthread_mutex_lock(&k->lock);
		while (!k->stopping && k->n == 0)
			pthread_cond_wait(&k->cond, &k->lock);
		if (k->stopping) {
			pthread_mutex_unlock(&k->lock);
			return NULL;
		}
		nf_kevent e = k->queue[k->head];
		k->head = (k->head + 1) % k->queue_max;
		k->n--;
		pthread_mutex_unlock(&k->lock);
		deliver(k, &e);
		nf_kevent_done(&e);
	}
}

void nf_kevents_record(const nf_container *c, void *userdata)
{
	nf_kevents *k = userdata;
	struct timespec now;
	nf_kevent e;
	if (!k)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	int r = nf_kevent_from(c, (uint64_t)now.tv_sec * 1000000000 + now.tv_nsec, &e);
	if (r == -ENODATA)
		nf_log(LOG_DEBUG,
		       "kube events: container %s has no pod name and namespace "
		       "registered: no event",
		       c->id);
	if (r < 0)
		return;
	pthread_mutex_lock(&k->lock);
	bool full = k->n == k->queue_max;
	if (full) {
		k->stats.dropped++;
	} else {
		k->queue[(k->head + k->n) % k->queue_max] = e;
		k->n++;
		pthread_cond_signal(&k->cond);
	}
	uint64_t dropped = k->stats.dropped;
	pthread_mutex_unlock(&k->lock);
	if (full) {
		/* a power of two: 1, 2, 4... lines for any number of drops */
		if ((dropped & (dropped - 1)) == 0)
			nf_log(LOG_WARNING,
			       "kube events: the queue is full (%zu waiting for %s); dropped the "
			       "event about pod %s/%s (%llu dropped so far)",
			       k->queue_max, k->url, e.ns, e.pod, (unsigned long long)dropped);
		nf_kevent_done(&e);
	}
}

static int config(nf_kevents *k, const nf_kevents_config *cfg, const char **ret_msg)
{
	const char *dir = cfg->sa_dir;
	char host[300], node[256];
	if (!cfg->host || !*cfg->host || !cfg->port || !*cfg->port)
		return *ret_msg = "KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set",
		       -ENXIO;
	/* an IPv6 address goes in brackets */
	snprintf(host, sizeof(host), strchr(cfg->host, ':') ? "[%s]" : "%s", cfg->host);
	if (cfg->node && *cfg->node)
		snprintf(node, sizeof(node), "%s", cfg->node);
	else if (gethostname(node, sizeof(node)) < 0)
		snprintf(node, sizeof(node), "unknown");
	node[sizeof(node) - 1] = '\0';
	if (asprintf(&k->url, "https://%s:%s", host, cfg->port) < 0 ||
	    asprintf(&k->token_path, "%s/token", dir) < 0 ||
	    asprintf(&k->ca_path, "%s/ca.crt", dir) < 0 ||
	    asprintf(&k->instance, "numafollow-%s", node) < 0)
		return *ret_msg = "out of memory", -ENOMEM;
	k->instance[nf_utf8_prefix(k->instance, NF_KEV_FIELD_MAX)] = '\0';
	_cleanup_free_ char *ca = NULL;
	int e = nf_read_file_max(k->ca_path, 1 << 20, &ca, NULL);
	if (e < 0)
		return *ret_msg = "cannot read the service account's ca.crt", e;
	if (nf_kev_ca_check(ca) < 0)
		return *ret_msg = "the service account's ca.crt holds no PEM certificate, or "
				  "something else besides",
		       -EINVAL;
	int r = read_token(k);
	if (r < 0)
		return *ret_msg = "cannot read the service account's token", r;
	return 0;
}

static void free_kevents(nf_kevents *k)
{
	while (k->n) {
		nf_kevent_done(&k->queue[k->head]);
		k->head = (k->head + 1) % k->queue_max;
		k->n--;
	}
	free(k->queue);
	free(k->url);
	free(k->token_path);
	free(k->ca_path);
	free(k->token);
	free(k->instance);
	nf_kev_filter_free(k->filter);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	free(k);
}

int nf_kevents_start(const nf_kevents_config *cfg, nf_kevents **ret, const char **ret_msg)
{
	nf_kevents *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	if (!k)
		return *ret_msg = "out of memory", -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	k->queue_max = cfg->queue_max ? cfg->queue_max : 1;
	int r = config(k, cfg, ret_msg);
	if (r == 0 && (!(k->queue = calloc(k->queue_max, sizeof(*k->queue))) ||
		       nf_kev_filter_new(&k->filter) < 0))
		*ret_msg = "out of memory", r = -ENOMEM;
	if (r == 0 && (r = -pthread_create(&k->thread, NULL, sender, k)) < 0)
		*ret_msg = "cannot start its thread";
	if (r < 0) {
		free_kevents(k);
		return r;
	}
	*ret = k;
	return 0;
}

void nf_kevents_stop(nf_kevents *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stopping = true;
	atomic_store(&k->abort, true);
	size_t left = k->n;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	if (left)
		nf_log(LOG_INFO, "kube events: %zu not sent at the stop", left);
	free_kevents(k);
}

void nf_kevents_stats_get(nf_kevents *k, nf_kevents_stats *ret)
{
	if (!k) {
		*ret = (nf_kevents_stats){0};
		return;
	}
	pthread_mutex_lock(&k->lock);
	*ret = k->stats;
	ret->queued = k->n;
	pthread_mutex_unlock(&k->lock);
	ret->enabled = true;
}

const char *nf_kevents_server(const nf_kevents *k)
{
	return k ? k->url : NULL;
}
