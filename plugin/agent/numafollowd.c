/* numafollowd: the node agent. Watches every container cgroup's cpuset.mems,
 * migrates and verifies, and reports over HTTP/JSON (api.c). */
#include "agent.h"
#include "../lib/nf.h"
#include "api.h"
#include "kevents.h"
#include "stream.h"
#include "../lib/http.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <getopt.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <numa.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#define DEFAULT_CONFIG "/etc/numafollow/numafollowd.conf"

static const char usage_text[] =
    "Usage: numafollowd [OPTIONS]\n"
    "\n"
    "The numafollow node agent: watches the cpuset.mems of every container cgroup,\n"
    "moves each container's memory to its NUMA nodes when they change, verifies where\n"
    "it is, and reports over HTTP/JSON and Prometheus metrics.\n"
    "\n"
    "Options (each also settable in the config file as 'name = value'):\n"
    "  --config PATH            config file (default " DEFAULT_CONFIG ";\n"
    "                           a missing default file is fine)\n"
    "  --socket PATH            API unix socket (default " NF_DEFAULT_SOCKET ")\n"
    "  --socket-group NAME      group that may change things over the socket, besides\n"
    "                           root (default: the agent's group)\n"
    "  --listen ADDR:PORT       also serve the API over TCP (IPv4): read-only unless\n"
    "                           --token-file is given\n"
    "  --token-file PATH        bearer token that TCP clients need for changes\n"
    "  --state-dir DIR          migration history journal (default /var/lib/numafollow)\n"
    "  --cgroup-root PATH       watch only this subtree of the cpuset hierarchy\n"
    "  --docker-socket PATH     dockerd's API socket, asked for docker containers'\n"
    "                           names (default /run/docker.sock; empty: never asked)\n"
    "  --workers N              migrations run at once (default 2)\n"
    "  --reconcile-interval S   seconds between full re-reads (default 30)\n"
    "  --retries N              extra sweeps of what a migration leaves (default 3)\n"
    "  --method METHOD          auto (default: move_pages in batches on a thread pool\n"
    "                           for the bulk, migrate_pages for the rest),\n"
    "                           migrate_pages or move_pages\n"
    "  --threads N              move_pages threads per migration (default 0: the\n"
    "                           source and target nodes' CPUs, at most 8)\n"
    "  --max-rate MIB           cap per migration in MiB/s (default 0: none); the\n"
    "                           annotation numafollow.io/max-rate overrides it\n"
    "  --budget-ms N            a migration stops after N ms (default 0: none); what\n"
    "                           it left is moved by the next reconcile\n"
    "  --assist 1|0             on cgroup v2, move memory alongside the kernel inside\n"
    "                           others' cpuset.mems writes, so the writer waits less\n"
    "                           (default 1)\n"
    "  --history N              migration records kept in memory (default 1000)\n"
    "  --journal-max-kib N      journal size bound in KiB (default 4096)\n"
    "  --log-level LEVEL        err, warning, notice, info (default) or debug\n"
    "  --log-target TARGET      stderr (default) or syslog\n"
    "  --kube-events MODE       Kubernetes Events about pods' migrations: auto\n"
    "                           (default: on inside a cluster's pod), on or off\n"
    "  --kube-sa-dir DIR        the service account's token and ca.crt (default\n"
    "                           " NF_KEV_SA_DIR ")\n"
    "  --kube-events-queue N    events waiting to be sent at most; more are dropped\n"
    "                           and counted (default 256)\n"
    "  --events-queue N         GET /v1/events: events a client may fall behind by;\n"
    "                           past it its queue is dropped and it is told\n"
    "                           (event lost) (default 256)\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT let running migrations finish and exit; SIGHUP re-reads\n"
    "the config file (log level, reconcile interval, retries, method, threads,\n"
    "max-rate, budget-ms, assist; the rest needs a restart).\n"
    "\n"
    "Exit status: 0 after a clean stop, 2 bad usage or config, 3 cannot start.\n";

typedef struct {
	int log_level; /* first: an offset of 0 means "not a string" in defs */
	char *config, *socket, *socket_group, *listen, *token_file, *state_dir, *cgroup_root;
	char *log_target, *method, *docker_socket, *kube_events, *kube_sa_dir;
	uint64_t workers, reconcile_s, retries, history, journal_kib;
	uint64_t threads, max_rate, budget_ms, assist, kube_queue, events_queue;
} options;

