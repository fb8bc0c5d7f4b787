/* numafollow: move a cgroup's memory to its NUMA nodes, verified, and report. */
#include "client.h"
#include "../lib/nf.h"
#include "../lib/engine.h"
#include "../lib/json.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/util.h"

#include <getopt.h>
#include <json.h>
#include <numa.h>
#include <string.h>


static const char usage_text[] =
    "Usage: numafollow COMMAND [OPTIONS] [ARG]\n"
    "\n"
    "Makes a cgroup's memory follow its NUMA placement.\n"
    "\n"
    "Commands that work on the cgroup file system directly:\n"
    "  migrate [--to NODES] [--from NODES] [--dry-run] [--retries N] [--json] CGROUP\n"
    "        Move the memory of every task of CGROUP (and its descendants) to NODES\n"
    "        (default: the cgroup's effective mems), verify where it is afterwards and\n"
    "        retry what stayed. --dry-run shows the plan and moves nothing.\n"
    "        --from NODES gives the previous mems: pages keep the kernel's relative\n"
    "        old->new node mapping.\n"
    "  show [--json] CGROUP\n"
    "        mems, effective mems, tasks and per-node memory of CGROUP.\n"
    "\n"
    "Commands that ask the agent (numafollowd):\n"
    "  status [--json]          the agent's state and self-check\n"
    "  ps [--json]              containers: mems, memory per node, state\n"
    "  history [--json] [ID]    migrations, newest first (of container ID)\n"
    "  migrate --via-agent [--json] ID\n"
    "        ask the agent to migrate container ID now, and wait for the result\n"
    "Agent options: --socket PATH (default " NF_DEFAULT_SOCKET "),\n"
    "  --url http://HOST:PORT (TCP instead), --token-file PATH (bearer token for TCP)\n"
    "\n"
    "CGROUP is a path inside the cpuset hierarchy (\"/kubepods/pod1\", \"system.slice\")\n"
    "or an absolute path under its mount point (\"/sys/fs/cgroup/...\").\n"
    "NODES is a node list as in cpuset.mems: \"1\", \"0-1\", \"2,3\".\n"
    "\n"
    "Exit status: 0 moved and verified, 1 partial (a residue stayed: the report says\n"
    "how much and why), 2 bad usage or input (an unknown container, say), 3 system\n"
    "error (privilege, no NUMA, the agent unreachable).\n"
    "\n"
    "Needs CAP_SYS_NICE (to move shared pages and to targets outside a task's cpuset)\n"
    "and ptrace read access to the tasks (root, or CAP_SYS_PTRACE).\n";

typedef struct {
	const char *cmd;
	const char *cgroup; /* or the container id, for the agent's commands */
	const char *to, *from;
	bool dry_run, json, via_agent;
	unsigned retries;
	const char *socket, *url, *token_file;
} args;

/* Which options each command takes (by getopt value), and its arguments. */
typedef struct {
	const char *name, *opts;
	int min_args, max_args;
} command;

static const command commands[] = {
    {"migrate", "tfnjrASUK", 1, 1}, {"show", "j", 1, 1},       {"status", "jSUK", 0, 0},
    {"ps", "jSUK", 0, 0},	    {"history", "jSUK", 0, 1},
};

