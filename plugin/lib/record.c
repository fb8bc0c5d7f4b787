#include "record.h"
#include "json.h"
#include "../../cgroup/util.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const trigger_names[NF_TRIG_COUNT] = {"inotify", "reconcile", "hook",
							 "api",	    "move",	 "nri"};
static const char *const result_names[NF_RES_COUNT] = {"ok", "partial", "failed", "superseded"};
static const char *const state_names[NF_REC_STATE_COUNT] = {"queued", "running", "done"};

const char *nf_trigger_name(nf_trigger t)
{
	return trigger_names[t];
}

const char *nf_result_name(nf_result r)
{
	return result_names[r];
}

const char *nf_record_status(const nf_record *r)
{
	return r->state == NF_REC_DONE ? result_names[r->result] : state_names[r->state];
}

/* NAMES[i] == S: i, else -1. */
static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

nf_record *nf_record_new(uint64_t id, const char *container, const char *cgroup, nf_trigger t,
			 const nf_nodeset *from, const nf_nodeset *to)
{
	nf_record *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	*r = (nf_record){.id = id, .trigger = t, .from = *from, .to = *to};
	atomic_init(&r->refs, 1);
	r->container = strdup(container);
	r->cgroup = strdup(cgroup);
	if (!r->container || !r->cgroup) {
		nf_record_unref(r);
		return NULL;
	}
	return r;
}

nf_record *nf_record_ref(nf_record *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

static void free_errors(nf_record *r)
{
	for (size_t i = 0; i < r->n_errors; i++)
		free(r->errors[i]);
	free(r->errors);
	r->errors = NULL;
	r->n_errors = 0;
}

void nf_record_unref(nf_record *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) > 1)
		return;
	free(r->container);
	free(r->cgroup);
	free_errors(r);
	free(r->reasons);
	free(r);
}

void nf_record_start(nf_record *r)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	nf_rfc3339((uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, 3, r->started_at,
		   sizeof(r->started_at));
	r->state = NF_REC_RUNNING;
}

void nf_record_progress_set(nf_record *r, const nf_progress *p)
{
	nf_record_progress *g = &r->progress;
	unsigned s = atomic_load_explicit(&g->seq, memory_order_relaxed);
	atomic_store_explicit(&g->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&g->phase, p->phase, memory_order_relaxed);
	atomic_store_explicit(&g->done, p->done_bytes, memory_order_relaxed);
	atomic_store_explicit(&g->total, p->total_bytes, memory_order_relaxed);
	atomic_store_explicit(&g->elapsed_ns, p->elapsed_ns, memory_order_relaxed);
	atomic_store_explicit(&g->move_ns, p->move_ns, memory_order_relaxed);
	atomic_store_explicit(&g->seq, s + 2, memory_order_release);
}

bool nf_record_progress_get(const nf_record *r, nf_progress *ret)
{
	nf_record_progress *g = (nf_record_progress *)&r->progress;
	for (int tries = 0; tries < 100; tries++) {
		unsigned s1 = atomic_load_explicit(&g->seq, memory_order_acquire);
		if (!s1)
			return false;
		if (s1 & 1)
			continue;
		nf_progress p = {
		    .phase = atomic_load_explicit(&g->phase, memory_order_relaxed),
		    .done_bytes = atomic_load_explicit(&g->done, memory_order_relaxed),
		    .total_bytes = atomic_load_explicit(&g->total, memory_order_relaxed),
		    .elapsed_ns = atomic_load_explicit(&g->elapsed_ns, memory_order_relaxed),
		    .move_ns = atomic_load_explicit(&g->move_ns, memory_order_relaxed),
		};
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&g->seq, memory_order_relaxed) == s1) {
			*ret = p;
			return true;
		}
	}
	return false;
}

static bool put_u64(json_object *o, const char *key, uint64_t v);

