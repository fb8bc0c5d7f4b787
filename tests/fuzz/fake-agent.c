/* agent.h's functions that the API (route.c) and the metrics call, over state
 * held in memory: four cgroups, registrations, queued migrations and a
 * history. Not the real agent: the fuzzer tests how requests are parsed,
 * checked and rendered, not what the agent does with them. The real one
 * (agent.c) needs a cpuset hierarchy to scan (the CI machine has cgroup v2,
 * this build host only a v1 cpuset), starts workers and inotify, reads
 * /proc/PID/cgroup of the pids a body names and writes cpuset.mems: slow,
 * racy between runs, and not something to aim random requests at. What it
 * decides is reused from decide.c, its registrations are freed by the real
 * registration.c, and its contract (agent.h: the errors, the id lookups, the
 * records' shape) is followed; its cgroup walk is not. Nothing here touches a
 * process or a cgroup. */
#include "fake-agent.h"
#include "../../plugin/agent/history.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const double nf_duration_bounds[NF_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5,
							1,    2.5,  5,	 10,   30};

#define NODES 2
#define NCG   4

typedef struct {
	const char *ident_id, *rel, *runtime, *pod_uid;
	nf_nodeset mems, eff;
	size_t tasks;
	uint64_t anon[NODES], file[NODES];
	bool ro; /* its cpuset.mems is on a read-only mount */
	nf_registration *reg;
	nf_record *last, *running, *pending;
	bool pending_staged, running_staged; /* that job is a staged move */
} fake_cg;

struct nf_agent {
	fake_cg cg[NCG];
	nf_history hist;
	uint64_t next_id;
	unsigned long changes;
	nf_hierarchy h;
};

/* Records as a journal holds them, replayed at start: every shape of one. */
static const char *const journal[] = {
    ("{\"id\":1,\"container\":\"aaaa\",\"cgroup\":\"/kubepods/pod1/aaaa\",\"trigger\":\"inotify\","
     "\"from\":\"0\",\"to\":\"1\",\"result\":\"partial\",\"started_at\":"
     "\"2026-11-21T09:41:18.779Z\",\"duration_ms\":1817,\"tasks\":2,\"tasks_failed\":0,"
     "\"pages_not_moved\":3,\"kernel_moved_bytes\":0,\"moved_bytes\":268435456,"
     "\"residual_bytes\":68157440,\"residual\":{\"shared\":68157440},\"errors\":[\"pid 12: "
     "migrate_pages: Operation not permitted\"]}"),
    ("{\"id\":2,\"container\":\"ctr-1\",\"cgroup\":\"/docker/bbbb\",\"trigger\":\"move\","
     "\"from\":\"0\",\"to\":\"1\",\"result\":\"ok\",\"started_at\":\"2026-11-21T09:42:00.000Z\","
     "\"duration_ms\":900,\"tasks\":1,\"tasks_failed\":0,\"pages_not_moved\":0,"
     "\"kernel_moved_bytes\":4096,\"moved_bytes\":1048576,\"residual_bytes\":0,\"residual\":{},"
     "\"errors\":[],\"method\":\"move_pages\",\"threads\":2,\"gentle_bytes\":1048576,"
     "\"stayed\":{\"ebusy\":8192},\"reasons\":[{\"class\":\"pinned\",\"bytes\":8192,\"text\":"
     "\"pinned \\\"pages\\\"\"}],\"stages\":{\"widen_ms\":1,\"move_ms\":800,\"narrow_ms\":99}}"),
    ("{\"id\":3,\"container\":\"gone \\u00e9\",\"cgroup\":\"/gone\",\"trigger\":\"api\","
     "\"from\":\"\",\"to\":\"0\",\"result\":\"queued\"}"),
};

