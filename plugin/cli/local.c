/* The commands that work on the cgroup file system directly: show and migrate. */
#include "cli.h"
#include "../lib/explain.h"
#include "../lib/record.h"
#include "../lib/staged.h"
#include "../lib/engine.h"
#include "../lib/json.h"
#include "../lib/nf.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <string.h>

/* ---- input ---- */

/* What both commands start with: NUMA, the cpuset hierarchy, the user's cgroup. */
static int open_cgroup(const char *arg, nf_hierarchy *h, nf_cgroup *cg, nf_cli_error *e)
{
	int r;
	if (numa_available() < 0)
		return nf_cli_system(e, -ENOSYS,
				     "this kernel has no NUMA support (numa_available)");
	r = nf_hierarchy_detect(h);
	if (r < 0)
		return nf_cli_system(e, r, "no cpuset controller mounted (/proc/mounts): %s",
				     strerror(-r));
	r = nf_cgroup_open(h, arg, cg);
	if (r == -EXDEV)
		return nf_cli_usage(e, r, "cgroup '%s' is outside the cpuset hierarchy at '%s'",
				    arg, h->mount);
	if (r == -ENOENT || r == -ENOTDIR)
		return nf_cli_usage(e, r, "cgroup '%s': no such cgroup under '%s'", arg, h->mount);
	if (r < 0)
		return nf_cli_system(e, r, "cgroup '%s': %s", arg, strerror(-r));
	return 0;
}

/* Parses a user's node list: well formed, online, with memory. */
static int parse_nodes(const char *opt, const char *s, nf_nodeset *ret, nf_cli_error *e)
{
	nf_nodeset set, mem, bad;
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	int r = nf_nodeset_parse(s, &set);
	if (r < 0 || nf_nodeset_empty(&set))
		return nf_cli_usage(e, -EINVAL, "%s: '%s' is not a node list (like 1, 0-1 or 2,3)",
				    opt, s);
	r = nf_memory_nodes(&mem);
	if (r < 0)
		return nf_cli_system(e, r, "reading /sys/devices/system/node/has_memory: %s",
				     strerror(-r));
	nf_nodeset_minus(&set, &mem, &bad);
	if (!nf_nodeset_empty(&bad))
		return nf_cli_usage(
		    e, -ENODEV, "%s: node %s is offline or has no memory (nodes with memory: %s)",
		    opt, nf_nodeset_format(&bad, b1, sizeof(b1)),
		    nf_nodeset_format(&mem, b2, sizeof(b2)));
	*ret = set;
	return 0;
}

/* ---- tables ---- */

/* One column per node that has memory or any bytes in ROWS. */
static void table_columns(const nf_residency *const *rows, size_t n, nf_nodeset *ret)
{
	nf_nodeset cols = {0};
	nf_memory_nodes(&cols);
	for (size_t i = 0; i < n; i++) {
		nf_nodeset s;
		nf_residency_nodes(rows[i], &s);
		for (size_t w = 0; w < NF_ARRAY_SIZE(s.w); w++)
			cols.w[w] |= s.w[w];
	}
	*ret = cols;
}

/* PART 0 is anon, 1 file, 2 both. */
static void print_row(const char *label, const nf_residency *row, int part, const nf_nodeset *cols)
{
	static const char *const suffix[] = {" anon", " file", ""};
	uint64_t total = 0;
	int w = printf("%s%s", label, suffix[part]);
	printf("%*s", w < 14 ? 14 - w : 0, "");
	for (unsigned c = 0; c < NF_MAX_NODES; c++) {
		uint64_t b = part == 0	 ? row->anon[c]
			     : part == 1 ? row->file[c]
					 : nf_residency_node(row, c);
		total += b;
		if (nf_nodeset_has(cols, c))
			printf(" %12.2f", nf_mib(b));
	}
	printf(" %12.2f\n", nf_mib(total));
}