json_object *nf_progress_json(const nf_progress *p)
{
	json_object *o = json_object_new_object();
	bool ok = o && nf_json_add(o, "phase", json_object_new_string(nf_phase_name(p->phase))) &&
		  put_u64(o, "moved_bytes", p->done_bytes) &&
		  put_u64(o, "total_bytes", p->total_bytes) &&
		  put_u64(o, "rate_bytes_per_s", nf_progress_rate(p)) &&
		  put_u64(o, "eta_s", nf_progress_eta_s(p)) &&
		  put_u64(o, "elapsed_ms", p->elapsed_ns / 1000000);
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

static nf_result classify(int err, const nf_migration *m)
{
	if (err < 0)
		return NF_RES_FAILED;
	if (m->cancelled)
		return NF_RES_SUPERSEDED;
	if (m->tasks_failed && !m->tasks_migrated)
		return NF_RES_FAILED;
	return m->residual_bytes || m->tasks_failed ? NF_RES_PARTIAL : NF_RES_OK;
}

static int add_error(nf_record *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_error(nf_record *r, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	char **e = n < 0 ? NULL : reallocarray(r->errors, r->n_errors + 1, sizeof(*e));
	if (!e) {
		if (n >= 0)
			free(msg);
		return -ENOMEM;
	}
	r->errors = e;
	r->errors[r->n_errors++] = msg;
	return 0;
}

int nf_record_finish(nf_record *r, int err, const nf_migration *m, uint64_t kernel, uint64_t ns)
{
	int ret = 0;
	r->state = NF_REC_DONE;
	r->result = classify(err, m);
	r->duration_ms = ns / 1000000;
	r->kernel_moved_bytes = kernel;
	if (err < 0)
		return add_error(r, "could not start: %s", strerror(-err));
	r->tasks = m->tasks;
	r->tasks_failed = m->tasks_failed;
	r->pages_not_moved = m->pages_not_moved;
	r->moved_bytes = m->moved_bytes;
	r->residual_bytes = m->residual_bytes;
	memcpy(r->residual, m->residual, sizeof(r->residual));
	r->method = m->method;
	r->threads = m->threads;
	r->gentle_bytes = m->gentle_bytes;
	memcpy(r->stayed, m->stayed, sizeof(r->stayed));
	nf_reason why[NF_REASONS_MAX];
	size_t n = nf_explain(m, &r->to, why);
	if (n && (r->reasons = malloc(n * sizeof(*why)))) {
		memcpy(r->reasons, why, n * sizeof(*why));
		r->n_reasons = n;
	}
	for (size_t i = 0; i < m->n_errors && ret == 0; i++)
		ret = add_error(r, "pid %d: %s: %s", m->errors[i].pid, m->errors[i].what,
				strerror(m->errors[i].err));
	return ret;
}

int nf_record_abandon(nf_record *r, const char *why)
{
	r->state = NF_REC_DONE;
	r->result = NF_RES_FAILED;
	return add_error(r, "%s", why);
}

/* ---- JSON ---- */

static bool put_u64(json_object *o, const char *key, uint64_t v)
{
	return nf_json_add(o, key, json_object_new_int64(v));
}

static json_object *residual_json(const nf_record *r)
{
	json_object *o = json_object_new_object();
	for (int c = 0; o && c < NF_STAY_COUNT; c++)
		if (r->residual[c] && !put_u64(o, nf_stay_class_name(c), r->residual[c]))
			return json_object_put(o), NULL;
	return o;
}

static json_object *errors_json(const nf_record *r)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < r->n_errors; i++)
		if (!nf_json_append(a, json_object_new_string(r->errors[i])))
			return json_object_put(a), NULL;
	return a;
}

json_object *nf_stayed_json(const uint64_t stayed[NF_MOVE_ERR_COUNT])
{
	json_object *o = json_object_new_object();
	for (int c = 0; o && c < NF_MOVE_ERR_COUNT; c++)
		if (stayed[c] && !put_u64(o, nf_move_err_name(c), stayed[c]))
			return json_object_put(o), NULL;
	return o;
}

json_object *nf_reasons_json(const nf_reason *why, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < n; i++) {
		json_object *o = json_object_new_object();
		if (!o ||
		    !nf_json_add(o, "class", json_object_new_string(nf_why_name(why[i].why))) ||
		    !put_u64(o, "bytes", why[i].bytes) ||
		    !nf_json_add(o, "text", json_object_new_string(why[i].text))) {
			json_object_put(o);
			return json_object_put(a), NULL;
		}
		if (!nf_json_append(a, o))
			return json_object_put(a), NULL;
	}
	return a;
}

static json_object *stages_json(const nf_record *r)
{
	json_object *o = json_object_new_object();
	if (o && put_u64(o, "widen_ms", r->widen_ms) && put_u64(o, "move_ms", r->move_ms) &&
	    put_u64(o, "narrow_ms", r->narrow_ms))
		return o;
	json_object_put(o);
	return NULL;
}