typedef struct {
	const char *name;
	size_t str_off;	 /* offset of a char * in options, or 0 */
	size_t num_off;	 /* offset of a uint64_t, or 0 */
	uint64_t lo, hi; /* bounds of a number */
	bool live;	 /* a reload applies it; the others take a restart */
} option_def;

static const option_def defs[] = {
    {"config", offsetof(options, config), 0, 0, 0, true},
    {"socket", offsetof(options, socket), 0, 0, 0, false},
    {"socket-group", offsetof(options, socket_group), 0, 0, 0, false},
    {"listen", offsetof(options, listen), 0, 0, 0, false},
    {"token-file", offsetof(options, token_file), 0, 0, 0, false},
    {"state-dir", offsetof(options, state_dir), 0, 0, 0, false},
    {"cgroup-root", offsetof(options, cgroup_root), 0, 0, 0, false},
    {"docker-socket", offsetof(options, docker_socket), 0, 0, 0, false},
    {"workers", 0, offsetof(options, workers), 1, 64, false},
    {"reconcile-interval", 0, offsetof(options, reconcile_s), 1, 86400, true},
    {"retries", 0, offsetof(options, retries), 0, 100, true},
    {"history", 0, offsetof(options, history), 1, 1000000, false},
    {"journal-max-kib", 0, offsetof(options, journal_kib), 64, 1024 * 1024, false},
    {"log-level", 0, 0, 0, 0, true},
    {"log-target", offsetof(options, log_target), 0, 0, 0, true},
    {"method", offsetof(options, method), 0, 0, 0, true},
    {"threads", 0, offsetof(options, threads), 0, NF_MOVE_THREADS_MAX, true},
    {"max-rate", 0, offsetof(options, max_rate), 0, 1 << 20, true},
    {"budget-ms", 0, offsetof(options, budget_ms), 0, 86400000, true},
    {"assist", 0, offsetof(options, assist), 0, 1, true},
    {"kube-events", offsetof(options, kube_events), 0, 0, 0, false},
    {"kube-sa-dir", offsetof(options, kube_sa_dir), 0, 0, 0, false},
    {"kube-events-queue", 0, offsetof(options, kube_queue), 1, 65536, false},
    {"events-queue", 0, offsetof(options, events_queue), 2, 65536, false},
};

static void options_free(options *o)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(defs); i++)
		if (defs[i].str_off)
			free(*(char **)((char *)o + defs[i].str_off));
}

static int options_default(options *o)
{
	*o = (options){.workers = 2,
		       .reconcile_s = 30,
		       .retries = 3,
		       .history = 1000,
		       .journal_kib = 4096,
		       .assist = 1,
		       .kube_queue = 256,
		       .events_queue = NF_STREAM_QUEUE,
		       .log_level = LOG_INFO};
	o->socket = strdup(NF_DEFAULT_SOCKET);
	o->state_dir = strdup("/var/lib/numafollow");
	o->log_target = strdup("stderr");
	o->method = strdup("auto");
	o->docker_socket = strdup("/run/docker.sock");
	o->kube_events = strdup("auto");
	o->kube_sa_dir = strdup(NF_KEV_SA_DIR);
	return o->socket && o->state_dir && o->log_target && o->method && o->docker_socket &&
		       o->kube_events && o->kube_sa_dir
		   ? 0
		   : -ENOMEM;
}

/* Sets option NAME; WHERE says where it came from, for the message. */
static int set_option(options *o, const char *name, const char *value, const char *where)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(defs); i++) {
		const option_def *d = &defs[i];
		uint64_t v;
		if (strcmp(d->name, name) != 0)
			continue;
		if (strcmp(name, "log-level") == 0) {
			if (nf_log_level(value, &o->log_level) < 0)
				return nf_log_invalid(
				    "%s: log-level '%s' is not one of err, warning, notice, "
				    "info, debug",
				    where, value);
		} else if (d->str_off) {
			char **p = (char **)((char *)o + d->str_off);
			free(*p);
			if (!(*p = strdup(value)))
				return -ENOMEM;
		} else if (nf_parse_u64(value, NULL, &v) < 0 || v < d->lo || v > d->hi) {
			return nf_log_invalid("%s: %s '%s' is not a number from %llu to %llu",
					      where, name, value, (unsigned long long)d->lo,
					      (unsigned long long)d->hi);
		} else {
			*(uint64_t *)((char *)o + d->num_off) = v;
		}
		return 0;
	}
	return nf_log_invalid("%s: unknown option '%s'; try 'numafollowd --help'", where, name);
}