/* A numastat-like table, with anon and file apart when SPLIT. */
static void print_table(const char *const *labels, const nf_residency *const *rows, size_t n,
			bool split)
{
	nf_nodeset cols;
	table_columns(rows, n, &cols);
	printf("%-14s", "(MiB)");
	for (unsigned c = 0; c < NF_MAX_NODES; c++)
		if (nf_nodeset_has(&cols, c))
			printf(" %11s%-u", "Node ", c);
	printf(" %12s\n", "Total");
	for (size_t i = 0; i < n; i++)
		for (int part = split ? 0 : 2; part < 3; part++)
			print_row(labels[i], rows[i], part, &cols);
}

/* ---- show ---- */

typedef struct {
	nf_nodeset mems, eff;
	size_t tasks;
	nf_residency res;
	nf_residency_source src;
	nf_identity id;
} cgroup_state;

static int read_state(const nf_cgroup *cg, cgroup_state *ret, nf_cli_error *e)
{
	_cleanup_free_ pid_t *tasks = NULL;
	cgroup_state s;
	int r;
	if ((r = nf_cgroup_read_mems(cg, &s.mems, &s.eff)) < 0 ||
	    (r = nf_cgroup_tasks(cg, true, &tasks, &s.tasks)) < 0 ||
	    (r = nf_cgroup_residency(cg, tasks, s.tasks, &s.res, &s.src)) < 0 ||
	    (r = nf_identify(cg->rel, &s.id)) < 0)
		return nf_cli_system(e, r, "cgroup '%s': %s", cg->path, strerror(-r));
	*ret = s;
	return 0;
}

static const char *source_name(nf_residency_source s)
{
	return s == NF_SRC_NUMA_STAT ? "memory.numa_stat" : "numa_maps";
}

/* NULL when out of memory. */
static json_object *identity_json(const nf_identity *id)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	if (!o || nf_cli_add(o, "id", json_object_new_string(id->id)) < 0 ||
	    nf_cli_add(o, "runtime", json_object_new_string(id->runtime)) < 0 ||
	    (id->pod_uid[0] && nf_cli_add(o, "pod_uid", json_object_new_string(id->pod_uid)) < 0))
		return NULL;
	return TAKE_PTR(o);
}

static int print_state_json(const nf_cgroup *cg, const cgroup_state *s)
{
	const nf_residency *m = &s->res;
	_cleanup_json_ json_object *o = json_object_new_object();
	if (!o || nf_cli_add(o, "cgroup", json_object_new_string(cg->path)) < 0 ||
	    nf_cli_add(o, "hierarchy", json_object_new_string(nf_hierarchy_name(cg->h))) < 0 ||
	    nf_cli_add(o, "mems", nf_json_nodeset(&s->mems)) < 0 ||
	    nf_cli_add(o, "mems_effective", nf_json_nodeset(&s->eff)) < 0 ||
	    nf_cli_add(o, "tasks", json_object_new_int64(s->tasks)) < 0 ||
	    nf_cli_add(o, "memory", nf_json_per_node(m->anon, m->file, NF_MAX_NODES)) < 0 ||
	    nf_cli_add(o, "memory_anon", nf_json_per_node(m->anon, NULL, NF_MAX_NODES)) < 0 ||
	    nf_cli_add(o, "memory_file", nf_json_per_node(NULL, m->file, NF_MAX_NODES)) < 0 ||
	    nf_cli_add(o, "source", json_object_new_string(source_name(s->src))) < 0 ||
	    nf_cli_add(o, "container", identity_json(&s->id)) < 0)
		return -ENOMEM;
	return nf_cli_print_json(o);
}

static void print_state(const nf_cgroup *cg, const cgroup_state *s)
{
	const nf_identity *id = &s->id;
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	printf("cgroup     %s (%s)\n", cg->path, nf_hierarchy_name(cg->h));
	if (id->runtime[0] || id->pod_uid[0])
		printf("container  %s%s%s%s\n", id->id, id->runtime[0] ? " (" : "", id->runtime,
		       id->runtime[0] ? ")" : "");
	if (id->pod_uid[0])
		printf("pod        %s\n", id->pod_uid);
	printf("mems       %s (effective %s)\ntasks      %zu\nsource     %s\n\n",
	       nf_nodeset_format(&s->mems, b1, sizeof(b1)),
	       nf_nodeset_format(&s->eff, b2, sizeof(b2)), s->tasks, source_name(s->src));
	print_table((const char *const[]){"memory"}, (const nf_residency *const[]){&s->res}, 1,
		    true);
}