static int parse_args(int argc, char **argv, args *a)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 't'},	  {"from", required_argument, NULL, 'f'},
	    {"dry-run", no_argument, NULL, 'n'},	  {"json", no_argument, NULL, 'j'},
	    {"retries", required_argument, NULL, 'r'},	  {"via-agent", no_argument, NULL, 'A'},
	    {"socket", required_argument, NULL, 'S'},	  {"url", required_argument, NULL, 'U'},
	    {"token-file", required_argument, NULL, 'K'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},	  {0},
	};
	const command *cmd = NULL;
	int c;
	uint64_t v;

	*a = (args){.retries = 3, .socket = getenv("NUMAFOLLOW_SOCKET")};
	if (!a->socket)
		a->socket = NF_DEFAULT_SOCKET;
	opterr = 0; /* our messages, not getopt's */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1 && c != 1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			puts("numafollow " NF_VERSION);
			exit(0);
		default:
			return nf_cli_fail(NF_EXIT_USAGE,
					   "unknown option '%s'; try 'numafollow --help'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return nf_cli_fail(NF_EXIT_USAGE, "no command given; try 'numafollow --help'");
	a->cmd = argv[optind];
	for (size_t i = 0; i < NF_ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, a->cmd) == 0)
			cmd = &commands[i];
	if (!cmd)
		return nf_cli_fail(NF_EXIT_USAGE, "unknown command '%s'; try 'numafollow --help'",
				   a->cmd);
	/* Options of the command, in any order around its argument: rescan from
	 * the command on, with getopt reset (optind 0) to permuting mode. */
	argv += optind;
	argc -= optind;
	optind = 0;
	int idx = -1;
	while ((c = getopt_long(argc, argv, ":h", opts, &idx)) != -1) {
		char opt[64]; /* as the user wrote it, without a consumed value */
		snprintf(opt, sizeof(opt), "%s%s", idx >= 0 ? "--" : "",
			 idx >= 0 ? opts[idx].name : argv[optind - 1]);
		idx = -1;
		if (c == 'h') {
			fputs(usage_text, stdout);
			exit(0);
		}
		if (c == ':')
			return nf_cli_fail(NF_EXIT_USAGE, "'%s' needs a value", opt);
		if (c == '?' || !strchr(cmd->opts, c))
			return nf_cli_fail(NF_EXIT_USAGE,
					   "'%s' takes no option '%s'; try 'numafollow --help'",
					   a->cmd, opt);
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 't':
			a->to = optarg;
			break;
		case 'f':
			a->from = optarg;
			break;
		case 'n':
			a->dry_run = true;
			break;
		case 'A':
			a->via_agent = true;
			break;
		case 'S':
			a->socket = optarg;
			break;
		case 'U':
			a->url = optarg;
			break;
		case 'K':
			a->token_file = optarg;
			break;
		default:
			if (nf_parse_u64(optarg, NULL, &v) < 0 || v > 100)
				return nf_cli_fail(NF_EXIT_USAGE,
						   "--retries: '%s' is not a number from 0 to 100",
						   optarg);
			a->retries = v;
		}
	}
	int n = argc - optind;
	if (n < cmd->min_args || n > cmd->max_args)
		return nf_cli_fail(NF_EXIT_USAGE, "'%s' needs %s; try 'numafollow --help'", a->cmd,
				   cmd->max_args == 0	? "no argument"
				   : cmd->min_args == 0 ? "at most one ID"
				   : a->via_agent	? "exactly one container ID"
							: "exactly one CGROUP");
	if (a->via_agent && (a->to || a->from || a->dry_run))
		return nf_cli_fail(NF_EXIT_USAGE,
				   "--via-agent migrates to the container's mems; it takes "
				   "no --to, --from or --dry-run");
	if (!a->via_agent && strcmp(a->cmd, "migrate") == 0 && (a->url || a->token_file))
		return nf_cli_fail(NF_EXIT_USAGE, "--url and --token-file go with --via-agent");
	a->cgroup = n ? argv[optind] : NULL;
	return 0;
}

/* Parses a user's node list: well formed, online, with memory. */
static int parse_nodes(const char *opt, const char *s, nf_nodeset *ret)
{
	nf_nodeset mem, bad;
	char buf[NF_NODESET_STRLEN];
	int r = nf_nodeset_parse(s, ret);
	if (r < 0 || nf_nodeset_empty(ret))
		return nf_cli_fail(NF_EXIT_USAGE, "%s: '%s' is not a node list (like 1, 0-1 or 2,3)",
				   opt, s);
	r = nf_memory_nodes(&mem);
	if (r < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "reading /sys/devices/system/node/has_memory: %s",
				   strerror(-r));
	nf_nodeset_minus(ret, &mem, &bad);
	if (!nf_nodeset_empty(&bad))
		return nf_cli_fail(
		    NF_EXIT_USAGE, "%s: node %s is offline or has no memory (nodes with memory: %s)",
		    opt, nf_nodeset_format(&bad, buf, sizeof(buf)),
		    nf_nodeset_format(&mem, (char[NF_NODESET_STRLEN]){0}, NF_NODESET_STRLEN));
	return 0;
}

