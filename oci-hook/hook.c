/* numafollow-hook: the OCI hook. At create it registers the container with
 * numafollowd (or, when no agent listens, moves the container's memory to its
 * effective mems itself); at poststart it updates the registration; at
 * poststop it removes it. A runtime kills the container when a hook fails or
 * times out, so the hook fails open: exit 0 whatever happens, within a time
 * budget, unless strict mode asks for failures to count. */
#include "oci.h"
#include "../cgroup/cgroup.h"
#include "../cgroup/util.h"
#include "../plugin/lib/engine.h"
#include "../plugin/lib/http.h"
#include "../plugin/lib/json.h"
#include "../plugin/lib/log.h"
#include "../plugin/lib/nf.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_CONFIG "/etc/numafollow/hook.conf"

static const char usage[] =
    "Usage: numafollow-hook [OPTIONS] [STAGE] < STATE\n"
    "\n"
    "The numafollow OCI hook. A runtime runs it with the container's state JSON on\n"
    "stdin. STAGE is prestart, createRuntime, createContainer, startContainer,\n"
    "poststart or poststop; without it, the 'stage' environment variable, else the\n"
    "state's status (creating/created: createRuntime, running: poststart, stopped:\n"
    "poststop), which is how one hooks.d file serves three stages.\n"
    "\n"
    "  createRuntime, prestart, createContainer, startContainer\n"
    "      find the container's cgroup (/proc/PID/cgroup), read BUNDLE/config.json\n"
    "      and register the container with numafollowd; when no agent listens,\n"
    "      move the memory of the cgroup's other processes to its effective mems\n"
    "      here (standalone; the container's own process has not run yet)\n"
    "  poststart   tell the agent the container runs\n"
    "  poststop    unregister the container\n"
    "\n"
    "Options:\n"
    "  --config PATH     settings file (default " DEFAULT_CONFIG ")\n"
    "  --socket PATH     the agent's socket (default " NF_DEFAULT_SOCKET ")\n"
    "  --budget-ms N     finish within N ms, migration included (default 2000)\n"
    "  --strict          exit 2 when the hook could not do its job\n"
    "  --verbose         log to stderr too (the log goes to syslog)\n"
    "  -h, --help        this text\n"
    "  -V, --version     the version\n"
    "\n"
    "Settings file lines are 'name = value': enabled, strict, standalone, budget-ms,\n"
    "max-rate (MiB/s of the standalone migration), socket. Annotations:\n"
    "numafollow.io/migrate=false opts a container out (it is registered but its\n"
    "memory is not moved); numafollow.io/strict=true makes its failures exit 2.\n"
    "\n"
    "Exit status: 0, even when something failed (a failing hook kills the\n"
    "container); 2 in strict mode when something failed. Nothing is written to\n"
    "stdout.\n";

typedef struct {
	nf_stage stage;
	bool stage_known; /* else inferred from the state's status (hooks.d files) */
	bool verbose, strict_arg;
	const char *config_path, *socket_arg, *budget_arg;
	nf_hook_conf conf;
	nf_oci_state st;
	nf_oci_config cfg;
	json_object *ann; /* the state's annotations, else config.json's */
	uint64_t start_ns, deadline_ns;
} hook;

/* The watchdog's state lives at file scope because a signal handler reaches
 * it: the first SIGALRM (at 90% of the budget) ends a blocked read; the second
 * (at 100%) ends the process whatever it is doing, after sending the line that
 * says so. syslog(3) is not async-signal-safe, so that line is formatted ahead
 * (two buffers: the handler reads the one not being written) and sent with
 * send(2) on a datagram socket of our own to /dev/log. */
static volatile sig_atomic_t budget_spent, alarms, exit_on_timeout;
static struct {
	int fd;
	char msg[2][640];
	volatile sig_atomic_t cur, len[2];
} last_word = {.fd = -1};