static int show(const nf_cli_args *a, nf_cli_error *e)
{
	_cleanup_(nf_hierarchy_done) nf_hierarchy h = {0};
	_cleanup_(nf_cgroup_done) nf_cgroup cg = {0};
	cgroup_state s;
	int r = open_cgroup(a->arg, &h, &cg, e);
	if (r < 0 || (r = read_state(&cg, &s, e)) < 0)
		return r;
	if (a->json)
		return print_state_json(&cg, &s);
	print_state(&cg, &s);
	return 0;
}

int nf_cli_show(const nf_cli_args *a)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	int r = show(a, &e);
	return r < 0 ? nf_cli_fail(&e, r) : 0;
}

/* ---- migrate ---- */

static const char *errno_name(int err)
{
	const char *s = strerrorname_np(err);
	return s ? s : "EUNKNOWN";
}

static json_object *residual_json(const nf_migration *m)
{
	_cleanup_json_ json_object *a = json_object_new_object();
	if (!a)
		return NULL;
	for (int c = 0; c < NF_STAY_COUNT; c++)
		if (m->residual[c] &&
		    nf_cli_add(a, nf_stay_class_name(c), json_object_new_int64(m->residual[c])) < 0)
			return NULL;
	return TAKE_PTR(a);
}

/* [{class, bytes, text}]: why the residue stayed, what would move it. */
static json_object *reasons_json(const nf_migration *m, const nf_nodeset *to)
{
	nf_reason why[NF_REASONS_MAX];
	return nf_reasons_json(why, nf_explain(m, to, why));
}

static json_object *plan_json(const nf_migration *m)
{
	_cleanup_json_ json_object *a = json_object_new_array();
	if (!a)
		return NULL;
	for (size_t i = 0; i < m->n_plan; i++) {
		_cleanup_json_ json_object *s = json_object_new_object();
		if (!s || nf_cli_add(s, "from", json_object_new_int(m->plan[i].from)) < 0 ||
		    nf_cli_add(s, "to", json_object_new_int(m->plan[i].to)) < 0 ||
		    nf_cli_add(s, "bytes", json_object_new_int64(m->plan[i].bytes)) < 0 ||
		    nf_cli_append(a, TAKE_PTR(s)) < 0)
			return NULL;
	}
	return TAKE_PTR(a);
}

static json_object *errors_json(const nf_migration *m)
{
	_cleanup_json_ json_object *a = json_object_new_array();
	if (!a)
		return NULL;
	for (size_t i = 0; i < m->n_errors; i++) {
		const nf_task_error *t = &m->errors[i];
		_cleanup_free_ char *msg = nf_cli_format("%s: %s", t->what, strerror(t->err));
		_cleanup_json_ json_object *x = json_object_new_object();
		if (!x || !msg || nf_cli_add(x, "pid", json_object_new_int(t->pid)) < 0 ||
		    nf_cli_add(x, "errno", json_object_new_string(errno_name(t->err))) < 0 ||
		    nf_cli_add(x, "message", json_object_new_string(msg)) < 0 ||
		    nf_cli_append(a, TAKE_PTR(x)) < 0)
			return NULL;
	}
	return TAKE_PTR(a);
}

