/* numafollow-nri: numafollow's NRI plugin for containerd and CRI-O
 * (docs/nri.md). main() reads the options and calls nf_nri_run(). */
#include "plugin.h"
#include "../lib/http.h"
#include "../lib/log.h"
#include "../lib/nf.h"
#include "../../cgroup/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: numafollow-nri [OPTIONS]\n"
    "\n"
    "numafollow's NRI plugin: registers the containers of containerd and CRI-O\n"
    "with numafollowd as the OCI hook does, and (with --repin on) turns a CRI\n"
    "update that narrows or shifts a running container's mems into old and new\n"
    "nodes first, the agent's gentle move, then the new nodes.\n"
    "\n"
    "  --nri-socket PATH    the runtime's NRI socket (default " NF_NRI_DEFAULT_SOCKET ")\n"
    "  --socket PATH        numafollowd's socket (default " NF_DEFAULT_SOCKET ")\n"
    "  --name NAME          the plugin's name (default numafollow)\n"
    "  --index NN           its index, two digits: plugins are called in this\n"
    "                       order (default 90: after resource policies)\n"
    "  --repin on|off       the gentle CRI re-pin (default off)\n"
    "  --state-dir DIR      re-pins in flight and their journal (default\n"
    "                       " NF_NRI_DEFAULT_STATE ")\n"
    "  --move-timeout S     the longest wait for the agent's move (default 600)\n"
    "  --agent-check S      how often, when idle, to ask whether the agent restarted\n"
    "                       (its registrations are then sent again; default 30)\n"
    "  --cgroup-root PATH   the cgroup2 mount (default /sys/fs/cgroup)\n"
    "  --log-level LEVEL    err, warning, notice, info (default), debug\n"
    "  --log-target T       stderr (default) or syslog\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Launched by the runtime (NRI_PLUGIN_SOCKET set), it uses that socket, the\n"
    "name and index the runtime gives, and exits when the runtime closes it.\n"
    "Exit status: 0 after SIGTERM or SIGINT, 2 bad usage, 3 cannot start.\n";

static int parse_index(const char *s)
{
	return strlen(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' ? 0
											  : -EINVAL;
}

static int parse_u(const char *s, unsigned *ret)
{
	uint64_t v;
	if (nf_parse_u64(s, NULL, &v) < 0 || v == 0 || v > 86400)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* NRI's environment for a plugin it launched (NRI 0.6.1 pkg/api/plugin.go). */
static int prelaunched(nf_nri_config *c)
{
	const char *fd = getenv("NRI_PLUGIN_SOCKET"), *name = getenv("NRI_PLUGIN_NAME"),
		   *idx = getenv("NRI_PLUGIN_IDX");
	uint64_t v;
	if (!fd)
		return 0;
	if (nf_parse_u64(fd, NULL, &v) < 0 || v > 1024)
		return nf_log_invalid("NRI_PLUGIN_SOCKET='%s' is not a file descriptor", fd);
	c->prelaunched_fd = v;
	if (name && *name)
		c->name = name;
	if (idx && parse_index(idx) == 0)
		c->idx = idx;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"nri-socket", required_argument, NULL, 'n'},
					     {"socket", required_argument, NULL, 's'},
					     {"name", required_argument, NULL, 'N'},
					     {"index", required_argument, NULL, 'i'},
					     {"repin", required_argument, NULL, 'r'},
					     {"state-dir", required_argument, NULL, 'd'},
					     {"move-timeout", required_argument, NULL, 't'},
					     {"agent-check", required_argument, NULL, 'a'},
					     {"cgroup-root", required_argument, NULL, 'c'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"log-target", required_argument, NULL, 'L'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {0}};
	nf_nri_config c = {.nri_socket = NF_NRI_DEFAULT_SOCKET,
			   .agent_socket = NF_DEFAULT_SOCKET,
			   .state_dir = NF_NRI_DEFAULT_STATE,
			   .name = "numafollow",
			   .idx = "90",
			   .cgroup_root = "/sys/fs/cgroup",
			   .move_timeout_s = 600,
			   .agent_check_s = 30,
			   .prelaunched_fd = -1};
	int level = LOG_INFO, o;
	bool syslog_target = false, bad = false;
	nf_log_setup(level, false, "numafollow-nri");
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			c.nri_socket = optarg;
			break;
		case 's':
			c.agent_socket = optarg;
			break;
		case 'N':
			c.name = optarg;
			bad |= !*optarg;
			break;
		case 'i':
			bad |= parse_index(optarg) < 0;
			c.idx = optarg;
			break;
		case 'r':
			bad |= strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0;
			c.repin = strcmp(optarg, "on") == 0;
			break;
		case 'd':
			c.state_dir = optarg;
			break;
		case 't':
			bad |= parse_u(optarg, &c.move_timeout_s) < 0;
			break;
		case 'a':
			bad |= parse_u(optarg, &c.agent_check_s) < 0;
			break;
		case 'c':
			c.cgroup_root = optarg;
			break;
		case 'l':
			bad |= nf_log_level(optarg, &level) < 0;
			break;
		case 'L':
			bad |= strcmp(optarg, "stderr") != 0 && strcmp(optarg, "syslog") != 0;
			syslog_target = strcmp(optarg, "syslog") == 0;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			puts("numafollow-nri " NF_VERSION);
			return 0;
		default:
			bad = true;
		}
	}
	if (bad || optind != argc) {
		fputs(usage, stderr);
		return NF_EXIT_USAGE;
	}
	nf_log_setup(level, syslog_target, "numafollow-nri");
	if (prelaunched(&c) < 0)
		return NF_EXIT_USAGE;
	if (nf_http_setup(false) < 0) {
		nf_log(LOG_ERR, "libcurl could not start");
		return NF_EXIT_SYSTEM;
	}
	int r = nf_nri_run(&c);
	nf_http_teardown();
	return r;
}
