/* numafollow: move a cgroup's memory to its NUMA nodes, verified, and report.
 * This file reads the command line and hands it to the command. */
#include "cli.h"
#include "../lib/mover.h"
#include "../lib/nf.h"
#include "../../cgroup/util.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "Usage: numafollow COMMAND [OPTIONS] [ARG]\n"
    "\n"
    "Makes a cgroup's memory follow its NUMA placement.\n"
    "\n"
    "Commands that work on the cgroup file system directly:\n"
    "  migrate [--to NODES] [--from NODES] [--dry-run] [--retries N] [--json]\n"
    "          [--method auto|migrate_pages|move_pages] [--threads N] [--max-rate MIB/S]\n"
    "          [--budget-ms N] [--progress | --quiet] CGROUP\n"
    "        Move the memory of every task of CGROUP (and its descendants) to NODES\n"
    "        (default: the cgroup's effective mems), verify where it is afterwards and\n"
    "        retry what stayed. --dry-run shows the plan and moves nothing.\n"
    "        --from NODES gives the previous mems: pages keep the kernel's relative\n"
    "        old->new node mapping.\n"
    "        The bulk of a task with 16 MiB or more to move goes by move_pages(2) in\n"
    "        batches on --threads workers (default: the online CPUs of the source and\n"
    "        target nodes, at most 8), so the task's own mmap/munmap never wait for\n"
    "        the whole move; the\n"
    "        rest by migrate_pages(2) (--method chooses one for everything).\n"
    "        --max-rate caps the copy rate; --budget-ms stops at a deadline and\n"
    "        reports what is left.\n"
    "        On a terminal a progress line on stderr says the phase, MiB moved of\n"
    "        MiB to move, the rate and the time left; --progress draws it anyway\n"
    "        (also with --json or stderr not a terminal), --quiet never.\n"
    "  move --to NODES [--method M] [--threads N] [--max-rate MIB/S] [--json]\n"
    "       [--progress | --quiet] CGROUP\n"
    "        Change CGROUP's cpuset.mems to NODES in stages, so that nobody waits on\n"
    "        the kernel for the bulk: on cgroup v2 it writes old+new (the kernel\n"
    "        then moves nothing), moves the memory as migrate does, then writes\n"
    "        NODES (the kernel sweeps what was allocated meanwhile). On v1 it\n"
    "        writes NODES, then moves. Needs cpuset.mems to be writable.\n"
    "  show [--json] CGROUP\n"
    "        mems, effective mems, tasks and per-node memory of CGROUP.\n"
    "\n"
    "Commands that ask the agent (numafollowd):\n"
    "  status [--json]          the agent's state and self-check\n"
    "  ps [--json]              containers: mems, memory per node, state\n"
    "  top [-n N] [--interval S]\n"
    "        containers with their memory per node as bars, and the migrations in\n"
    "        flight with their progress, redrawn in place; q quits. When stdout is\n"
    "        not a terminal, plain lines each time; -n N stops after N.\n"
    "  history [--json] [--follow] [CONTAINER]\n"
    "        migrations, newest first (of CONTAINER); --follow prints each as it\n"
    "        ends (the agent's event stream), until interrupted\n"
    "  migrate --via-agent [--json] CONTAINER\n"
    "        ask the agent to migrate CONTAINER now, and wait for the result\n"
    "  move --via-agent --to NODES [--json] CONTAINER\n"
    "        ask the agent for a staged move of CONTAINER to NODES, and wait\n"
    "CONTAINER is the agent's id, an unambiguous prefix of one, a name (docker's,\n"
    "or the registration's), namespace/pod/container, or a cgroup path (\"/...\").\n"
    "An unknown or ambiguous one is an error that lists the candidates (exit 2).\n"
    "Agent options: --socket PATH (default $NUMAFOLLOW_SOCKET, else\n"
    "  " NF_DEFAULT_SOCKET "), --url http://HOST:PORT (TCP instead),\n"
    "  --token-file PATH (bearer token for TCP)\n"
    "Also: -q is --quiet; -h, --help prints this (also after a command);\n"
    "  -V, --version the version.\n"
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

/* Which options each command takes (by getopt value), its arguments, and
 * what it checks of them beyond that. */
typedef struct {
	const char *name, *opts;
	int min_args, max_args;
	int (*check)(const nf_cli_args *a, nf_cli_error *e);
	int (*run)(const nf_cli_args *a);
} command;