/* The engine's report as JSON (docs/cli.md); NULL when out of memory. */
static json_object *migration_json(const nf_cgroup *cg, const nf_migrate_opts *o,
				   const nf_migration *m)
{
	_cleanup_json_ json_object *j = json_object_new_object();
	if (!j || nf_cli_add(j, "cgroup", json_object_new_string(cg->path)) < 0 ||
	    nf_cli_add(j, "hierarchy", json_object_new_string(nf_hierarchy_name(cg->h))) < 0 ||
	    nf_cli_add(j, "to", nf_json_nodeset(&o->to)) < 0 ||
	    (o->has_from && nf_cli_add(j, "from", nf_json_nodeset(&o->from)) < 0) ||
	    nf_cli_add(j, "dry_run", json_object_new_boolean(o->dry_run)) < 0 ||
	    nf_cli_add(j, "tasks", json_object_new_int64(m->tasks)) < 0 ||
	    nf_cli_add(j, "tasks_migrated", json_object_new_int64(m->tasks_migrated)) < 0 ||
	    nf_cli_add(j, "tasks_exited", json_object_new_int64(m->tasks_exited)) < 0 ||
	    nf_cli_add(j, "tasks_failed", json_object_new_int64(m->tasks_failed)) < 0 ||
	    nf_cli_add(j, "pages_not_moved", json_object_new_int64(m->pages_not_moved)) < 0 ||
	    nf_cli_add(j, "sweeps", json_object_new_int64(m->sweeps)) < 0 ||
	    nf_cli_add(j, "before",
		       nf_json_per_node(m->before.anon, m->before.file, NF_MAX_NODES)) < 0 ||
	    nf_cli_add(j, "after", nf_json_per_node(m->after.anon, m->after.file, NF_MAX_NODES)) <
		0 ||
	    nf_cli_add(j, "moved_bytes", json_object_new_int64(m->moved_bytes)) < 0 ||
	    nf_cli_add(j, "residual_bytes", json_object_new_int64(m->residual_bytes)) < 0 ||
	    nf_cli_add(j, "residual", residual_json(m)) < 0 ||
	    nf_cli_add(j, "reasons", reasons_json(m, &o->to)) < 0 ||
	    nf_cli_add(j, "method", json_object_new_string(nf_method_name(m->method))) < 0 ||
	    nf_cli_add(j, "threads", json_object_new_int(m->threads)) < 0 ||
	    nf_cli_add(j, "gentle_bytes", json_object_new_int64(m->gentle_bytes)) < 0 ||
	    nf_cli_add(j, "gentle_ms", json_object_new_int64(m->gentle_ns / 1000000)) < 0 ||
	    nf_cli_add(j, "stayed", nf_stayed_json(m->stayed)) < 0 ||
	    nf_cli_add(j, "deadline_hit", json_object_new_boolean(m->deadline_hit)) < 0 ||
	    nf_cli_add(j, "plan", plan_json(m)) < 0 ||
	    nf_cli_add(j, "duration_ms", json_object_new_int64(m->duration_ns / 1000000)) < 0 ||
	    nf_cli_add(j, "errors", errors_json(m)) < 0)
		return NULL;
	return TAKE_PTR(j);
}

static int print_migration_json(const nf_cgroup *cg, const nf_migrate_opts *o,
				const nf_migration *m)
{
	_cleanup_json_ json_object *j = migration_json(cg, o, m);
	return j ? nf_cli_print_json(j) : -ENOMEM;
}

static void print_plan(const nf_migration *m, const char *to)
{
	print_table((const char *const[]){"now"}, (const nf_residency *const[]){&m->before}, 1,
		    false);
	printf("\n");
	for (size_t i = 0; i < m->n_plan; i++)
		printf("would move  node %u -> node %u  %10.2f MiB\n", m->plan[i].from,
		       m->plan[i].to, nf_mib(m->plan[i].bytes));
	if (m->n_plan == 0)
		printf("nothing to move: all memory is on node %s\n", to);
	printf("(dry run: nothing moved)\n");
}