/* "name = value" lines; '#' starts a comment line. */
static int read_config(options *o, const char *path, bool must_exist)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return nf_log_errno(LOG_ERR, -errno, "config '%s'", path);
	}
	while (getline(&line, &cap, f) > 0) {
		char *name, *value, where[PATH_MAX + 32];
		int kind = nf_conf_line(line, &name, &value);
		lineno++;
		if (kind == 0)
			continue;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (kind < 0) {
			return nf_log_invalid("%s: expected 'name = value'", where);
		}
		if (strcmp(name, "config") == 0) {
			return nf_log_invalid("%s: 'config' cannot be set in a config file", where);
		}
		int r = set_option(o, name, value, where);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Defaults, then the config file, then the command line (which wins). */
static int load_options(int argc, char **argv, options *o)
{
	/* --NAME VALUE for every setting, then --help and --version */
	struct option longs[NF_ARRAY_SIZE(defs) + 3] = {{0}};
	for (size_t i = 0; i < NF_ARRAY_SIZE(defs); i++)
		longs[i] = (struct option){defs[i].name, required_argument, NULL, 0};
	longs[NF_ARRAY_SIZE(defs)] = (struct option){"help", no_argument, NULL, 'h'};
	longs[NF_ARRAY_SIZE(defs) + 1] = (struct option){"version", no_argument, NULL, 'V'};
	const char *config = NULL;
	int c, idx, r;
	if ((r = options_default(o)) < 0)
		return r;
	/* First pass: only --config, --help and --version and the syntax. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", longs, &idx)) != -1) {
		if (c == 'h')
			fputs(usage_text, stdout), exit(0);
		if (c == 'V')
			puts("numafollowd " NF_VERSION), exit(0);
		if (c == ':' || c == '?')
			return nf_log_invalid("%s '%s'; try 'numafollowd --help'",
					      c == ':' ? "missing value for" : "unknown option",
					      argv[optind - 1]);
		if (strcmp(longs[idx].name, "config") == 0)
			config = optarg;
	}
	if (optind < argc)
		return nf_log_invalid("unexpected argument '%s'", argv[optind]);
	if ((r = read_config(o, config ? config : DEFAULT_CONFIG, config != NULL)) < 0)
		return r;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", longs, &idx)) != -1)
		if ((r = set_option(o, longs[idx].name, optarg, "command line")) < 0)
			return r;
	if (strcmp(o->log_target, "stderr") && strcmp(o->log_target, "syslog"))
		return nf_log_invalid("log-target '%s' is not stderr or syslog", o->log_target);
	nf_method m;
	if (nf_method_parse(o->method, &m) < 0)
		return nf_log_invalid("method '%s' is not auto, migrate_pages or move_pages",
				      o->method);
	if (strcmp(o->kube_events, "auto") && strcmp(o->kube_events, "on") &&
	    strcmp(o->kube_events, "off"))
		return nf_log_invalid("kube-events '%s' is not auto, on or off", o->kube_events);
	return 0;
}

/* ---- self-check ---- */

static json_object *nodes_json(const nf_nodeset *online, const nf_nodeset *mem)
{
	json_object *arr = json_object_new_array();
	for (int n = 0; arr && n <= numa_max_node() && n < NF_MAX_NODES; n++) {
		char path[80];
		_cleanup_free_ char *cpus = NULL;
		long long free_b, size = numa_node_size64(n, &free_b);
		json_object *o = json_object_new_object();
		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			return NULL; /* out of memory: the member is null */
		}
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", n);
		nf_read_line(path, &cpus);
		json_object_object_add(o, "node", json_object_new_int(n));
		json_object_object_add(o, "online",
				       json_object_new_boolean(nf_nodeset_has(online, n)));
		json_object_object_add(o, "has_memory",
				       json_object_new_boolean(nf_nodeset_has(mem, n)));
		json_object_object_add(o, "memory_bytes",
				       json_object_new_int64(size > 0 ? size : 0));
		json_object_object_add(o, "cpus", json_object_new_string(cpus ? cpus : ""));
	}
	return arr;
}

static void warn(json_object *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(json_object *warnings, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nf_log(LOG_WARNING, "self-check: %s", msg);
	json_object *s = json_object_new_string(msg);
	if (!s || json_object_array_add(warnings, s) < 0)
		json_object_put(s);
}

static json_object *self_check(nf_agent *a)
{
	json_object *o = json_object_new_object(), *warnings = json_object_new_array();
	nf_nodeset online = {0}, mem = {0}, self = {0}, missing;
	if (!o || !warnings) { /* out of memory at start: /v1/status says null */
		json_object_put(o);
		json_object_put(warnings);
		return NULL;
	}
	_cleanup_free_ char *line = NULL, *scope = NULL;
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN], b3[NF_NODESET_STRLEN];
	if (nf_read_line("/sys/devices/system/node/online", &line) == 0)
		nf_nodeset_parse(line, &online);
	nf_memory_nodes(&mem);
	nf_self_mems(&self);
	bool nice = nf_self_capable(CAP_SYS_NICE), ptrace = nf_self_capable(CAP_SYS_PTRACE);
	nf_read_line("/proc/sys/kernel/yama/ptrace_scope", &scope);
	nf_nodeset_minus(&mem, &self, &missing);
	nf_agent_stats st;
	nf_agent_stats_get(a, &st);
	const nf_hierarchy *h = st.h;

	json_object_object_add(o, "cgroup_mode", json_object_new_string(nf_hierarchy_name(h)));
	json_object_object_add(o, "cgroup_mount", json_object_new_string(h->mount));
	json_object_object_add(o, "nodes", nodes_json(&online, &mem));
	json_object_object_add(o, "cap_sys_nice", json_object_new_boolean(nice));
	json_object_object_add(o, "cap_sys_ptrace", json_object_new_boolean(ptrace));
	json_object_object_add(o, "ptrace_scope", scope ? json_object_new_string(scope) : NULL);
	json_object_object_add(o, "own_mems",
			       json_object_new_string(nf_nodeset_format(&self, b1, sizeof(b1))));
	json_object_object_add(o, "own_mems_cover_all",
			       json_object_new_boolean(nf_nodeset_empty(&missing)));
	nf_log(LOG_INFO,
	       "self-check: cgroup %s at '%s'; nodes online %s, with memory %s; own mems %s; "
	       "CAP_SYS_NICE %s, CAP_SYS_PTRACE %s",
	       nf_hierarchy_name(h), h->mount, nf_nodeset_format(&online, b1, sizeof(b1)),
	       nf_nodeset_format(&mem, b2, sizeof(b2)), nf_nodeset_format(&self, b3, sizeof(b3)),
	       nice ? "yes" : "no", ptrace ? "yes" : "no");
	if (!nf_nodeset_empty(&missing))
		warn(warnings,
		     "the agent's own cpuset excludes node %s: the kernel silently drops "
		     "migrations to it; run the agent in a cpuset that spans every node",
		     nf_nodeset_format(&missing, b1, sizeof(b1)));
	if (!nice)
		warn(warnings, "no CAP_SYS_NICE: pages shared between processes will not move");
	if (!ptrace)
		warn(warnings, "no CAP_SYS_PTRACE: other users' processes cannot be migrated");
	if (nf_nodeset_count(&mem) < 2)
		warn(warnings, "only %u node with memory: there is nothing to move between",
		     nf_nodeset_count(&mem));
	json_object_object_add(o, "warnings", warnings);
	return o;
}

/* ---- running ---- */

/* systemd's readiness protocol, without libsystemd. */
static void sd_notify(const char *msg)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = p ? strlen(p) : 0;
	if (!p || (p[0] != '/' && p[0] != '@') || n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, p, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		       offsetof(struct sockaddr_un, sun_path) + n);
}