static void on_alarm(int sig)
{
	(void)sig;
	budget_spent = true;
	if (++alarms < 2)
		return;
	int i = last_word.cur;
	if (last_word.fd >= 0 && last_word.len[i] > 0)
		send(last_word.fd, last_word.msg[i], last_word.len[i], MSG_DONTWAIT | MSG_NOSIGNAL);
	_exit(exit_on_timeout);
}

static void last_word_open(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	last_word.fd = fd;
}

/* Arms the watchdog for LEFT_MS from now. */
static void arm_watchdog(unsigned left_ms)
{
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: a blocked read returns */
	sigset_t alrm;
	sigaction(SIGALRM, &sa, NULL);
	/* A runtime may start hooks with signals blocked; the watchdog needs this one. */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	unsigned first = left_ms * 9 / 10, rest = left_ms - first;
	struct itimerval it = {
	    .it_value = {.tv_sec = first / 1000, .tv_usec = first % 1000 * 1000 + !first},
	    .it_interval = {.tv_sec = rest / 1000, .tv_usec = rest % 1000 * 1000 + !rest},
	};
	setitimer(ITIMER_REAL, &it, NULL);
}

static const char *hook_id(const hook *h)
{
	return h->st.id ? h->st.id : "(unknown)";
}

static const char *hook_stage(const hook *h)
{
	return h->stage_known ? nf_stage_name(h->stage) : "(stage unknown)";
}

/* Every line says which container and stage: "container ID: STAGE: ...". The
 * ID goes in as an argument, never into the format: it is the runtime's text. */