static void print_outcome(const nf_migration *m, const nf_nodeset *nodes, const char *to)
{
	print_table((const char *const[]){"before", "after"},
		    (const nf_residency *const[]){&m->before, &m->after}, 2, false);
	printf("\nmoved %.2f MiB in %llu ms (%.0f MiB/s, %u sweep%s); tasks: %zu migrated, %zu "
	       "exited, %zu failed\n",
	       nf_mib(m->moved_bytes), (unsigned long long)(m->duration_ns / 1000000),
	       nf_mib(m->moved_bytes) / (m->duration_ns ? m->duration_ns / 1e9 : 1), m->sweeps,
	       m->sweeps == 1 ? "" : "s", m->tasks_migrated, m->tasks_exited, m->tasks_failed);
	if (m->method == NF_METHOD_MOVE_PAGES)
		printf("move_pages on %u thread%s moved %.2f MiB in %llu ms (%.0f MiB/s); "
		       "migrate_pages the rest\n",
		       m->threads, m->threads == 1 ? "" : "s", nf_mib(m->gentle_bytes),
		       (unsigned long long)(m->gentle_ns / 1000000),
		       nf_mib(m->gentle_bytes) / (m->gentle_ns ? m->gentle_ns / 1e9 : 1));
	if (m->residual_bytes)
		printf("left outside node %s: %.2f MiB\n", to, nf_mib(m->residual_bytes));
	nf_reason why[NF_REASONS_MAX];
	size_t n = nf_explain(m, nodes, why);
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", why[i].text);
	for (size_t i = 0; i < m->n_errors; i++)
		printf("pid %d: %s: %s\n", m->errors[i].pid, m->errors[i].what,
		       strerror(m->errors[i].err));
}

static void print_migration(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_migration *m)
{
	char to[NF_NODESET_STRLEN];
	nf_nodeset_format(&o->to, to, sizeof(to));
	printf("%s %s (%s) to node %s: %zu task%s\n\n", o->dry_run ? "plan for" : "migrated",
	       cg->path, nf_hierarchy_name(cg->h), to, m->tasks, m->tasks == 1 ? "" : "s");
	if (o->dry_run)
		print_plan(m, to);
	else
		print_outcome(m, &o->to, to);
}

/* The kernel ANDs targets with the caller's own cpuset: refuse rather than
 * migrate nowhere. */
static int check_self(const nf_nodeset *to, nf_cli_error *e)
{
	nf_nodeset self, bad;
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	int r = nf_self_mems(&self);
	if (r < 0)
		return nf_cli_system(e, r, "reading /proc/self/status: %s", strerror(-r));
	nf_nodeset_minus(to, &self, &bad);
	if (!nf_nodeset_empty(&bad))
		return nf_cli_system(
		    e, -EPERM,
		    "numafollow itself may only use nodes %s (its cpuset): the kernel "
		    "would silently drop target node %s; run it outside that cpuset",
		    nf_nodeset_format(&self, b1, sizeof(b1)),
		    nf_nodeset_format(&bad, b2, sizeof(b2)));
	return 0;
}

static int prepare_opts(const nf_cli_args *a, const nf_cgroup *cg, nf_migrate_opts *ret,
			nf_cli_error *e)
{
	nf_migrate_opts o = {.dry_run = a->dry_run,
			     .retries = a->retries,
			     .backoff_ms = 20,
			     .threads = a->threads,
			     .max_rate = a->max_rate,
			     .deadline_ns =
				 a->budget_ms ? nf_now_ns() + a->budget_ms * 1000000 : 0};
	if (a->method && nf_method_parse(a->method, &o.method) < 0)
		return nf_cli_usage(e, -EINVAL,
				    "--method: '%s' is not auto, migrate_pages or move_pages",
				    a->method);
	int r = nf_cgroup_read_mems(cg, NULL, &o.to);
	if (r < 0)
		return nf_cli_system(e, r, "cgroup '%s': reading its mems: %s", cg->path,
				     strerror(-r));
	if (a->to && (r = parse_nodes("--to", a->to, &o.to, e)) < 0)
		return r;
	if (a->from && (r = parse_nodes("--from", a->from, &o.from, e)) < 0)
		return r;
	o.has_from = a->from != NULL;
	if (nf_nodeset_empty(&o.to))
		return nf_cli_usage(e, -EINVAL, "cgroup '%s' has no effective mems; give --to",
				    cg->path);
	if ((r = check_self(&o.to, e)) < 0)
		return r;
	*ret = o;
	return 0;
}

/* The verdict on a migration that ran: exit 3 when privilege alone stopped
 * it, 1 when anything stayed or failed. */