static void cgroups(nf_agent *a)
{
	static const uint64_t M = 1 << 20;
	fake_cg *c = a->cg;
	c[0] = (fake_cg){.ident_id = "aaaa",
			 .rel = "/kubepods/pod1/aaaa",
			 .runtime = "containerd",
			 .pod_uid = "0c8e7d43-1111-2222-3333-444455556666",
			 .tasks = 3,
			 .anon = {0, 8 * M},
			 .file = {M, 0}};
	c[1] = (fake_cg){.ident_id = "bbbb",
			 .rel = "/docker/bbbb",
			 .runtime = "docker",
			 .pod_uid = "",
			 .tasks = 1,
			 .anon = {2 * M, M}};
	/* a name no runtime gives, but anyone with a delegated subtree can */
	c[2] = (fake_cg){.ident_id = "odd\xff\xfe\"q\\\nname",
			 .rel = "/user.slice/odd\xff\xfe\"q\\\nname",
			 .runtime = "",
			 .pod_uid = "",
			 .tasks = 2};
	/* no tasks: not a container until registered */
	c[3] = (fake_cg){
	    .ident_id = "cccc", .rel = "/ro/cccc", .runtime = "", .pod_uid = "", .ro = true};
	nf_nodeset_parse("1", &c[0].mems), c[0].eff = c[0].mems;
	nf_nodeset_parse("1", &c[1].mems), c[1].eff = c[1].mems;
	nf_nodeset_parse("0", &c[2].mems); /* eff empty: no cpuset */
	nf_nodeset_parse("0-1", &c[3].mems), c[3].eff = c[3].mems;
}

static void replay(nf_agent *a)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(journal); i++) {
		json_object *o = json_tokener_parse(journal[i]);
		nf_record *r;
		if (!o || nf_record_parse(o, &r, NULL) < 0)
			abort(); /* the harness's own data */
		json_object_put(o);
		nf_history_push(&a->hist, r);
		if (i == 1)
			a->cg[1].last = nf_record_ref(r);
		nf_record_unref(r);
		a->next_id = r->id + 1;
	}
}

static nf_registration *registration(const char *id, pid_t pid)
{
	nf_registration *r = calloc(1, sizeof(*r));
	if (!r || !(r->id = strdup(id)) || !(r->name = strdup("web")) ||
	    !(r->pod_namespace = strdup("prod")) ||
	    !(r->annotations = json_tokener_parse("{\"numafollow.io/migrate\": \"true\"}")))
		abort();
	r->pid = pid;
	return r;
}

nf_agent *fake_agent_new(void)
{
	nf_agent *a = calloc(1, sizeof(*a));
	if (!a || nf_history_init(&a->hist, 16) < 0)
		abort();
	a->h = (nf_hierarchy){.version = NF_CG_V2, .mount = "/sys/fs/cgroup"};
	cgroups(a);
	replay(a);
	a->cg[1].reg = registration("ctr-1", FAKE_PID_FIRST + 1);
	return a;
}

void fake_agent_free(nf_agent *a)
{
	for (fake_cg *c = a->cg; c < a->cg + NCG; c++) {
		nf_registration_free(c->reg);
		nf_record_unref(c->last);
		nf_record_unref(c->running);
		nf_record_unref(c->pending);
	}
	nf_history_done(&a->hist);
	free(a);
}

unsigned long fake_agent_changes(const nf_agent *a)
{
	return a->changes;
}

void fake_agent_tick(nf_agent *a)
{
	for (fake_cg *c = a->cg; c < a->cg + NCG; c++) {
		if (c->running) {
			nf_record_abandon(c->running, "the fake agent runs nothing");
			nf_record_unref(c->last);
			c->last = c->running;
			c->running = NULL;
			c->running_staged = false;
		}
		if (c->pending) {
			nf_record_start(c->pending);
			c->running = c->pending;
			c->pending = NULL;
			c->running_staged = c->pending_staged;
			c->pending_staged = false;
		}
	}
}

/* ---- views ---- */

static bool staging(const fake_cg *c)
{
	return c->pending_staged || c->running_staged;
}

static bool is_container(const fake_cg *c)
{
	return c->tasks > 0 || c->reg;
}

static const char *cg_id(const fake_cg *c)
{
	return c->reg ? c->reg->id : c->ident_id;
}

static uint64_t outside(const fake_cg *c, bool anon_only)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < NODES; i++)
		if (!nf_nodeset_has(&c->eff, i))
			n += c->anon[i] + (anon_only ? 0 : c->file[i]);
	return n;
}