/* How it moved: only records that know (not those of numafollow 0.2.0). */
static bool put_engine(json_object *o, const nf_record *r)
{
	uint64_t rate = r->duration_ms ? r->moved_bytes * 1000 / r->duration_ms : 0;
	return r->method == NF_METHOD_AUTO ||
	       (nf_json_add(o, "method", json_object_new_string(nf_method_name(r->method))) &&
		put_u64(o, "threads", r->threads) && put_u64(o, "gentle_bytes", r->gentle_bytes) &&
		put_u64(o, "assisted_bytes", r->assisted_bytes) &&
		put_u64(o, "rate_bytes_per_s", rate) &&
		nf_json_add(o, "stayed", nf_stayed_json(r->stayed)) &&
		nf_json_add(o, "reasons", nf_reasons_json(r->reasons, r->n_reasons)) &&
		(!r->staged || nf_json_add(o, "stages", stages_json(r))));
}

static bool put_outcome(json_object *o, const nf_record *r)
{
	return put_u64(o, "duration_ms", r->duration_ms) && put_u64(o, "tasks", r->tasks) &&
	       put_u64(o, "tasks_failed", r->tasks_failed) &&
	       put_u64(o, "pages_not_moved", r->pages_not_moved) &&
	       put_u64(o, "kernel_moved_bytes", r->kernel_moved_bytes) &&
	       put_u64(o, "moved_bytes", r->moved_bytes) &&
	       put_u64(o, "residual_bytes", r->residual_bytes) &&
	       nf_json_add(o, "residual", residual_json(r)) &&
	       nf_json_add(o, "errors", errors_json(r)) && put_engine(o, r);
}