static int migration_status(const nf_migration *m)
{
	size_t denied = 0;
	for (size_t i = 0; i < m->n_errors; i++)
		denied += m->errors[i].err == EPERM || m->errors[i].err == EACCES;
	if (denied && denied == m->tasks_failed && m->tasks_migrated == 0)
		return NF_EXIT_SYSTEM;
	return m->residual_bytes || m->tasks_failed ? NF_EXIT_PARTIAL : 0;
}

/* 0 or -errno, with the migration's verdict in *RET_STATUS. */
static int migrate(const nf_cli_args *a, nf_cli_error *e, int *ret_status)
{
	_cleanup_(nf_hierarchy_done) nf_hierarchy h = {0};
	_cleanup_(nf_cgroup_done) nf_cgroup cg = {0};
	_cleanup_(nf_migration_done) nf_migration m = {0};
	nf_migrate_opts o;
	int r = open_cgroup(a->arg, &h, &cg, e);
	nf_cli_progress_line line = {0};
	if (r < 0 || (r = prepare_opts(a, &cg, &o, e)) < 0)
		return r;
	if (nf_cli_progress_wanted(a) && !o.dry_run) {
		o.progress = nf_cli_progress;
		o.progress_data = &line;
	}
	r = nf_migrate(&cg, &o, &m);
	nf_cli_progress_end(&line, r == 0);
	if (r < 0)
		return nf_cli_system(e, r, "migrating cgroup '%s': %s", cg.path, strerror(-r));
	if (a->json)
		r = print_migration_json(&cg, &o, &m);
	else
		print_migration(&cg, &o, &m);
	if (r < 0)
		return r;
	*ret_status = o.dry_run ? 0 : migration_status(&m);
	return 0;
}

int nf_cli_migrate(const nf_cli_args *a)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	int status, r = migrate(a, &e, &status);
	return r < 0 ? nf_cli_fail(&e, r) : status;
}

/* ---- move (staged) ---- */

static int staged_error(const nf_cgroup *cg, int r, const nf_staged *s, nf_cli_error *e)
{
	char b[NF_NODESET_STRLEN];
	if (s->written && s->raced)
		return nf_cli_system(
		    e, r,
		    "moving cgroup '%s' in stages: %s; its cpuset.mems were written "
		    "to %s by someone else meanwhile, and are left so",
		    cg->path, strerror(-r), nf_nodeset_format(&s->raced_mems, b, sizeof(b)));
	if (s->written && !s->restored)
		return nf_cli_system(
		    e, r,
		    "moving cgroup '%s' in stages: %s; putting its cpuset.mems back "
		    "to %s failed too (%s): they are as the move left them",
		    cg->path, strerror(-r), nf_nodeset_format(&s->old, b, sizeof(b)),
		    strerror(-s->restore_r));
	if (r == -EROFS)
		return nf_cli_system(e, r,
				     "cgroup '%s': cpuset.mems is on a read-only mount, and the "
				     "staged move writes it: give numafollow a read-write cgroup "
				     "mount (the DaemonSet mounts /sys/fs/cgroup read-only), or "
				     "write the mems yourself and run 'numafollow migrate'",
				     cg->path);
	if (r == -EACCES || r == -EPERM)
		return nf_cli_system(e, r,
				     "cgroup '%s': cannot write cpuset.mems (%s): the staged move "
				     "needs root or the cgroup's delegation",
				     cg->path, strerror(-r));
	return nf_cli_system(e, r, "moving cgroup '%s' in stages: %s (its mems are as they were)",
			     cg->path, strerror(-r));
}

static json_object *stages_json(const nf_staged *s)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	if (!o || nf_cli_add(o, "old", nf_json_nodeset(&s->old)) < 0 ||
	    (s->widen && nf_cli_add(o, "widened", nf_json_nodeset(&s->widened)) < 0) ||
	    nf_cli_add(o, "widen_ms", json_object_new_int64(s->widen_ns / 1000000)) < 0 ||
	    nf_cli_add(o, "move_ms", json_object_new_int64(s->move_ns / 1000000)) < 0 ||
	    nf_cli_add(o, "narrow_ms", json_object_new_int64(s->narrow_ns / 1000000)) < 0 ||
	    nf_cli_add(o, "kernel_bytes", json_object_new_int64(s->kernel_bytes)) < 0 ||
	    nf_cli_add(o, "residual_bytes", json_object_new_int64(s->residual_bytes)) < 0)
		return NULL;
	return TAKE_PTR(o);
}