static int open_cgroup(const char *arg, nf_hierarchy *h, nf_cgroup *cg)
{
	int r = nf_hierarchy_detect(h);
	if (r < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM,
				   "no cpuset controller found in /proc/self/mountinfo: %s",
				   strerror(-r));
	r = nf_cgroup_open(h, arg, cg);
	if (r == -EXDEV)
		return nf_cli_fail(NF_EXIT_USAGE,
				   "cgroup '%s' is outside the cpuset hierarchy at '%s'", arg,
				   h->mount);
	if (r == -ENOENT || r == -ENOTDIR)
		return nf_cli_fail(NF_EXIT_USAGE, "cgroup '%s': no such cgroup under '%s'", arg,
				   h->mount);
	if (r < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "cgroup '%s': %s", arg, strerror(-r));
	return 0;
}

/* ---- output ---- */

/* A numastat-like table: one column per node that has memory or any bytes. */
static void print_table(const char *const *labels, const nf_residency *const *rows, size_t n,
			bool split)
{
	nf_nodeset cols = {0};
	nf_memory_nodes(&cols);
	for (size_t i = 0; i < n; i++) {
		nf_nodeset s;
		nf_residency_nodes(rows[i], &s);
		for (size_t w = 0; w < NF_ARRAY_SIZE(s.w); w++)
			cols.w[w] |= s.w[w];
	}
	printf("%-14s", "(MiB)");
	for (unsigned c = 0; c < NF_MAX_NODES; c++)
		if (nf_nodeset_has(&cols, c))
			printf(" %11s%-u", "Node ", c);
	printf(" %12s\n", "Total");
	for (size_t i = 0; i < n; i++) {
		for (int part = split ? 0 : 2; part < 3; part++) {
			static const char *const suffix[] = {" anon", " file", ""};
			char label[64];
			snprintf(label, sizeof(label), "%s%s", labels[i], suffix[part]);
			printf("%-14s", label);
			uint64_t total = 0;
			for (unsigned c = 0; c < NF_MAX_NODES; c++) {
				uint64_t b = part == 0	 ? rows[i]->anon[c]
					     : part == 1 ? rows[i]->file[c]
							 : nf_residency_node(rows[i], c);
				total += b;
				if (nf_nodeset_has(&cols, c))
					printf(" %12.2f", nf_mib(b));
			}
			printf(" %12.2f\n", nf_mib(total));
		}
	}
}

/* ---- show ---- */

static const char *source_name(nf_residency_source s)
{
	return s == NF_SRC_NUMA_STAT ? "memory.numa_stat" : "numa_maps";
}

static json_object *identity_json(const nf_identity *id)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id->id));
	json_object_object_add(o, "runtime", json_object_new_string(id->runtime));
	if (id->pod_uid[0])
		json_object_object_add(o, "pod_uid", json_object_new_string(id->pod_uid));
	return o;
}

