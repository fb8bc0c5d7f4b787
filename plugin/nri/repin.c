/* The gentle CRI re-pin after the answer (repin.h). */
#include "repin.h"
#include "agentc.h"
#include "../lib/json.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_WAIT_S   30  /* how long an agent that does not answer is waited for */
#define RUNTIME_WAIT_S 600 /* how long a narrowing waits for a runtime to come back */
#define MOVE_TRIES     3

typedef enum { PH_WIDENING, PH_MOVING, PH_RECOVERED } phase;

typedef struct repin {
	struct repin *next;
	nf_repins *rp;
	char *id;
	nf_nodeset old, new, uni;
	phase ph;
	bool superseded; /* a newer update or the container's removal: no narrowing */
	bool running;	 /* a thread has it; the thread unlinks and frees it */
	uint64_t t0_ns, applied_ns;
	char started_at[32];
} repin;

struct nf_repins {
	nf_repin_config cfg;
	char *dir;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	repin *list;
	unsigned threads;
	bool stopping;
};

/* What the move and the narrowing came to, for the journal and the log. */
typedef struct {
	uint64_t migration, moved, kernel, residual;
	const char *agent_result; /* static: "ok", "partial", ..., or NULL */
	char error[256];
	bool moved_by_agent, narrowed;
} outcome;

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	return n > 0 && n < 200 &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_.-") == n &&
	       id[0] != '.';
}

static char *state_path(const nf_repins *rp, const char *id)
{
	char *p;
	return asprintf(&p, "%s/repin-%s.json", rp->dir, id) < 0 ? NULL : p;
}

static void fmt_set(const nf_nodeset *s, char buf[NF_NODESET_STRLEN])
{
	nf_nodeset_format(s, buf, NF_NODESET_STRLEN);
}

/* TEXT into PATH, all or nothing, durably: the answer that widens the
 * container goes out only once this returns. */
static int write_atomic(const char *dir, const char *path, const char *text)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		return errno ? -errno : -EIO;
	if (rename(tmp, path) < 0)
		return -errno;
	_cleanup_close_ int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0)
		fsync(d);
	return 0;
}

static int save(const nf_repins *rp, const repin *p)
{
	char o[NF_NODESET_STRLEN], n[NF_NODESET_STRLEN], u[NF_NODESET_STRLEN];
	_cleanup_free_ char *path = state_path(rp, p->id), *text = NULL;
	fmt_set(&p->old, o), fmt_set(&p->new, n), fmt_set(&p->uni, u);
	if (!path ||
	    asprintf(&text,
		     "{\"container\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"union\":\"%s\","
		     "\"started_at\":\"%s\"}\n",
		     p->id, o, n, u, p->started_at) < 0)
		return -ENOMEM;
	return write_atomic(rp->dir, path, text);
}

static void unsave(const nf_repins *rp, const char *id)
{
	_cleanup_free_ char *path = state_path(rp, id);
	if (path && unlink(path) < 0 && errno != ENOENT)
		nf_log(LOG_WARNING, "container %s: cannot remove '%s': %m", id, path);
}