static int read_token(const char *path, char **ret)
{
	struct stat st;
	int r = nf_read_line(path, ret);
	if (r < 0)
		return nf_log_errno(LOG_ERR, r, "token file '%s'", path);
	if (!**ret)
		return nf_log_invalid("token file '%s' is empty", path);
	if (stat(path, &st) == 0 && (st.st_mode & 0077))
		nf_log(LOG_WARNING, "token file '%s' is readable by others than its owner", path);
	return 0;
}

static void arm(int tfd, uint64_t seconds)
{
	struct itimerspec its = {.it_value = {.tv_sec = seconds},
				 .it_interval = {.tv_sec = seconds}};
	timerfd_settime(tfd, 0, &its, NULL);
}

static void apply_logging(const options *o)
{
	nf_log_setup(o->log_level, strcmp(o->log_target, "syslog") == 0, "numafollowd");
}

static bool same_option(const options *x, const options *y, const option_def *d)
{
	if (!d->str_off)
		return *(const uint64_t *)((const char *)x + d->num_off) ==
		       *(const uint64_t *)((const char *)y + d->num_off);
	const char *a = *(char *const *)((const char *)x + d->str_off),
		   *b = *(char *const *)((const char *)y + d->str_off);
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The migrations' settings (checked by load_options). */
static nf_agent_tuning tuning(const options *o)
{
	nf_agent_tuning t = {.retries = o->retries,
			     .threads = o->threads,
			     .max_rate = o->max_rate << 20,
			     .budget_ms = o->budget_ms,
			     .assist = o->assist};
	nf_method_parse(o->method, &t.method);
	return t;
}

/* SIGHUP: what can change without a restart changes; the rest is named. */
static void reload(int argc, char **argv, options *o, nf_agent *a, int tfd)
{
	options n;
	sd_notify("RELOADING=1");
	if (load_options(argc, argv, &n) < 0) {
		nf_log(LOG_ERR, "reload: the config has errors (above); keeping the old one");
		options_free(&n);
		sd_notify("READY=1");
		return;
	}
	apply_logging(&n);
	arm(tfd, n.reconcile_s);
	nf_agent_tuning t = tuning(&n);
	nf_agent_set_tuning(a, &t);
	for (size_t i = 0; i < NF_ARRAY_SIZE(defs); i++)
		if (!defs[i].live && !same_option(o, &n, &defs[i]))
			nf_log(LOG_WARNING, "reload: %s changed; it takes a restart", defs[i].name);
	nf_log(LOG_INFO,
	       "reloaded the config: log level, reconcile interval %llu s, retries %llu, method "
	       "%s, threads %llu, max-rate %llu MiB/s, budget %llu ms, assist %s",
	       (unsigned long long)n.reconcile_s, (unsigned long long)n.retries, n.method,
	       (unsigned long long)n.threads, (unsigned long long)n.max_rate,
	       (unsigned long long)n.budget_ms, n.assist ? "on" : "off");
	options_free(o);
	*o = n;
	sd_notify("READY=1");
}

/* Kubernetes Events: in a cluster's pod (auto) or when asked (on), whose
 * missing credentials then stop the start. *RET stays NULL when off. */
static int start_kevents(const options *o, nf_kevents **ret)
{
	bool on = strcmp(o->kube_events, "on") == 0;
	const char *msg = "";
	if (strcmp(o->kube_events, "off") == 0)
		return nf_log(LOG_INFO, "kube events: off (kube-events = off)"), 0;
	if (!on && !nf_kevents_in_cluster(o->kube_sa_dir))
		return nf_log(
			   LOG_INFO,
			   "kube events: off: not in a cluster's pod (no KUBERNETES_SERVICE_HOST "
			   "or no token in '%s')",
			   o->kube_sa_dir),
		       0;
	nf_kevents_config kc = {.sa_dir = o->kube_sa_dir,
				.host = getenv("KUBERNETES_SERVICE_HOST"),
				.port = getenv("KUBERNETES_SERVICE_PORT"),
				.node = getenv("NODE_NAME"),
				.queue_max = o->kube_queue};
	int r = nf_kevents_start(&kc, ret, &msg);
	if (r == 0) {
		nf_log(LOG_INFO, "kube events: on, to %s with the service account in '%s'",
		       nf_kevents_server(*ret), o->kube_sa_dir);
		return 0;
	}
	nf_log(on ? LOG_ERR : LOG_WARNING, "kube events: %s ('%s'): %s%s", msg, o->kube_sa_dir,
	       strerror(-r), on ? "" : "; events off");
	return on ? r : 0;
}

static int loop(int argc, char **argv, options *o, nf_agent *a, int sfd, int tfd)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	int fds[] = {nf_agent_fd(a), sfd, tfd};
	for (size_t i = 0; i < NF_ARRAY_SIZE(fds); i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return nf_log_errno(LOG_ERR, -errno, "epoll");
	}
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, NF_ARRAY_SIZE(evs), -1);
		if (n < 0 && errno != EINTR)
			return nf_log_errno(LOG_ERR, -errno, "epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == nf_agent_fd(a)) {
				nf_agent_read_events(a);
			} else if (fd == tfd) {
				uint64_t ticks;
				if (read(tfd, &ticks, sizeof(ticks)) < 0)
					continue;
				nf_agent_reconcile(a);
			} else {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					reload(argc, argv, o, a, tfd);
					continue;
				}
				nf_log(LOG_INFO, "%s: stopping after running migrations finish",
				       strsignal(si.ssi_signo));
				return 0;
			}
		}
	}
}