static int cmd_show(const args *a)
{
	nf_identity id;
	nf_hierarchy h = {0};
	nf_cgroup cg = {0};
	nf_nodeset mems, eff;
	nf_residency res;
	nf_residency_source src;
	_cleanup_free_ pid_t *tasks = NULL;
	size_t n = 0;
	int code = open_cgroup(a->cgroup, &h, &cg), r;
	if (code)
		goto out;
	if ((r = nf_cgroup_read_mems(&cg, &mems, &eff)) < 0 ||
	    (r = nf_cgroup_tasks(&cg, true, &tasks, &n)) < 0 ||
	    (r = nf_cgroup_residency(&cg, tasks, n, &res, &src)) < 0 ||
	    (r = nf_identify(cg.rel, &id)) < 0) {
		code = nf_cli_fail(NF_EXIT_SYSTEM, "cgroup '%s': %s", cg.path, strerror(-r));
		goto out;
	}
	if (a->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "cgroup", json_object_new_string(cg.path));
		json_object_object_add(o, "hierarchy",
				       json_object_new_string(nf_hierarchy_name(&h)));
		json_object_object_add(o, "mems", nf_json_nodeset(&mems));
		json_object_object_add(o, "mems_effective", nf_json_nodeset(&eff));
		json_object_object_add(o, "tasks", json_object_new_int64(n));
		json_object_object_add(o, "memory",
				       nf_json_per_node(res.anon, res.file, NF_MAX_NODES));
		json_object_object_add(o, "memory_anon",
				       nf_json_per_node(res.anon, NULL, NF_MAX_NODES));
		json_object_object_add(o, "memory_file",
				       nf_json_per_node(NULL, res.file, NF_MAX_NODES));
		json_object_object_add(o, "source", json_object_new_string(source_name(src)));
		json_object_object_add(o, "container", identity_json(&id));
		nf_cli_print_json(o);
		json_object_put(o);
		goto out;
	}
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	printf("cgroup     %s (%s)\n", cg.path, nf_hierarchy_name(&h));
	if (id.runtime[0] || id.pod_uid[0])
		printf("container  %s%s%s%s\n", id.id, id.runtime[0] ? " (" : "", id.runtime,
		       id.runtime[0] ? ")" : "");
	if (id.pod_uid[0])
		printf("pod        %s\n", id.pod_uid);
	printf("mems       %s (effective %s)\ntasks      %zu\nsource     %s\n\n",
	       nf_nodeset_format(&mems, b1, sizeof(b1)), nf_nodeset_format(&eff, b2, sizeof(b2)), n,
	       source_name(src));
	print_table((const char *const[]){"memory"}, (const nf_residency *const[]){&res}, 1, true);
out:
	nf_cgroup_done(&cg);
	nf_hierarchy_done(&h);
	return code;
}

/* ---- migrate ---- */

static const char *const stay_reason[NF_STAY_COUNT] = {
    [NF_STAY_ANON] = "private anonymous pages the kernel could not isolate (busy or pinned)",
    [NF_STAY_FILE] = "file-backed pages (page cache in use)",
    [NF_STAY_SHARED] = "pages mapped by several processes (need CAP_SYS_NICE)",
    [NF_STAY_HUGE] = "hugetlb pages (the target needs free huge pages)",
};

static const char *errno_name(int err)
{
	const char *s = strerrorname_np(err);
	return s ? s : "EUNKNOWN";
}