static int check_migrate(const nf_cli_args *a, nf_cli_error *e)
{
	if (a->via_agent && (a->to || a->from || a->dry_run || a->method || a->threads ||
			     a->max_rate || a->budget_ms || a->progress || a->quiet))
		return nf_cli_usage(e, -EINVAL,
				    "--via-agent migrates to the container's mems as the agent's "
				    "settings say; it takes no --to, --from, --dry-run, --method, "
				    "--threads, --max-rate, --budget-ms, --progress or --quiet");
	if (!a->via_agent && (a->url || a->token_file))
		return nf_cli_usage(e, -EINVAL, "--url and --token-file go with --via-agent");
	return 0;
}

static int check_move(const nf_cli_args *a, nf_cli_error *e)
{
	if (!a->to)
		return nf_cli_usage(e, -EINVAL, "'move' needs --to NODES");
	if (a->via_agent && (a->method || a->threads || a->max_rate || a->progress || a->quiet))
		return nf_cli_usage(e, -EINVAL,
				    "--via-agent moves as the agent's settings say; it takes no "
				    "--method, --threads, --max-rate, --progress or --quiet");
	if (!a->via_agent && (a->url || a->token_file))
		return nf_cli_usage(e, -EINVAL, "--url and --token-file go with --via-agent");
	return 0;
}

static int run_migrate(const nf_cli_args *a)
{
	return a->via_agent ? nf_cli_agent(a) : nf_cli_migrate(a);
}

static int run_move(const nf_cli_args *a)
{
	return a->via_agent ? nf_cli_agent(a) : nf_cli_move(a);
}

static const command commands[] = {
    {"migrate", "tfnjrASUKMTRBPq", 1, 1, check_migrate, run_migrate},
    {"move", "tjMTRPqASUK", 1, 1, check_move, run_move},
    {"show", "j", 1, 1, NULL, nf_cli_show},
    {"status", "jSUK", 0, 0, NULL, nf_cli_agent},
    {"ps", "jSUK", 0, 0, NULL, nf_cli_agent},
    {"history", "jSUKF", 0, 1, NULL, nf_cli_agent},
    {"top", "SUKNI", 0, 0, NULL, nf_cli_top},
};

static const struct option options[] = {
    {"to", required_argument, NULL, 't'},
    {"from", required_argument, NULL, 'f'},
    {"dry-run", no_argument, NULL, 'n'},
    {"json", no_argument, NULL, 'j'},
    {"retries", required_argument, NULL, 'r'},
    {"via-agent", no_argument, NULL, 'A'},
    {"socket", required_argument, NULL, 'S'},
    {"url", required_argument, NULL, 'U'},
    {"token-file", required_argument, NULL, 'K'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"method", required_argument, NULL, 'M'},
    {"threads", required_argument, NULL, 'T'},
    {"max-rate", required_argument, NULL, 'R'},
    {"budget-ms", required_argument, NULL, 'B'},
    {"progress", no_argument, NULL, 'P'},
    {"quiet", no_argument, NULL, 'q'},
    {"follow", no_argument, NULL, 'F'},
    {"iterations", required_argument, NULL, 'N'},
    {"interval", required_argument, NULL, 'I'},
    {0},
};

/* The options before the command (--help, --version, which end the parsing:
 * no command then), then the command. */
static int parse_common(int argc, char **argv, nf_cli_args *a, nf_cli_error *e, const command **ret)
{
	int c;
	opterr = 0; /* our messages, not getopt's */
	if ((c = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
		if (c != 'h' && c != 'V')
			return nf_cli_usage(e, -EINVAL,
					    "unknown option '%s'; try 'numafollow --help'",
					    argv[optind - 1]);
		a->help = c == 'h';
		a->version = c == 'V';
		return 0;
	}
	if (optind >= argc)
		return nf_cli_usage(e, -EINVAL, "no command given; try 'numafollow --help'");
	a->cmd = argv[optind];
	for (size_t i = 0; i < NF_ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, a->cmd) == 0) {
			*ret = &commands[i];
			return 0;
		}
	return nf_cli_usage(e, -EINVAL, "unknown command '%s'; try 'numafollow --help'", a->cmd);
}

/* A number option's value from LO to HI. */
static int number(const char *opt, const char *val, uint64_t lo, uint64_t hi, uint64_t *ret,
		  nf_cli_error *e)
{
	if (nf_parse_u64(val, NULL, ret) < 0 || *ret < lo || *ret > hi)
		return nf_cli_usage(e, -EINVAL, "%s: '%s' is not a number from %llu to %llu", opt,
				    val, (unsigned long long)lo, (unsigned long long)hi);
	return 0;
}