json_object *nf_record_json(const nf_record *r)
{
	json_object *o = json_object_new_object();
	bool ok = o && put_u64(o, "id", r->id) &&
		  nf_json_add(o, "container", nf_json_text(r->container)) &&
		  nf_json_add(o, "cgroup", nf_json_text(r->cgroup)) &&
		  nf_json_add(o, "trigger", json_object_new_string(nf_trigger_name(r->trigger))) &&
		  nf_json_add(o, "from", nf_json_nodeset(&r->from)) &&
		  nf_json_add(o, "to", nf_json_nodeset(&r->to)) &&
		  nf_json_add(o, "result", json_object_new_string(nf_record_status(r)));
	if (ok && r->state != NF_REC_QUEUED)
		ok = nf_json_add(o, "started_at", json_object_new_string(r->started_at));
	if (ok && r->state == NF_REC_DONE)
		ok = put_outcome(o, r);
	nf_progress p;
	if (ok && r->state == NF_REC_RUNNING && nf_record_progress_get(r, &p))
		ok = nf_json_add(o, "progress", nf_progress_json(&p));
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* ---- reading back ---- */

static int get_u64(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0; /* absent: 0 (a queued record has none of them) */
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EINVAL;
	*ret = json_object_get_int64(v);
	return 0;
}

static int get_nodes(json_object *o, const char *key, nf_nodeset *ret)
{
	const char *s = nf_json_string(o, key);
	return s ? nf_nodeset_parse(s, ret) : -EINVAL;
}

static int parse_residual(json_object *o, nf_record *r)
{
	json_object *res;
	if (!json_object_object_get_ex(o, "residual", &res))
		return 0;
	for (int c = 0; c < NF_STAY_COUNT; c++)
		if (get_u64(res, nf_stay_class_name(c), &r->residual[c]) < 0)
			return -EINVAL;
	return 0;
}

static int parse_errors(json_object *o, nf_record *r)
{
	json_object *a;
	if (!json_object_object_get_ex(o, "errors", &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EINVAL;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);
		if (!json_object_is_type(s, json_type_string))
			return -EINVAL;
		if (add_error(r, "%s", json_object_get_string(s)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int parse_reasons(json_object *o, nf_record *r)
{
	json_object *a;
	if (!json_object_object_get_ex(o, "reasons", &a))
		return 0;
	/* the type first: json-c asserts on the length of what is not an array */
	if (!json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) > NF_REASONS_MAX)
		return -EINVAL;
	size_t n = json_object_array_length(a);
	if (n && !(r->reasons = calloc(n, sizeof(*r->reasons))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *w = json_object_array_get_idx(a, i);
		const char *cls = nf_json_string(w, "class"), *text = nf_json_string(w, "text");
		nf_reason *x = &r->reasons[r->n_reasons];
		if (!cls || !text || nf_why_parse(cls, &x->why) < 0 ||
		    get_u64(w, "bytes", &x->bytes) < 0)
			return -EINVAL;
		snprintf(x->text, sizeof(x->text), "%s", text);
		r->n_reasons++;
	}
	return 0;
}

/* How it moved; absent from the records of numafollow 0.2.0. */
static int parse_engine(json_object *o, nf_record *r)
{
	const char *method = nf_json_string(o, "method");
	json_object *st;
	uint64_t threads = 0;
	if (!method)
		return 0;
	if (nf_method_parse(method, &r->method) < 0 || get_u64(o, "threads", &threads) < 0 ||
	    get_u64(o, "gentle_bytes", &r->gentle_bytes) < 0 ||
	    get_u64(o, "assisted_bytes", &r->assisted_bytes) < 0)
		return -EINVAL;
	r->threads = threads;
	if (json_object_object_get_ex(o, "stages", &st)) {
		r->staged = true;
		if (get_u64(st, "widen_ms", &r->widen_ms) < 0 ||
		    get_u64(st, "move_ms", &r->move_ms) < 0 ||
		    get_u64(st, "narrow_ms", &r->narrow_ms) < 0)
			return -EINVAL;
	}
	if (json_object_object_get_ex(o, "stayed", &st))
		for (int c = 0; c < NF_MOVE_ERR_COUNT; c++)
			if (get_u64(st, nf_move_err_name(c), &r->stayed[c]) < 0)
				return -EINVAL;
	return parse_reasons(o, r);
}

/* The members that only a started or concluded record has. */
static int parse_outcome(json_object *o, nf_record *r)
{
	const char *started = nf_json_string(o, "started_at");
	if (started && strlen(started) >= sizeof(r->started_at))
		return -EINVAL;
	if (started)
		strcpy(r->started_at, started);
	int e = 0;
	e = e ?: get_u64(o, "duration_ms", &r->duration_ms);
	e = e ?: get_u64(o, "tasks", &r->tasks);
	e = e ?: get_u64(o, "tasks_failed", &r->tasks_failed);
	e = e ?: get_u64(o, "pages_not_moved", &r->pages_not_moved);
	e = e ?: get_u64(o, "kernel_moved_bytes", &r->kernel_moved_bytes);
	e = e ?: get_u64(o, "moved_bytes", &r->moved_bytes);
	e = e ?: get_u64(o, "residual_bytes", &r->residual_bytes);
	e = e ?: parse_residual(o, r);
	e = e ?: parse_engine(o, r);
	return e ?: parse_errors(o, r);
}

static int parse_status(const char *s, nf_record *r)
{
	int i = lookup(result_names, NF_RES_COUNT, s);
	if (i >= 0) {
		r->state = NF_REC_DONE;
		r->result = i;
		return 0;
	}
	i = lookup(state_names, NF_REC_DONE, s);
	if (i < 0)
		return -EINVAL;
	r->state = i;
	return 0;
}

int nf_record_parse(json_object *o, nf_record **ret, const char **ret_msg)
{
	uint64_t id = 0;
	nf_nodeset from = {0}, to = {0};
	const char *container = nf_json_string(o, "container"),
		   *cgroup = nf_json_string(o, "cgroup");
	int t = lookup(trigger_names, NF_TRIG_COUNT, nf_json_string(o, "trigger"));
	const char *why = !json_object_is_type(o, json_type_object) ? "not a JSON object"
			  : get_u64(o, "id", &id) < 0 || id == 0 ? "'id' is not a positive integer"
			  : !container || !cgroup ? "'container' or 'cgroup' is missing"
			  : t < 0		  ? "'trigger' is missing or unknown"
			  : get_nodes(o, "from", &from) < 0 || get_nodes(o, "to", &to) < 0
			      ? "'from' or 'to' is not a node list"
			      : NULL;
	if (why) {
		if (ret_msg)
			*ret_msg = why;
		return -EINVAL;
	}
	nf_record *r = nf_record_new(id, container, cgroup, t, &from, &to);
	if (!r)
		return -ENOMEM;
	int e = parse_status(nf_json_string(o, "result"), r);
	if (e < 0)
		why = "'result' is missing or unknown";
	else if ((e = parse_outcome(o, r)) == -EINVAL)
		why = "a count, 'residual' or 'errors' is malformed";
	if (e < 0) {
		nf_record_unref(r);
		if (ret_msg && why)
			*ret_msg = why;
		return e;
	}
	*ret = r;
	return 0;
}