static json_object *migration_json(const nf_cgroup *cg, const nf_migrate_opts *o,
				   const nf_migration *m)
{
	json_object *j = json_object_new_object(), *a;
	json_object_object_add(j, "cgroup", json_object_new_string(cg->path));
	json_object_object_add(j, "hierarchy", json_object_new_string(nf_hierarchy_name(cg->h)));
	json_object_object_add(j, "to", nf_json_nodeset(&o->to));
	if (o->has_from)
		json_object_object_add(j, "from", nf_json_nodeset(&o->from));
	json_object_object_add(j, "dry_run", json_object_new_boolean(o->dry_run));
	json_object_object_add(j, "tasks", json_object_new_int64(m->tasks));
	json_object_object_add(j, "tasks_migrated", json_object_new_int64(m->tasks_migrated));
	json_object_object_add(j, "tasks_exited", json_object_new_int64(m->tasks_exited));
	json_object_object_add(j, "tasks_failed", json_object_new_int64(m->tasks_failed));
	json_object_object_add(j, "pages_not_moved", json_object_new_int64(m->pages_not_moved));
	json_object_object_add(j, "sweeps", json_object_new_int64(m->sweeps));
	json_object_object_add(j, "before",
			       nf_json_per_node(m->before.anon, m->before.file, NF_MAX_NODES));
	json_object_object_add(j, "after",
			       nf_json_per_node(m->after.anon, m->after.file, NF_MAX_NODES));
	json_object_object_add(j, "moved_bytes", json_object_new_int64(m->moved_bytes));
	json_object_object_add(j, "residual_bytes", json_object_new_int64(m->residual_bytes));
	a = json_object_new_object();
	for (int c = 0; c < NF_STAY_COUNT; c++)
		if (m->residual[c])
			json_object_object_add(a, nf_stay_class_name(c),
					       json_object_new_int64(m->residual[c]));
	json_object_object_add(j, "residual", a);
	a = json_object_new_array();
	for (size_t i = 0; i < m->n_plan; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "from", json_object_new_int(m->plan[i].from));
		json_object_object_add(s, "to", json_object_new_int(m->plan[i].to));
		json_object_object_add(s, "bytes", json_object_new_int64(m->plan[i].bytes));
		json_object_array_add(a, s);
	}
	json_object_object_add(j, "plan", a);
	json_object_object_add(j, "duration_ms", json_object_new_int64(m->duration_ns / 1000000));
	a = json_object_new_array();
	for (size_t i = 0; i < m->n_errors; i++) {
		const nf_task_error *e = &m->errors[i];
		json_object *x = json_object_new_object();
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: %s", e->what, strerror(e->err));
		json_object_object_add(x, "pid", json_object_new_int(e->pid));
		json_object_object_add(x, "errno", json_object_new_string(errno_name(e->err)));
		json_object_object_add(x, "message", json_object_new_string(msg));
		json_object_array_add(a, x);
	}
	json_object_object_add(j, "errors", a);
	return j;
}

static void print_migration(const nf_cgroup *cg, const nf_migrate_opts *o, const nf_migration *m)
{
	char to[NF_NODESET_STRLEN];
	nf_nodeset_format(&o->to, to, sizeof(to));
	printf("%s %s (%s) to node %s: %zu task%s\n\n", o->dry_run ? "plan for" : "migrated",
	       cg->path, nf_hierarchy_name(cg->h), to, m->tasks, m->tasks == 1 ? "" : "s");
	if (o->dry_run) {
		print_table((const char *const[]){"now"}, (const nf_residency *const[]){&m->before},
			    1, false);
		printf("\n");
		for (size_t i = 0; i < m->n_plan; i++)
			printf("would move  node %u -> node %u  %10.2f MiB\n", m->plan[i].from,
			       m->plan[i].to, nf_mib(m->plan[i].bytes));
		if (m->n_plan == 0)
			printf("nothing to move: all memory is on node %s\n", to);
		printf("(dry run: nothing moved)\n");
		return;
	}
	print_table((const char *const[]){"before", "after"},
		    (const nf_residency *const[]){&m->before, &m->after}, 2, false);
	printf("\nmoved %.2f MiB in %llu ms (%.0f MiB/s, %u sweep%s); tasks: %zu migrated, %zu "
	       "exited, %zu failed\n",
	       nf_mib(m->moved_bytes), (unsigned long long)(m->duration_ns / 1000000),
	       nf_mib(m->moved_bytes) / (m->duration_ns ? m->duration_ns / 1e9 : 1), m->sweeps,
	       m->sweeps == 1 ? "" : "s", m->tasks_migrated, m->tasks_exited, m->tasks_failed);
	if (m->residual_bytes)
		printf("left outside node %s: %.2f MiB\n", to, nf_mib(m->residual_bytes));
	for (int c = 0; c < NF_STAY_COUNT; c++)
		if (m->residual[c])
			printf("  %10.2f MiB  %s\n", nf_mib(m->residual[c]), stay_reason[c]);
	for (size_t i = 0; i < m->n_errors; i++)
		printf("pid %d: %s: %s\n", m->errors[i].pid, m->errors[i].what,
		       strerror(m->errors[i].err));
}