static int set_number(nf_cli_args *a, int c, const char *val, nf_cli_error *e)
{
	uint64_t v;
	int r;
	switch (c) {
	case 'T':
		r = number("--threads", val, 1, NF_MOVE_THREADS_MAX, &v, e);
		a->threads = v;
		return r;
	case 'R':
		r = number("--max-rate", val, 1, 1 << 20, &v, e);
		a->max_rate = v << 20;
		return r;
	case 'B':
		return number("--budget-ms", val, 1, 86400000, &a->budget_ms, e);
	case 'N':
		r = number("-n", val, 1, 1000000, &v, e);
		a->iterations = v;
		return r;
	case 'I':
		r = number("--interval", val, 1, 3600, &v, e);
		a->interval_ms = v * 1000;
		return r;
	}
	r = number("--retries", val, 0, 100, &v, e);
	a->retries = v;
	return r;
}

static int set_option(nf_cli_args *a, int c, const char *val, nf_cli_error *e)
{
	switch (c) {
	case 'j':
		a->json = true;
		return 0;
	case 'P':
		a->progress = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case 'F':
		a->follow = true;
		return 0;
	case 't':
		a->to = val;
		return 0;
	case 'f':
		a->from = val;
		return 0;
	case 'n':
		a->dry_run = true;
		return 0;
	case 'A':
		a->via_agent = true;
		return 0;
	case 'S':
		a->socket = val;
		return 0;
	case 'U':
		a->url = val;
		return 0;
	case 'K':
		a->token_file = val;
		return 0;
	case 'M':
		a->method = val;
		return 0;
	}
	return set_number(a, c, val, e);
}

static int check_args(const command *cmd, int n, char **args, nf_cli_args *a, nf_cli_error *e)
{
	if (n < cmd->min_args || n > cmd->max_args)
		return nf_cli_usage(e, -EINVAL, "'%s' needs %s; try 'numafollow --help'", a->cmd,
				    cmd->max_args == 0	 ? "no argument"
				    : cmd->min_args == 0 ? "at most one CONTAINER"
				    : a->via_agent	 ? "exactly one CONTAINER"
							 : "exactly one CGROUP");
	a->arg = n ? args[0] : NULL;
	return cmd->check ? cmd->check(a, e) : 0;
}

/* The command's options, in any order around its argument: ARGV starts at the
 * command, rescanned with getopt reset (optind 0) to permuting mode. */
static int parse_command(const command *cmd, int argc, char **argv, nf_cli_args *a, nf_cli_error *e)
{
	int c, idx = -1, r;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hqn:", options, &idx)) != -1) {
		if (c == 'n' && idx < 0) /* -n N (top), not --dry-run */
			c = 'N';
		/* as the user wrote it, without a consumed value */
		const char *dash = idx >= 0 ? "--" : "";
		const char *opt = idx >= 0 ? options[idx].name : argv[optind - 1];
		idx = -1;
		if (c == 'h') {
			a->help = true;
			return 0;
		}
		if (c == ':')
			return nf_cli_usage(e, -EINVAL, "'%s%s' needs a value", dash, opt);
		if (c == '?' || !strchr(cmd->opts, c))
			return nf_cli_usage(e, -EINVAL,
					    "'%s' takes no option '%s%s'; try 'numafollow --help'",
					    a->cmd, dash, opt);
		if ((r = set_option(a, c, optarg, e)) < 0)
			return r;
	}
	return check_args(cmd, argc - optind, argv + optind, a, e);
}

static int parse_args(int argc, char **argv, nf_cli_args *a, nf_cli_error *e, const command **ret)
{
	const command *cmd = NULL;
	int r;
	*a = (nf_cli_args){.retries = 3, .socket = getenv("NUMAFOLLOW_SOCKET")};
	if (!a->socket)
		a->socket = NF_DEFAULT_SOCKET;
	r = parse_common(argc, argv, a, e, &cmd);
	if (r < 0 || a->help || a->version)
		return r;
	r = parse_command(cmd, argc - optind, argv + optind, a, e);
	if (r < 0)
		return r;
	*ret = cmd;
	return 0;
}

static int run(const command *cmd, const nf_cli_args *a)
{
	if (a->help)
		fputs(usage_text, stdout);
	else if (a->version)
		puts("numafollow " NF_VERSION);
	else
		return cmd->run(a);
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	const command *cmd = NULL;
	nf_cli_args a;
	/* A reader of its output that goes away (a progress line piped into head)
	 * must not kill a staged move between its writes of cpuset.mems. */
	signal(SIGPIPE, SIG_IGN);
	int r = parse_args(argc, argv, &a, &e, &cmd);
	if (r < 0)
		return nf_cli_fail(&e, r);
	return run(cmd, &a);
}