static nf_container view(const fake_cg *c)
{
	bool opted_out = c->reg && c->reg->opted_out;
	return (nf_container){
	    .id = cg_id(c),
	    .cgroup = c->rel,
	    .runtime = c->runtime,
	    .name = c->reg ? c->reg->name : NULL,
	    .pod_uid = c->reg && c->reg->pod_uid ? c->reg->pod_uid : c->pod_uid,
	    .reg = c->reg,
	    .mems = c->mems,
	    .eff = c->eff,
	    .tasks = c->tasks,
	    .nnodes = NODES,
	    .anon = c->anon,
	    .file = c->file,
	    .outside = outside(c, false),
	    .state = nf_decide_state(
		c->running || c->pending, opted_out,
		nf_decide_drift(outside(c, true), 0, nf_nodeset_empty(&c->eff)), c->last),
	    .last = c->last,
	};
}

/* Container ID: its id, or its cgroup path. */
static fake_cg *find(nf_agent *a, const char *id)
{
	for (fake_cg *c = a->cg; c < a->cg + NCG; c++)
		if (is_container(c) && strcmp(cg_id(c), id) == 0)
			return c;
	for (fake_cg *c = a->cg; id[0] == '/' && c < a->cg + NCG; c++)
		if (is_container(c) && strcmp(c->rel, id) == 0)
			return c;
	return NULL;
}

void nf_agent_stats_get(nf_agent *a, nf_agent_stats *ret)
{
	*ret = (nf_agent_stats){
	    .h = &a->h,
	    .cgroup_root = "/",
	    .uptime_ns = 42000000000,
	    .cgroups_watched = NCG + 1,
	    .workers = 2,
	    .history_persistent = true,
	    .results = {3, 1, 1, 0},
	    .moved_total = 1 << 20,
	    .duration_bucket = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},
	    .duration_sum = 31.5,
	    .residue_total = {[NF_WHY_SHARED] = 4096},
	};
	for (fake_cg *c = a->cg; c < a->cg + NCG; c++) {
		ret->containers += is_container(c);
		ret->queued += c->pending != NULL;
	}
}

void nf_agent_resample(nf_agent *a, uint64_t max_age_ms)
{
	(void)a, (void)max_age_ms; /* the fake's memory does not grow */
}

void nf_agent_each_container(nf_agent *a, nf_container_fn fn, void *userdata)
{
	for (fake_cg *c = a->cg; c < a->cg + NCG; c++)
		if (is_container(c)) {
			nf_container v = view(c);
			fn(&v, userdata);
		}
}

int nf_agent_container(nf_agent *a, const char *id, nf_container_fn fn, void *userdata)
{
	fake_cg *c = find(a, id);
	if (!c)
		return -ENOENT;
	nf_container v = view(c);
	fn(&v, userdata);
	return 0;
}

void nf_agent_each_record(nf_agent *a, const char *id, size_t limit, nf_record_fn fn,
			  void *userdata)
{
	const fake_cg *c = id ? find(a, id) : NULL;
	const char *cid = c ? cg_id(c) : id;
	nf_record *r;
	for (size_t i = 0, n = 0; n < limit && (r = nf_history_newest(&a->hist, i)); i++)
		if (!id || strcmp(r->container, cid) == 0 ||
		    (c && strcmp(r->cgroup, c->rel) == 0)) {
			fn(r, userdata);
			n++;
		}
}

int nf_agent_record(nf_agent *a, uint64_t id, nf_record_fn fn, void *userdata)
{
	const nf_record *r = nf_history_find(&a->hist, id);
	if (!r)
		return -ENOENT;
	fn(r, userdata);
	return 0;
}

/* ---- requests ---- */

static int refused(nf_registration *r, int err, char **ret_msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refused(nf_registration *r, int err, char **ret_msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(ret_msg, fmt, ap) < 0)
		*ret_msg = NULL;
	va_end(ap);
	nf_registration_free(r);
	return err;
}

/* A queued migration of C to TO. */
static nf_record *queue(nf_agent *a, fake_cg *c, nf_trigger t, const nf_nodeset *to)
{
	nf_record *r = nf_record_new(a->next_id++, cg_id(c), c->rel, t, &c->mems, to);
	if (!r)
		abort();
	nf_history_push(&a->hist, r);
	c->pending = r;
	a->changes++;
	return r;
}

/* A migration of C to its effective mems: queued, or the one already queued
 * (retargeted), or NULL (skipped). */