static int exit_code(const nf_migration *m)
{
	size_t denied = 0;
	for (size_t i = 0; i < m->n_errors; i++)
		denied += m->errors[i].err == EPERM || m->errors[i].err == EACCES;
	if (denied && denied == m->tasks_failed && m->tasks_migrated == 0)
		return NF_EXIT_SYSTEM;
	return m->residual_bytes || m->tasks_failed ? NF_EXIT_PARTIAL : 0;
}

/* The kernel ANDs targets with the caller's own cpuset: refuse rather than
 * migrate nowhere. */
static int check_self(const nf_nodeset *to)
{
	nf_nodeset self, bad;
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	int r = nf_self_mems(&self);
	if (r < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "reading /proc/self/status: %s", strerror(-r));
	nf_nodeset_minus(to, &self, &bad);
	if (!nf_nodeset_empty(&bad))
		return nf_cli_fail(
		    NF_EXIT_SYSTEM,
		    "numafollow itself may only use nodes %s (its cpuset): the kernel "
		    "would silently drop target node %s; run it outside that cpuset",
		    nf_nodeset_format(&self, b1, sizeof(b1)),
		    nf_nodeset_format(&bad, b2, sizeof(b2)));
	return 0;
}

static int prepare_opts(const args *a, const nf_cgroup *cg, nf_migrate_opts *o)
{
	nf_nodeset eff;
	int r = nf_cgroup_read_mems(cg, NULL, &eff);
	if (r < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "cgroup '%s': reading its mems: %s", cg->path,
				   strerror(-r));
	*o = (nf_migrate_opts){
	    .to = eff, .dry_run = a->dry_run, .retries = a->retries, .backoff_ms = 20};
	if (a->to && (r = parse_nodes("--to", a->to, &o->to)))
		return r;
	if (a->from) {
		if ((r = parse_nodes("--from", a->from, &o->from)))
			return r;
		o->has_from = true;
	}
	if (nf_nodeset_empty(&o->to))
		return nf_cli_fail(NF_EXIT_USAGE, "cgroup '%s' has no effective mems; give --to",
				   cg->path);
	return check_self(&o->to);
}

static int cmd_migrate(const args *a)
{
	nf_hierarchy h = {0};
	nf_cgroup cg = {0};
	nf_migrate_opts o;
	nf_migration m = {0};
	int code = open_cgroup(a->cgroup, &h, &cg), r;
	if (code || (code = prepare_opts(a, &cg, &o)))
		goto out;
	r = nf_migrate(&cg, &o, &m);
	if (r < 0) {
		code = nf_cli_fail(NF_EXIT_SYSTEM, "migrating cgroup '%s': %s", cg.path, strerror(-r));
		goto out;
	}
	if (a->json) {
		json_object *j = migration_json(&cg, &o, &m);
		nf_cli_print_json(j);
		json_object_put(j);
	} else {
		print_migration(&cg, &o, &m);
	}
	code = o.dry_run ? 0 : exit_code(&m);
out:
	nf_migration_done(&m);
	nf_cgroup_done(&cg);
	nf_hierarchy_done(&h);
	return code;
}

static int run(const args *a)
{
	if (strcmp(a->cmd, "show") != 0 && (strcmp(a->cmd, "migrate") != 0 || a->via_agent))
		return nf_client(&(nf_client_args){.cmd = a->cmd,
						   .arg = a->cgroup,
						   .socket = a->socket,
						   .url = a->url,
						   .token_file = a->token_file,
						   .json = a->json});
	if (numa_available() < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "this kernel has no NUMA support (numa_available)");
	return strcmp(a->cmd, "show") == 0 ? cmd_show(a) : cmd_migrate(a);
}

int main(int argc, char **argv)
{
	args a;
	int r = parse_args(argc, argv, &a);
	if (r)
		return r;
	return run(&a);
}