#define hlog(h, level, fmt, ...)                                                                   \
	nf_log(level, "container %s: %s: " fmt, hook_id(h), hook_stage(h), ##__VA_ARGS__)

/* What the watchdog will log if it has to end the hook: where it was, WHAT. */
static void last_word_set(const hook *h, const char *what)
{
	int i = !last_word.cur;
	int n = snprintf(last_word.msg[i], sizeof(last_word.msg[i]),
			 "<%d>numafollow-hook[%d]: container %s: %s: the %u ms budget ran out %s; "
			 "the watchdog ends the hook (exit %d)",
			 LOG_DAEMON | LOG_WARNING, (int)getpid(), hook_id(h), hook_stage(h),
			 h->conf.budget_ms ? h->conf.budget_ms : NF_HOOK_BUDGET_MS, what,
			 (int)exit_on_timeout);
	last_word.len[i] = n < 0			       ? 0
			   : n < (int)sizeof(last_word.msg[i]) ? n
							       : (int)sizeof(last_word.msg[i]) - 1;
	last_word.cur = i;
}

/* The exit status a failure deserves: 2 in strict mode, else 0. */
static int failure_exit(const hook *h)
{
	bool strict =
	    h->conf.strict || h->strict_arg ||
	    nf_json_flag(h->ann ? h->ann : h->st.annotations, "numafollow.io/strict", true);
	return strict ? NF_EXIT_STRICT : 0;
}

/* Logs a failure; evaluates to the exit status it deserves. (failure_exit()
 * only looks up annotations: errno survives for a %m in FMT.) */
#define fail(h, fmt, ...)                                                                          \
	(hlog(h, LOG_ERR, fmt "%s", ##__VA_ARGS__,                                                 \
	      failure_exit(h) ? " (strict: failing the container)" : ""),                          \
	 failure_exit(h))

/* MSG, the reason a callee gave, or what R says when there was no memory for it. */
static const char *reason(const char *msg, int r)
{
	return msg ? msg : strerror(-r);
}

static unsigned remaining_ms(const hook *h)
{
	uint64_t now = nf_now_ns();
	return now < h->deadline_ns ? (h->deadline_ns - now) / 1000000 : 0;
}

/* stdin, up to one byte more than a state may have. */
static int read_state(char **ret, size_t *ret_len)
{
	size_t cap = NF_OCI_STATE_MAX + 1, len = 0;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	while (len < cap) {
		ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
		if (n == 0)
			break;
		if (n < 0 && (errno != EINTR || budget_spent))
			return -errno;
		len += n > 0 ? n : 0;
	}
	buf[len] = '\0';
	*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* The settings file, then the command line. */
static int load_conf(hook *h, char **ret_msg)
{
	_cleanup_free_ char *text = NULL, *msg = NULL;
	const char *path = h->config_path ? h->config_path : DEFAULT_CONFIG;
	int r = nf_hook_conf_default(&h->conf);
	if (r < 0)
		return nf_oci_fail(r, ret_msg, "out of memory");
	r = nf_read_file(path, &text, NULL);
	if (r == -ENOENT && !h->config_path) /* no settings file: the defaults */
		r = 0;
	else if (r < 0)
		r = nf_oci_fail(r, ret_msg, "'%s': %s", path, strerror(-r));
	else if ((r = nf_hook_conf_parse(text, &h->conf, &msg)) < 0)
		r = nf_oci_fail(r, ret_msg, "'%s' %s", path, reason(msg, r));
	if (r < 0) { /* --budget-ms still bounds the way out (main() checked it) */
		if (h->budget_arg)
			nf_hook_budget_parse(h->budget_arg, &h->conf.budget_ms);
		return r;
	}
	if (h->socket_arg && (r = nf_hook_conf_set(&h->conf, "socket", h->socket_arg, &msg)) < 0)
		return nf_oci_fail(r, ret_msg, "--socket: %s", reason(msg, r));
	if (h->budget_arg && (r = nf_hook_conf_set(&h->conf, "budget-ms", h->budget_arg, &msg)) < 0)
		return nf_oci_fail(r, ret_msg, "--budget-ms: %s", reason(msg, r));
	return 0;
}

/* BUNDLE/config.json; the state's annotations win over the config's (they
 * are the same when both are there). */
static int load_bundle(hook *h, char **ret_msg)
{
	_cleanup_free_ char *path = NULL, *text = NULL, *msg = NULL;
	size_t len;
	if (asprintf(&path, "%s/config.json", h->st.bundle) < 0)
		return nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
	int r = nf_read_file_max(path, NF_OCI_CONFIG_MAX, &text, &len);
	if (r == -EFBIG)
		return nf_oci_fail(r, ret_msg, "'%s' is larger than %d MiB", path,
				   NF_OCI_CONFIG_MAX >> 20);
	if (r < 0)
		return nf_oci_fail(r, ret_msg, "cannot read '%s': %s", path, strerror(-r));
	if ((r = nf_oci_config_parse(text, len, &h->cfg, &msg)) < 0)
		return nf_oci_fail(r, ret_msg, "'%s': %s", path, reason(msg, r));
	h->ann =
	    json_object_object_length(h->st.annotations) ? h->st.annotations : h->cfg.annotations;
	return 0;
}

/* The container's cpuset cgroup, as the kernel says (/proc/PID/cgroup). */
static int find_cgroup(const hook *h, nf_hierarchy *hier, nf_cgroup *ret, char **ret_msg)
{
	_cleanup_free_ char *rel = NULL;
	pid_t pid = h->st.pid;
	int r = nf_hierarchy_detect(hier);
	if (r < 0)
		return nf_oci_fail(r, ret_msg,
				   "no cpuset cgroup hierarchy is mounted where the hook runs (%s)",
				   strerror(-r));
	if ((r = nf_pid_cgroup(pid, hier->version, &rel)) < 0)
		return nf_oci_fail(r, ret_msg, "pid %d: %s", pid,
				   r == -ESRCH	  ? "no such process"
				   : r == -ENOENT ? "no cpuset cgroup in /proc/PID/cgroup"
						  : strerror(-r));
	if ((r = nf_cgroup_open(hier, rel, ret)) < 0)
		return nf_oci_fail(r, ret_msg, "pid %d's cgroup '%s' %s", pid, rel,
				   r == -EXDEV ? "is outside the cgroup hierarchy (another cgroup "
						 "namespace?)"
					       : strerror(-r));
	if (strcmp(ret->rel, "/") == 0) {
		nf_cgroup_done(ret);
		return nf_oci_fail(-EINVAL, ret_msg,
				   "pid %d is in the root cgroup: refusing to treat the whole "
				   "machine as one container",
				   pid);
	}
	return 0;
}

/* A unix socket's connect(2) fails at once when nobody listens; one that
 * waits means a busy agent, so it shares the request's timeout. */
static nf_http_peer peer(const hook *h)
{
	long total = remaining_ms(h) * 3 / 4;
	total = total > 1 ? total : 1;
	return (nf_http_peer){.socket = h->conf.socket, .connect_ms = total, .total_ms = total};
}

/* The agent's "error" member, or a placeholder. */
static const char *agent_error(const nf_http_reply *r, json_object **keep)
{
	json_object *e;
	*keep = r->body ? json_tokener_parse(r->body) : NULL;
	return *keep && json_object_object_get_ex(*keep, "error", &e) ? json_object_get_string(e)
								      : "no message";
}

/* The child's half of standalone(): migrate, log, exit with the hook's code. */
static int migrate_here(const hook *h, const nf_cgroup *cg, const nf_nodeset *to,
			const char *why_alone)
{
	char nodes[NF_NODESET_STRLEN];
	nf_migration m;
	nf_migrate_opts o = {.to = *to,
			     .retries = 1,
			     .backoff_ms = 10,
			     .skip = h->st.pid,
			     .max_rate = h->conf.max_rate};
	int r = nf_migrate(cg, &o, &m);
	if (r < 0)
		return fail(h, "agent unreachable (%s); standalone migration of '%s' failed: %s",
			    why_alone, cg->rel, strerror(-r));
	hlog(h, m.residual_bytes || m.tasks_failed ? LOG_WARNING : LOG_INFO,
	     "agent unreachable (%s); standalone: cgroup '%s', %zu task(s) to nodes %s: moved "
	     "%.1f MiB, %.1f MiB left, %zu task(s) failed, %u sweep(s), %llu ms",
	     why_alone, cg->rel, m.tasks, nf_nodeset_format(to, nodes, sizeof(nodes)),
	     m.moved_bytes / 1048576.0, m.residual_bytes / 1048576.0, m.tasks_failed, m.sweeps,
	     (unsigned long long)(m.duration_ns / 1000000));
	nf_migration_done(&m);
	return 0;
}

/* Moves the memory of the cgroup's other processes to its effective mems.
 * Not the container's own: before its exec it is the runtime's process, whose
 * memory the exec drops, and which maps the host's libraries (as root,
 * migrate_pages(2) moves shared pages too); what the container allocates
 * follows its mems anyway. The work runs in a child: one migrate_pages(2)
 * call cannot be interrupted, and a large or slow one must not hold up the
 * start. The hook waits for it until 90% of its budget, then leaves it to
 * finish in the background and log its own result. The child lets go of the
 * runtime's pipes (runc waits for them to close), keeping stderr only with
 * --verbose. */
static int standalone(hook *h, const nf_cgroup *cg, const nf_nodeset *eff, const char *why_alone)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int st;
	if (nf_nodeset_empty(eff))
		return fail(h, "agent unreachable (%s); cgroup '%s' has no effective mems",
			    why_alone, cg->rel);
	int r = nf_cgroup_tasks(cg, true, &pids, &n);
	if (r < 0)
		return fail(h, "agent unreachable (%s); cannot list the tasks of '%s': %s",
			    why_alone, cg->rel, strerror(-r));
	if (n == 0 || (n == 1 && pids[0] == h->st.pid)) {
		hlog(h, LOG_INFO,
		     "agent unreachable (%s); standalone: cgroup '%s' holds only the container's "
		     "process, which has not run yet: nothing to move (what it allocates follows "
		     "the mems)",
		     why_alone, cg->rel);
		return 0;
	}
	last_word_set(h, "before the standalone migration started");
	pid_t child = fork();
	if (child < 0)
		return fail(h, "agent unreachable (%s); cannot fork the standalone migration: %m",
			    why_alone);
	if (child == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int fd = 0; null >= 0 && fd <= (h->verbose ? 1 : 2); fd++)
			dup2(null, fd);
		closelog(); /* the log's socket too: glibc reopens it for the child's line */
		close_range(3, ~0U, 0);	  /* and any other descriptor a runtime passed */
		signal(SIGALRM, SIG_DFL); /* a child stuck for a minute dies */
		alarm(60);
		_exit(migrate_here(h, cg, eff, why_alone));
	}
	char what[96];
	snprintf(what, sizeof(what),
		 "waiting for the standalone migration: it goes on in the background as pid %d",
		 child);
	last_word_set(h, what);
	/* Polled, so that the wait ends on time even without the watchdog's signal. */
	uint64_t until = h->deadline_ns - h->conf.budget_ms * UINT64_C(100000);
	while ((r = waitpid(child, &st, WNOHANG)) == 0 && nf_now_ns() < until)
		nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000}, NULL);
	if (r < 0 && errno != EINTR)
		return fail(h, "waiting for the standalone migration (pid %d): %m", child);
	if (r <= 0) {
		hlog(h, LOG_WARNING,
		     "agent unreachable (%s); the standalone migration of '%s' outlasts 90%% of "
		     "the %u ms budget: it goes on in the background as pid %d",
		     why_alone, cg->rel, h->conf.budget_ms, child);
		return 0;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : fail(h, "the standalone migration was killed");
}