static int print_staged_json(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_staged *s)
{
	_cleanup_json_ json_object *j = migration_json(cg, o, &s->m);
	if (!j || nf_cli_add(j, "stages", stages_json(s)) < 0)
		return -ENOMEM;
	return nf_cli_print_json(j);
}

static void print_staged(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_staged *s)
{
	char old[NF_NODESET_STRLEN], mid[NF_NODESET_STRLEN], to[NF_NODESET_STRLEN];
	nf_nodeset_format(&s->old, old, sizeof(old));
	nf_nodeset_format(&s->widened, mid, sizeof(mid));
	nf_nodeset_format(&o->to, to, sizeof(to));
	printf("moved %s (%s) from node %s to node %s in stages: %zu task%s\n\n", cg->path,
	       nf_hierarchy_name(cg->h), old, to, s->m.tasks, s->m.tasks == 1 ? "" : "s");
	if (s->widen)
		printf(
		    "  1. cpuset.mems = %-8s %8llu ms  (old and new: the kernel moves nothing)\n",
		    mid, (unsigned long long)(s->widen_ns / 1000000));
	else if (!s->kernel_migrates)
		printf("  1. cpuset.mems = %-8s %8llu ms  (the kernel does not migrate here)\n", to,
		       (unsigned long long)(s->narrow_ns / 1000000));
	printf("  2. moved %.2f MiB %14llu ms  (%s", nf_mib(s->m.moved_bytes),
	       (unsigned long long)(s->move_ns / 1000000), nf_method_name(s->m.method));
	if (s->m.method == NF_METHOD_MOVE_PAGES)
		printf(" on %u thread%s, %.2f MiB", s->m.threads, s->m.threads == 1 ? "" : "s",
		       nf_mib(s->m.gentle_bytes));
	printf(")\n");
	if (s->kernel_migrates && !s->raced)
		printf("  3. cpuset.mems = %-8s %8llu ms  (the kernel swept %.2f MiB)\n", to,
		       (unsigned long long)(s->narrow_ns / 1000000), nf_mib(s->kernel_bytes));
	if (s->raced)
		printf("  3. not narrowed: cpuset.mems = %s, written by someone else meanwhile\n",
		       nf_nodeset_format(&s->raced_mems, mid, sizeof(mid)));
	printf("\nleft outside node %s: %.2f MiB\n", to, nf_mib(s->residual_bytes));
	nf_reason why[NF_REASONS_MAX];
	size_t n = s->residual_bytes ? nf_explain(&s->m, &o->to, why) : 0;
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", why[i].text);
}

static int move(const nf_cli_args *a, nf_cli_error *e, int *ret_status)
{
	_cleanup_(nf_hierarchy_done) nf_hierarchy h = {0};
	_cleanup_(nf_cgroup_done) nf_cgroup cg = {0};
	_cleanup_(nf_staged_done) nf_staged s = {0};
	nf_migrate_opts o;
	int r = open_cgroup(a->arg, &h, &cg, e);
	nf_cli_progress_line line = {0};
	if (r < 0 || (r = prepare_opts(a, &cg, &o, e)) < 0)
		return r;
	if (nf_cli_progress_wanted(a)) {
		o.progress = nf_cli_progress;
		o.progress_data = &line;
	}
	r = nf_staged_move(&cg, &o, &s);
	nf_cli_progress_end(&line, r == 0);
	if (r < 0)
		return staged_error(&cg, r, &s, e);
	if (a->json && (r = print_staged_json(&cg, &o, &s)) < 0)
		return r;
	if (!a->json)
		print_staged(&cg, &o, &s);
	*ret_status = s.residual_bytes || s.m.tasks_failed ? NF_EXIT_PARTIAL : 0;
	return 0;
}

int nf_cli_move(const nf_cli_args *a)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	int status, r = move(a, &e, &status);
	return r < 0 ? nf_cli_fail(&e, r) : status;
}