static nf_record *request(nf_agent *a, fake_cg *c, nf_trigger t)
{
	bool opted_out = c->reg && c->reg->opted_out;
	switch (nf_decide_request(t, opted_out, staging(c), c->pending, c->running)) {
	case NF_REQ_SKIP:
		return NULL;
	case NF_REQ_RETARGET:
		return c->pending;
	case NF_REQ_SUPERSEDE:
	case NF_REQ_QUEUE:
		break;
	}
	return queue(a, c, t, &c->eff);
}

int nf_agent_register(nf_agent *a, nf_registration *r, nf_container_fn fn, void *userdata,
		      char **ret_msg)
{
	*ret_msg = NULL;
	unsigned i = r->pid - FAKE_PID_FIRST;
	int e = r->pid == FAKE_PID_OUTSIDE					   ? -EXDEV
		: r->pid != FAKE_PID_ROOT && (r->pid < FAKE_PID_FIRST || i >= NCG) ? -ESRCH
										   : 0;
	if (e < 0) {
		e = nf_decide_refusal(e, NF_REG_NEW, r->pid, r->id, NULL, NULL, ret_msg);
		nf_registration_free(r);
		return e;
	}
	fake_cg *c = r->pid == FAKE_PID_ROOT ? NULL : &a->cg[i];
	fake_cg *other = find(a, r->id);
	bool taken =
	    c && other && other != c && !(other->reg && strcmp(other->reg->id, r->id) == 0);
	nf_reg_action act = nf_decide_registration(r->id, c && c->reg ? c->reg->id : NULL, !c,
						   taken, c && nf_nodeset_empty(&c->eff));
	if (act != NF_REG_NEW && act != NF_REG_UPDATE) {
		e = nf_decide_refusal(0, act, r->pid, r->id, c ? c->rel : "/",
				      other ? other->rel : NULL, ret_msg);
		nf_registration_free(r);
		return e;
	}
	bool update = c->reg && strcmp(c->reg->id, r->id) == 0;
	for (fake_cg *k = a->cg; k < a->cg + NCG; k++)
		if (k != c && k->reg && strcmp(k->reg->id, r->id) == 0)
			nf_registration_free(k->reg), k->reg = NULL;
	nf_registration_free(c->reg);
	c->reg = r;
	a->changes++;
	if (nf_decide_drift(outside(c, true), 0, false))
		request(a, c, NF_TRIG_HOOK);
	nf_container v = view(c);
	fn(&v, userdata);
	return update;
}

int nf_agent_unregister(nf_agent *a, const char *id)
{
	fake_cg *c = find(a, id);
	if (!c)
		return -ENOENT;
	if (!c->reg)
		return -ENODATA;
	nf_registration_free(c->reg);
	c->reg = NULL;
	a->changes++;
	return 0;
}

int nf_agent_migrate(nf_agent *a, const char *id, nf_record_fn fn, void *userdata)
{
	fake_cg *c = find(a, id);
	int r = !c ? -ENOENT : nf_nodeset_empty(&c->eff) ? -ENXIO : staging(c) ? -EBUSY : 0;
	if (r < 0)
		return r;
	const nf_record *rec = request(a, c, NF_TRIG_API);
	if (!rec)
		return -ENOMEM;
	fn(rec, userdata);
	return 0;
}

int nf_agent_migrate_to(nf_agent *a, const char *id, const nf_nodeset *to, nf_trigger t,
			nf_record_fn fn, void *userdata)
{
	fake_cg *c = find(a, id);
	nf_nodeset outside;
	if (!c)
		return -ENOENT;
	if (c->running || c->pending)
		return -EBUSY;
	nf_nodeset_minus(to, &c->eff, &outside);
	if (!nf_nodeset_empty(&outside))
		return -ERANGE;
	fn(queue(a, c, t, to), userdata);
	return 0;
}

int nf_agent_move(nf_agent *a, const char *id, const nf_nodeset *to, nf_record_fn fn,
		  void *userdata, char **ret_msg)
{
	*ret_msg = NULL;
	fake_cg *c = find(a, id);
	if (!c)
		return -ENOENT;
	if (c->running || c->pending)
		return refused(NULL, -EBUSY, ret_msg, "a migration of it is under way; try again");
	if (c->ro)
		return refused(NULL, -EROFS, ret_msg,
			       "its cpuset.mems is on a read-only mount, and the staged move "
			       "writes it");
	fn(queue(a, c, NF_TRIG_MOVE, to), userdata);
	c->pending_staged = true;
	return 0;
}