/* The registration's body, or NULL when json-c is out of memory. */
static json_object *registration(const hook *h)
{
	json_object *o = json_object_new_object();
	const char *status = h->stage == NF_STAGE_POSTSTART ? "running" : h->st.status;
	bool ok = o && nf_json_add(o, "id", json_object_new_string(h->st.id)) &&
		  nf_json_add(o, "pid", json_object_new_int(h->st.pid)) &&
		  nf_json_add(o, "bundle", json_object_new_string(h->st.bundle)) &&
		  (!status || nf_json_add(o, "status", json_object_new_string(status))) &&
		  (h->ann ? nf_json_add(o, "annotations", json_object_get(h->ann))
			  : json_object_object_add(o, "annotations", NULL) == 0);
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

/* Every stage but poststop: register (or update), else place the memory here. */
static int place(hook *h)
{
	nf_hierarchy hier = {0};
	nf_cgroup cg = {0};
	nf_http_reply rep;
	_cleanup_free_ char *msg = NULL;
	char why_alone[512];
	int code = 0, r = load_bundle(h, &msg);
	if (r < 0)
		return fail(h, "%s", reason(msg, r));
	exit_on_timeout = failure_exit(h);
	bool moves = !nf_json_flag(h->ann, "numafollow.io/migrate", false);
	if ((r = find_cgroup(h, &hier, &cg, &msg)) < 0) {
		nf_hierarchy_done(&hier);
		return fail(h, "%s", reason(msg, r));
	}
	nf_nodeset eff = {0};
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	int mems_r = nf_cgroup_read_mems(&cg, NULL, &eff);
	if (mems_r == 0 && h->cfg.has_mems && !nf_nodeset_equal(&eff, &h->cfg.mems))
		hlog(h, LOG_NOTICE,
		     "config.json asks for mems %s; cgroup '%s' has %s in effect (an ancestor's "
		     "cpuset narrows it?)",
		     nf_nodeset_format(&h->cfg.mems, b1, sizeof(b1)), cg.rel,
		     nf_nodeset_format(&eff, b2, sizeof(b2)));
	_cleanup_json_ json_object *body = registration(h);
	const char *text = body ? json_object_to_json_string(body) : NULL;
	if (!text) {
		nf_cgroup_done(&cg);
		nf_hierarchy_done(&hier);
		return fail(h, "out of memory for the registration's body");
	}
	nf_http_peer p = peer(h);
	last_word_set(h, "waiting for the agent");
	r = nf_http(&p, "POST", "/v1/containers", text, &rep);
	if (r == 0 && (rep.status == 200 || rep.status == 201)) {
		hlog(h, LOG_INFO, "%s with the agent: cgroup '%s'%s",
		     rep.status == 201 ? "registered" : "registration updated", cg.rel,
		     moves ? "" : " (numafollow.io/migrate=false: the agent will not move it)");
	} else if (r == 0) {
		json_object *keep;
		code = fail(h, "the agent refused the registration (HTTP %ld): %s", rep.status,
			    agent_error(&rep, &keep));
		json_object_put(keep);
	} else if (r == -ECONNREFUSED && h->conf.standalone && moves &&
		   h->stage != NF_STAGE_POSTSTART) {
		snprintf(why_alone, sizeof(why_alone), "'%s': %s", h->conf.socket, rep.error);
		code = mems_r < 0
			   ? fail(h,
				  "agent unreachable (%s); cannot read the effective mems of "
				  "'%s': %s",
				  why_alone, cg.rel, strerror(-mems_r))
			   : standalone(h, &cg, &eff, why_alone);
	} else if (r == -ECONNREFUSED) {
		hlog(h, LOG_INFO, "agent unreachable at '%s' (%s); %s", h->conf.socket, rep.error,
		     !moves			      ? "numafollow.io/migrate=false"
		     : h->stage == NF_STAGE_POSTSTART ? "nothing to do (standalone mode moves "
							"memory at create)"
						      : "standalone mode is off");
	} else {
		code = fail(h, "the agent at '%s' did not answer: %s", h->conf.socket, rep.error);
	}
	nf_http_reply_done(&rep);
	nf_cgroup_done(&cg);
	nf_hierarchy_done(&hier);
	return code;
}

/* Never fails the stop: a runtime only warns about it, and nothing is left to save. */
static int poststop(hook *h)
{
	_cleanup_free_ char *id = nf_http_escape(h->st.id), *path = NULL;
	nf_http_reply rep;
	if (!id || asprintf(&path, "/v1/containers/%s", id) < 0)
		return hlog(h, LOG_ERR, "out of memory"), 0;
	nf_http_peer p = peer(h);
	last_word_set(h, "waiting for the agent");
	int r = nf_http(&p, "DELETE", path, NULL, &rep);
	if (r == 0 && rep.status == 200)
		hlog(h, LOG_INFO, "unregistered from the agent");
	else if (r == 0 && rep.status == 404)
		hlog(h, LOG_INFO, "the agent no longer knew it (its cgroup is gone)");
	else if (r == 0)
		hlog(h, LOG_WARNING, "the agent answered %ld to the unregistration", rep.status);
	else
		hlog(h, r == -ECONNREFUSED ? LOG_INFO : LOG_WARNING,
		     "agent unreachable at '%s': %s", h->conf.socket, rep.error);
	nf_http_reply_done(&rep);
	return 0;
}

static int run(hook *h)
{
	_cleanup_free_ char *text = NULL, *conf_msg = NULL, *msg = NULL;
	size_t len = 0;
	int conf_r = load_conf(h, &conf_msg);
	exit_on_timeout = failure_exit(h);
	/* The budget counts from the start; main() armed the default one. */
	h->deadline_ns = h->start_ns + h->conf.budget_ms * UINT64_C(1000000);
	last_word_set(h, "reading the state on stdin");
	arm_watchdog(remaining_ms(h));
	/* Read the state even when doing nothing: a runtime writing it must not see
	 * EPIPE. Parse it too: the log names the container. */
	int read_r = read_state(&text, &len);
	int r = read_r < 0 ? read_r : nf_oci_state_parse(text, len, &h->st, &msg);
	if (conf_r < 0)
		return fail(h, "settings %s; doing nothing", reason(conf_msg, conf_r));
	if (!h->conf.enabled)
		return 0;
	if (read_r < 0)
		return fail(h, "cannot read the state on stdin: %s", strerror(-read_r));
	if (r < 0)
		return fail(h, "malformed state on stdin: %s", reason(msg, r));
	if (!h->stage_known && nf_stage_from_status(h->st.status, &h->stage) < 0)
		return fail(h,
			    "no STAGE argument or 'stage' variable, and status '%s' does not tell "
			    "the stage",
			    h->st.status ? h->st.status : "(none)");
	h->stage_known = true;
	last_word_set(h, "reading the bundle and the cgroup");
	if ((r = nf_oci_state_check(&h->st, h->stage, &msg)) < 0)
		return fail(h, "malformed state on stdin: %s", reason(msg, r));
	if (h->stage == NF_STAGE_POSTSTOP)
		return poststop(h);
	exit_on_timeout = failure_exit(h);
	return place(h);
}

/* Bad usage fails open too: a typo in a hook's args must not stop every container. */
static int usage_error(const hook *h, const char *what, const char *arg)
{
	fprintf(stderr, "numafollow-hook: %s '%s'; try 'numafollow-hook --help'\n", what, arg);
	nf_log(LOG_ERR, "bad usage: %s '%s'", what, arg);
	return h->strict_arg ? NF_EXIT_STRICT : 0;
}

/* 0 to go on, 1 when it printed the help or the version, -EINVAL on bad usage. */
static int parse_args(int argc, char **argv, hook *h)
{
	static const struct option longs[] = {
	    {"config", required_argument, NULL, 'c'},	 {"socket", required_argument, NULL, 's'},
	    {"budget-ms", required_argument, NULL, 'b'}, {"strict", no_argument, NULL, 'S'},
	    {"verbose", no_argument, NULL, 'v'},	 {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},	 {0},
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", longs, NULL)) != -1) {
		switch (c) {
		case 'c':
			h->config_path = optarg;
			break;
		case 's':
			h->socket_arg = optarg;
			break;
		case 'b':
			h->budget_arg = optarg;
			break;
		case 'S':
			h->strict_arg = true;
			break;
		case 'v':
			h->verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		case 'V':
			puts("numafollow-hook " NF_VERSION);
			return 1;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	hook h = {.start_ns = nf_now_ns()};
	arm_watchdog(NF_HOOK_BUDGET_MS); /* before anything that might wait */
	int r = parse_args(argc, argv, &h);
	if (r > 0)
		return 0;
	unsigned ms;
	/* --budget-ms rules from here (a loaded host once spent the 2 s default
	 * before the settings were read); the settings file re-arms it later. */
	if (h.budget_arg && nf_hook_budget_parse(h.budget_arg, &ms) == 0) {
		uint64_t spent = (nf_now_ns() - h.start_ns) / 1000000;
		arm_watchdog(ms > spent ? ms - spent : 1);
		h.conf.budget_ms = ms; /* for the watchdog's last word until then */
	}
	nf_log_mirror_stderr(h.verbose);
	nf_log_setup(h.verbose ? LOG_DEBUG : LOG_INFO, true, "numafollow-hook");
	last_word_open();
	last_word_set(&h, "at start");
	if (r < 0)
		return usage_error(&h, "unknown option or missing value:", argv[optind - 1]);
	const char *stage = optind < argc ? argv[optind] : getenv("stage");
	if (optind + 1 < argc)
		return usage_error(&h, "unexpected argument", argv[optind + 1]);
	if (stage && nf_stage_parse(stage, &h.stage) < 0)
		return usage_error(&h, "unknown stage", stage);
	h.stage_known = stage != NULL;
	/* Nothing may reach a runtime's stdout; fd 1 stays open (on /dev/null). */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	nf_http_setup(false);
	r = run(&h);
	nf_oci_state_done(&h.st);
	nf_oci_config_done(&h.cfg);
	nf_hook_conf_done(&h.conf);
	nf_http_teardown();
	return r;
}