static repin *find(nf_repins *rp, const char *id)
{
	for (repin *p = rp->list; p; p = p->next)
		if (!p->superseded && strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

static void unlink_entry(nf_repins *rp, repin *p)
{
	for (repin **q = &rp->list; *q; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			return;
		}
}

static void entry_free(repin *p)
{
	if (p)
		free(p->id);
	free(p);
}

static repin *entry_new(nf_repins *rp, const char *id)
{
	repin *p = calloc(1, sizeof(*p));
	if (!p || !(p->id = strdup(id)))
		return free(p), NULL;
	p->rp = rp;
	p->t0_ns = nf_now_ns();
	return p;
}

/* Ends P (lock held): with a thread, the thread will; else now. Its file
 * goes unless a newer re-pin of the container owns it. */
static void drop(nf_repins *rp, repin *p, bool remove_file)
{
	bool owner = !p->superseded;
	p->superseded = true;
	if (remove_file && owner)
		unsave(rp, p->id);
	if (p->running)
		return;
	unlink_entry(rp, p);
	entry_free(p);
}

/* ---- the journal ---- */

static void journal(nf_repins *rp, const repin *p, const outcome *o, const char *result,
		    uint64_t move_ms, uint64_t narrow_ms)
{
	char f[NF_NODESET_STRLEN], t[NF_NODESET_STRLEN], u[NF_NODESET_STRLEN];
	fmt_set(&p->old, f), fmt_set(&p->new, t), fmt_set(&p->uni, u);
	uint64_t widen_ms = p->applied_ns > p->t0_ns ? (p->applied_ns - p->t0_ns) / 1000000 : 0;
	_cleanup_json_ json_object *j = json_object_new_object();
	bool ok =
	    j && nf_json_add(j, "container", json_object_new_string(p->id)) &&
	    nf_json_add(j, "trigger", json_object_new_string("nri")) &&
	    nf_json_add(j, "from", json_object_new_string(f)) &&
	    nf_json_add(j, "to", json_object_new_string(t)) &&
	    nf_json_add(j, "union", json_object_new_string(u)) &&
	    nf_json_add(j, "started_at", json_object_new_string(p->started_at)) &&
	    nf_json_add(j, "result", json_object_new_string(result)) &&
	    nf_json_add(j, "widen_ms", json_object_new_int64(widen_ms)) &&
	    nf_json_add(j, "move_ms", json_object_new_int64(move_ms)) &&
	    nf_json_add(j, "narrow_ms", json_object_new_int64(narrow_ms)) &&
	    nf_json_add(j, "recovered", json_object_new_boolean(p->ph == PH_RECOVERED)) &&
	    (!o->migration ||
	     (nf_json_add(j, "migration", json_object_new_int64(o->migration)) &&
	      nf_json_add(j, "agent_result",
			  json_object_new_string(o->agent_result ? o->agent_result : "unknown")) &&
	      nf_json_add(j, "moved_bytes", json_object_new_int64(o->moved)) &&
	      nf_json_add(j, "kernel_moved_bytes", json_object_new_int64(o->kernel)) &&
	      nf_json_add(j, "residual_bytes", json_object_new_int64(o->residual)))) &&
	    (!*o->error || nf_json_add(j, "error", json_object_new_string(o->error)));
	_cleanup_free_ char *path = NULL;
	const char *text = ok ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) : NULL;
	if (!text || asprintf(&path, "%s/repins.journal", rp->dir) < 0)
		return;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	_cleanup_free_ char *line = NULL;
	if (fd < 0 || asprintf(&line, "%s\n", text) < 0 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		nf_log(LOG_WARNING, "cannot append to '%s': %m", path);
	nf_log(strcmp(result, "ok") == 0 ? LOG_INFO : LOG_WARNING,
	       "container %s: re-pin %s -> %s %s: widen %llu ms, move %llu ms (migration %llu, "
	       "%.1f MiB moved by the agent), narrow %llu ms%s%s",
	       p->id, f, t, result, (unsigned long long)widen_ms, (unsigned long long)move_ms,
	       (unsigned long long)o->migration, o->moved / 1048576.0,
	       (unsigned long long)narrow_ms, *o->error ? ": " : "", o->error);
}

/* ---- the agent's move ---- */

static bool halted(repin *p)
{
	pthread_mutex_lock(&p->rp->lock);
	bool s = p->rp->stopping || p->superseded;
	pthread_mutex_unlock(&p->rp->lock);
	return s;
}

static void sleep_ms(unsigned ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

static uint64_t member_u64(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

/* Asks the agent to move P's memory to its new nodes: the record's id, 0 when
 * the agent could not be asked (O->error says why). 409 (a migration of it
 * under way), 404 (not yet known: a registration on its way), no answer (the
 * agent restarting): tried again for AGENT_WAIT_S. */
static uint64_t post_move(repin *p, outcome *o)
{
	char to[NF_NODESET_STRLEN], body[NF_NODESET_STRLEN + 48];
	_cleanup_free_ char *id = nf_http_escape(p->id), *path = NULL;
	fmt_set(&p->new, to);
	snprintf(body, sizeof(body), "{\"to\":\"%s\",\"trigger\":\"nri\"}", to);
	if (!id || asprintf(&path, "/v1/containers/%s/migrate", id) < 0)
		return snprintf(o->error, sizeof(o->error), "out of memory"), 0;
	uint64_t until = nf_now_ns() + AGENT_WAIT_S * UINT64_C(1000000000);
	while (!halted(p)) {
		nf_http_reply rep;
		int r = nf_agent_request(p->rp->cfg.agent_socket, "POST", path, body, 5000, &rep);
		_cleanup_json_ json_object *b =
		    r == 0 && rep.body ? json_tokener_parse(rep.body) : NULL;
		if (r == 0 && rep.status == 202)
			return nf_http_reply_done(&rep), member_u64(b, "id");
		const char *e = r < 0 ? rep.error : nf_json_string(b, "error");
		snprintf(o->error, sizeof(o->error), "the agent: %s%.200s",
			 r == 0 ? "" : "unreachable: ", e ? e : "no message");
		bool again = r < 0 || rep.status == 409 || rep.status == 404 || rep.status >= 500;
		nf_http_reply_done(&rep);
		if (!again || nf_now_ns() > until)
			return 0;
		sleep_ms(1000);
	}
	return 0;
}

/* Polls record RID until it has a result: its JSON, or NULL (O->error). */
static json_object *await_record(repin *p, uint64_t rid, outcome *o)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/migrations/%llu", (unsigned long long)rid);
	uint64_t start = nf_now_ns(), away = 0;
	while (!halted(p)) {
		nf_http_reply rep;
		int r = nf_agent_request(p->rp->cfg.agent_socket, "GET", path, NULL, 5000, &rep);
		json_object *b =
		    r == 0 && rep.status == 200 && rep.body ? json_tokener_parse(rep.body) : NULL;
		long status = rep.status;
		snprintf(o->error, sizeof(o->error), "migration %llu: %.200s",
			 (unsigned long long)rid,
			 r < 0		 ? rep.error
			 : status == 404 ? "the agent lost it"
					 : "no record");
		nf_http_reply_done(&rep);
		const char *res = nf_json_string(b, "result");
		if (res && strcmp(res, "queued") != 0 && strcmp(res, "running") != 0)
			return *o->error = '\0', b;
		json_object_put(b);
		uint64_t now = nf_now_ns();
		away = r < 0 ? (away ? away : now) : 0;
		if ((r == 0 && status == 404) ||
		    (away && now - away > AGENT_WAIT_S * UINT64_C(1000000000)) ||
		    now - start > p->rp->cfg.move_timeout_s * UINT64_C(1000000000))
			return NULL;
		sleep_ms(250);
	}
	return NULL;
}

static const char *static_result(const char *r)
{
	static const char *const names[] = {"ok", "partial", "failed", "superseded"};
	for (size_t i = 0; r && i < NF_ARRAY_SIZE(names); i++)
		if (strcmp(r, names[i]) == 0)
			return names[i];
	return "unknown";
}

/* The move, tried again (MOVE_TRIES) when the agent restarted under it: a
 * record it lost, or one it concluded as failed at its start. */
static void move(repin *p, outcome *o)
{
	for (int t = 0; t < MOVE_TRIES && !halted(p); t++) {
		uint64_t rid = post_move(p, o);
		if (!rid)
			return;
		o->migration = rid;
		_cleanup_json_ json_object *rec = await_record(p, rid, o);
		if (!rec)
			continue;
		o->agent_result = static_result(nf_json_string(rec, "result"));
		o->moved = member_u64(rec, "moved_bytes");
		o->kernel = member_u64(rec, "kernel_moved_bytes");
		o->residual = member_u64(rec, "residual_bytes");
		o->moved_by_agent = true;
		if (strcmp(o->agent_result, "failed") != 0)
			return;
		snprintf(o->error, sizeof(o->error), "migration %llu failed",
			 (unsigned long long)rid);
	}
}

/* ---- the narrowing ---- */

static int narrow(repin *p, outcome *o)
{
	uint64_t until = nf_now_ns() + RUNTIME_WAIT_S * UINT64_C(1000000000);
	int refused = 0, r = -ECANCELED;
	while (!halted(p) && nf_now_ns() < until) {
		r = p->rp->cfg.narrow(p->rp->cfg.userdata, p->id, &p->new);
		if (r == 0)
			return o->narrowed = true, 0;
		bool away = r == -ENOTCONN || r == -ECONNRESET || r == -ETIMEDOUT;
		if (!away && ++refused >= 3)
			break;
		sleep_ms(1000);
	}
	char e[128];
	snprintf(e, sizeof(e), "; narrowing: %s", strerror(-r));
	strncat(o->error, e, sizeof(o->error) - strlen(o->error) - 1);
	return r;
}

static void *run(void *userdata)
{
	repin *p = userdata;
	nf_repins *rp = p->rp;
	outcome o = {0};
	uint64_t t1 = nf_now_ns();
	move(p, &o);
	uint64_t t2 = nf_now_ns();
	int r = narrow(p, &o);
	uint64_t t3 = nf_now_ns();
	pthread_mutex_lock(&rp->lock);
	bool superseded = p->superseded, stop = rp->stopping;
	pthread_mutex_unlock(&rp->lock);
	const char *result = r == 0	  ? (o.moved_by_agent ? "ok" : "narrowed-without-agent")
			     : superseded ? "superseded"
			     : stop	  ? "interrupted"
					  : "narrow-failed";
	if (!stop || r == 0)
		journal(rp, p, &o, result, (t2 - t1) / 1000000, (t3 - t2) / 1000000);
	pthread_mutex_lock(&rp->lock);
	/* the file stays for a restart to finish when the narrowing did not happen */
	if (!p->superseded && r == 0)
		unsave(rp, p->id);
	unlink_entry(rp, p);
	entry_free(p);
	if (--rp->threads == 0)
		pthread_cond_broadcast(&rp->idle);
	pthread_mutex_unlock(&rp->lock);
	return NULL;
}

/* Starts P's move and narrowing on a thread of its own (lock held). */
static void start(nf_repins *rp, repin *p)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	p->running = true;
	rp->threads++;
	int e = pthread_create(&t, &attr, run, p);
	pthread_attr_destroy(&attr);
	if (e) {
		p->running = false;
		rp->threads--;
		nf_log(LOG_ERR,
		       "container %s: cannot start its re-pin: %s; it stays widened until "
		       "the plugin starts again",
		       p->id, strerror(e));
	}
}

/* ---- the plugin's calls ---- */

int nf_repin_begin(nf_repins *rp, const char *id, const nf_nodeset *old, const nf_nodeset *new,
		   const nf_nodeset *uni)
{
	if (!id_ok(id))
		return -EINVAL;
	repin *p = entry_new(rp, id);
	if (!p)
		return -ENOMEM;
	p->old = *old, p->new = *new, p->uni = *uni;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	nf_rfc3339((uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, 3, p->started_at,
		   sizeof(p->started_at));
	pthread_mutex_lock(&rp->lock);
	repin *prev = find(rp, id);
	if (prev)
		drop(rp, prev, false);
	int r = save(rp, p);
	if (r == 0) {
		p->next = rp->list;
		rp->list = p;
	}
	pthread_mutex_unlock(&rp->lock);
	if (r < 0)
		entry_free(p);
	return r;
}

void nf_repin_applied(nf_repins *rp, const char *id, const char *spec_mems)
{
	nf_nodeset now;
	pthread_mutex_lock(&rp->lock);
	repin *p = find(rp, id);
	if (p && p->ph == PH_WIDENING && !p->running) {
		p->applied_ns = nf_now_ns();
		if (nf_nodeset_parse(spec_mems, &now) == 0 && nf_nodeset_equal(&now, &p->uni)) {
			p->ph = PH_MOVING;
			start(rp, p);
		} else {
			nf_log(LOG_NOTICE,
			       "container %s: the runtime applied mems '%s', not the re-pin's: it "
			       "ends",
			       id, spec_mems);
			drop(rp, p, true);
		}
	}
	pthread_mutex_unlock(&rp->lock);
}

void nf_repin_forget(nf_repins *rp, const char *id)
{
	pthread_mutex_lock(&rp->lock);
	repin *p = find(rp, id);
	if (p)
		drop(rp, p, true);
	pthread_mutex_unlock(&rp->lock);
}

void nf_repins_expire(nf_repins *rp, unsigned max_wait_s)
{
	uint64_t now = nf_now_ns();
	pthread_mutex_lock(&rp->lock);
	for (repin *p = rp->list, *next; p; p = next) {
		next = p->next;
		if (p->ph == PH_WIDENING && !p->running && !p->superseded &&
		    now - p->t0_ns > max_wait_s * UINT64_C(1000000000)) {
			nf_log(LOG_NOTICE,
			       "container %s: no post-update %u s after the re-pin's answer (the "
			       "CRI call failed?): the re-pin ends",
			       p->id, max_wait_s);
			drop(rp, p, true);
		}
	}
	pthread_mutex_unlock(&rp->lock);
}

void nf_repins_resume(nf_repins *rp, const nf_repin_seen *seen, size_t n)
{
	pthread_mutex_lock(&rp->lock);
	for (repin *p = rp->list, *next; p; p = next) {
		next = p->next;
		if (p->ph != PH_RECOVERED || p->running)
			continue;
		const char *mems = NULL;
		for (size_t i = 0; seen && i < n; i++)
			if (strcmp(seen[i].id, p->id) == 0)
				mems = seen[i].spec_mems;
		nf_nodeset now;
		bool parsed = mems && nf_nodeset_parse(mems, &now) == 0;
		if (!seen || (parsed && nf_nodeset_equal(&now, &p->uni))) {
			nf_log(LOG_NOTICE,
			       "container %s: a re-pin left unfinished by a previous run: moving "
			       "and narrowing it now",
			       p->id);
			start(rp, p);
		} else {
			nf_log(LOG_NOTICE, "container %s: a re-pin left by a previous run ends: %s",
			       p->id,
			       !mems ? "the runtime no longer has it"
			       : parsed && nf_nodeset_equal(&now, &p->new)
				   ? "it was narrowed already"
				   : "its mems changed since");
			drop(rp, p, true);
		}
	}
	pthread_mutex_unlock(&rp->lock);
}

/* ---- state ---- */

/* One state file left by a previous run, as a recovered re-pin. */
static void load_one(nf_repins *rp, const char *name)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/%s", rp->dir, name) < 0 || nf_read_file(path, &text, NULL) < 0)
		return;
	_cleanup_json_ json_object *o = json_tokener_parse(text);
	const char *id = nf_json_string(o, "container"), *f = nf_json_string(o, "from"),
		   *t = nf_json_string(o, "to"), *u = nf_json_string(o, "union"),
		   *at = nf_json_string(o, "started_at");
	repin *p = id && id_ok(id) ? entry_new(rp, id) : NULL;
	if (!p || !f || !t || !u || nf_nodeset_parse(f, &p->old) < 0 ||
	    nf_nodeset_parse(t, &p->new) < 0 || nf_nodeset_parse(u, &p->uni) < 0) {
		nf_log(LOG_WARNING, "'%s' is not a re-pin's state: removed", path);
		unlink(path);
		entry_free(p);
		return;
	}
	snprintf(p->started_at, sizeof(p->started_at), "%s", at ? at : "");
	p->ph = PH_RECOVERED;
	p->next = rp->list;
	rp->list = p;
}

static int load(nf_repins *rp)
{
	_cleanup_closedir_ DIR *d = opendir(rp->dir);
	if (!d)
		return -errno;
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "repin-", 6) == 0 && n > 11 &&
		    strcmp(e->d_name + n - 5, ".json") == 0)
			load_one(rp, e->d_name);
	}
	return 0;
}