static int run(int argc, char **argv, options *o)
{
	nf_agent *a = NULL;
	nf_api *api = NULL;
	nf_kevents *kev = NULL;
	nf_stream *stream = NULL;
	_cleanup_free_ char *token = NULL;
	_cleanup_close_ int sfd = -1, tfd = -1;
	sigset_t mask;
	int code = NF_EXIT_SYSTEM;

	/* Before any thread starts, so that all of them inherit the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (numa_available() < 0) {
		nf_log(LOG_ERR, "this kernel has no NUMA support (numa_available)");
		return NF_EXIT_SYSTEM;
	}
	if (o->token_file && read_token(o->token_file, &token) < 0)
		return NF_EXIT_USAGE;
	nf_agent_config ac = {.state_dir = o->state_dir,
			      .cgroup_root = o->cgroup_root,
			      .docker_socket = o->docker_socket,
			      .workers = o->workers,
			      .tuning = tuning(o),
			      .history = o->history,
			      .journal_max = o->journal_kib * 1024};
	nf_api_config pc = {.socket_path = o->socket,
			    .socket_group = o->socket_group,
			    .listen = o->listen,
			    .token = token};
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (sfd < 0 || tfd < 0) {
		nf_log(LOG_ERR, "signalfd/timerfd: %m");
		return NF_EXIT_SYSTEM;
	}
	/* libcurl, before any thread: dockerd's names, Kubernetes events */
	if (nf_http_setup(true) < 0)
		return NF_EXIT_SYSTEM;
	if (start_kevents(o, &kev) < 0) {
		nf_http_teardown();
		return NF_EXIT_SYSTEM;
	}
	if (kev) {
		ac.on_done = nf_kevents_record;
		ac.on_done_data = pc.kevents = kev;
	}
	if (nf_stream_new(o->events_queue, NF_STREAM_CLIENTS, &stream) < 0) {
		nf_log(LOG_ERR, "starting the event stream: out of memory");
		goto out;
	}
	ac.stream = pc.stream = stream;
	if (nf_agent_new(&ac, &a) < 0)
		goto out;
	pc.self_check = self_check(a);
	if (nf_api_start(a, &pc, &api) < 0)
		goto out;
	arm(tfd, o->reconcile_s);
	sd_notify("READY=1");
	nf_log(LOG_INFO, "ready: %llu workers, reconcile every %llu s",
	       (unsigned long long)o->workers, (unsigned long long)o->reconcile_s);
	code = loop(argc, argv, o, a, sfd, tfd) < 0 ? NF_EXIT_SYSTEM : 0;
	sd_notify("STOPPING=1");
out:
	nf_api_stop(api);
	nf_agent_free(a);	/* its workers gone, no more events come */
	nf_stream_free(stream); /* its clients left with the API */
	nf_kevents_stop(kev);
	nf_http_teardown();
	json_object_put(pc.self_check);
	if (code == 0)
		nf_log(LOG_INFO, "stopped");
	return code;
}

int main(int argc, char **argv)
{
	options o;
	if (load_options(argc, argv, &o) < 0) {
		options_free(&o);
		return NF_EXIT_USAGE;
	}
	apply_logging(&o);
	int code = run(argc, argv, &o);
	options_free(&o);
	return code;
}