/* DIR and its missing parents, 0700. */
static int mkdir_p(const char *dir)
{
	_cleanup_free_ char *p = strdup(dir);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		bool end = *s == '\0';
		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (end)
			return 0;
		*s = '/';
	}
}

int nf_repins_new(const nf_repin_config *cfg, nf_repins **ret)
{
	nf_repins *rp = calloc(1, sizeof(*rp));
	if (!rp || !(rp->dir = strdup(cfg->state_dir)))
		return free(rp), -ENOMEM;
	rp->cfg = *cfg;
	pthread_mutex_init(&rp->lock, NULL);
	pthread_cond_init(&rp->idle, NULL);
	int r = mkdir_p(rp->dir);
	r = r < 0 ? r : load(rp);
	if (r < 0) {
		free(rp->dir), free(rp);
		return r;
	}
	*ret = rp;
	return 0;
}

void nf_repins_free(nf_repins *rp)
{
	if (!rp)
		return;
	pthread_mutex_lock(&rp->lock);
	rp->stopping = true;
	while (rp->threads)
		pthread_cond_wait(&rp->idle, &rp->lock);
	pthread_mutex_unlock(&rp->lock);
	while (rp->list) {
		repin *p = rp->list;
		rp->list = p->next;
		entry_free(p);
	}
	free(rp->dir);
	free(rp);
}
