/* numafollow-nri's loop and its answers to the runtime (plugin.h). One thread
 * reads and writes the NRI connection and never waits on anything else: each
 * request is answered at once (the runtime closes a plugin that takes over
 * 2 s), registrations go to the agent on agentc.c's thread, re-pins run on
 * their own (repin.c), and what they ask of the runtime (UpdateContainers)
 * comes back here through the outbox, to be sent after the answer that
 * widened the container, never from inside a handler: the runtime holds its
 * lock while it calls plugins. */
#include "plugin.h"
#include "agentc.h"
#include "policy.h"
#include "repin.h"
#include "session.h"
#include "../../cgroup/cgroup.h"
#include "../../cgroup/util.h"
#include "../lib/engine.h"
#include "../lib/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REGISTER_MS    5000  /* the runtime's registration timeout */
#define CALL_MS	       30000 /* UpdateContainers: the runtime applies it, under its lock */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define WIDEN_WAIT_S   60 /* how long a re-pin waits for its post-update */

/* NRI_EVENTS: what the plugin subscribes to. StartContainer (not
 * CreateContainer) registers: the task, and so the pid the agent finds the
 * cgroup by, exists only from there; it comes after runc's create and before
 * the start, as the OCI hook's createRuntime. */
#define NRI_EVENTS                                                                                 \
	(NF_EV_BIT(NF_EV_START_CONTAINER) | NF_EV_BIT(NF_EV_POST_START_CONTAINER) |                \
	 NF_EV_BIT(NF_EV_UPDATE_CONTAINER) | NF_EV_BIT(NF_EV_POST_UPDATE_CONTAINER) |              \
	 NF_EV_BIT(NF_EV_REMOVE_CONTAINER))

/* A narrowing a re-pin thread asks the loop to send. */
typedef struct outcall {
	struct outcall *next;
	char *id;
	nf_nodeset set;
	int result;
	bool done;
} outcall;

typedef enum { ST_DOWN, ST_REGISTERING, ST_READY } conn_state;

typedef struct {
	nf_nri_config cfg;
	nf_session *s;
	conn_state state;
	uint64_t deadline_ns;	  /* registering: when the runtime must have configured us */
	uint64_t next_connect_ns; /* down: when to try again */
	unsigned backoff_ms;
	bool down_logged, stop;
	int wake_fd, sig_fd;
	pthread_mutex_t lock; /* outbox, ready, and each outcall's result */
	pthread_cond_t done;
	outcall *outbox;
	bool ready; /* the state is ST_READY (for the threads) */
	nf_agentq *aq;
	nf_repins *rp;
	nf_nodeset all;
} nri;

/* ---- the outbox: UpdateContainers for the re-pins ---- */

static void complete(nri *n, outcall *c, int result)
{
	pthread_mutex_lock(&n->lock);
	c->result = result;
	c->done = true;
	pthread_cond_broadcast(&n->done);
	pthread_mutex_unlock(&n->lock);
}

static void set_ready(nri *n, bool ready)
{
	pthread_mutex_lock(&n->lock);
	n->ready = ready;
	pthread_mutex_unlock(&n->lock);
}

/* The runtime's answer to UpdateContainers: its "failed" list names the
 * containers it could not update. */
static void on_updated(nf_session *s, int err, const Ttrpc__Response *rsp, void *userdata)
{
	outcall *c = userdata;
	nri *n = nf_session_userdata(s);
	int r = err;
	if (r == 0 && rsp->status && rsp->status->code != NF_GRPC_OK) {
		nf_log(LOG_WARNING, "container %s: UpdateContainers: the runtime answered %d: %s",
		       c->id, rsp->status->code, rsp->status->message);
		r = -EIO;
	} else if (r == 0) {
		Nri__Pkg__Api__V1alpha1__UpdateContainersResponse *u =
		    nri__pkg__api__v1alpha1__update_containers_response__unpack(
			NULL, rsp->payload.len, rsp->payload.data);
		r = !u ? -EPROTO : u->n_failed ? -EIO : 0;
		if (u && u->n_failed)
			nf_log(LOG_WARNING, "container %s: the runtime could not update its mems",
			       c->id);
		nri__pkg__api__v1alpha1__update_containers_response__free_unpacked(u, NULL);
	}
	complete(n, c, r);
}

/* Sends what the threads asked for, or fails it when no runtime listens. */
static void drain_outbox(nri *n)
{
	uint64_t junk;
	if (read(n->wake_fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
		nf_log(LOG_DEBUG, "eventfd: %m");
	pthread_mutex_lock(&n->lock);
	outcall *list = n->outbox;
	n->outbox = NULL;
	pthread_mutex_unlock(&n->lock);
	while (list) {
		outcall *c = list;
		list = c->next;
		nf_pb_update *u =
		    n->state == ST_READY ? nf_nri_mems_update(c->id, &c->set, false) : NULL;
		Nri__Pkg__Api__V1alpha1__UpdateContainersRequest q =
		    NRI__PKG__API__V1ALPHA1__UPDATE_CONTAINERS_REQUEST__INIT;
		q.update = &u;
		q.n_update = 1;
		int r = !u ? (n->state == ST_READY ? -ENOMEM : -ENOTCONN)
			   : nf_session_call(n->s, NF_NRI_SERVICE_RUNTIME, "UpdateContainers",
					     &q.base, CALL_MS, on_updated, c);
		nf_nri_update_free(u);
		if (r < 0)
			complete(n, c, r);
	}
}

/* A re-pin thread's narrowing (nf_narrow_fn): queued for the loop, waited for. */
static int narrow(void *userdata, const char *id, const nf_nodeset *set)
{
	nri *n = userdata;
	outcall *c = calloc(1, sizeof(*c));
	if (!c || !(c->id = strdup(id)))
		return free(c), -ENOMEM;
	c->set = *set;
	pthread_mutex_lock(&n->lock);
	int r = n->ready ? 0 : -ENOTCONN;
	if (r == 0) {
		c->next = n->outbox;
		n->outbox = c;
		uint64_t one = 1;
		if (write(n->wake_fd, &one, sizeof(one)) < 0)
			nf_log(LOG_DEBUG, "eventfd: %m");
		/* the loop answers every outcall: sent and answered, timed out,
		 * or failed when the session ends or the plugin stops */
		while (!c->done)
			pthread_cond_wait(&n->done, &n->lock);
		r = c->result;
	}
	pthread_mutex_unlock(&n->lock);
	free(c->id);
	free(c);
	return r;
}

/* ---- answers ---- */

static void reply(nf_session *s, uint32_t stream, const ProtobufCMessage *msg)
{
	int r = nf_session_reply(s, stream, NF_GRPC_OK, NULL, msg);
	if (r < 0)
		nf_log_errno(LOG_WARNING, r, "answering the runtime");
}

/* The pod with id ID in POD (of N), or NULL. */
static const nf_pb_pod *pod_of(nf_pb_pod *const *pods, size_t n, const char *id)
{
	for (size_t i = 0; id && i < n; i++)
		if (pods[i]->id && strcmp(pods[i]->id, id) == 0)
			return pods[i];
	return NULL;
}

static void register_container(nri *n, const nf_pb_container *c, const nf_pb_pod *pod,
			       const char *status)
{
	json_object *body = nf_nri_registration(c, pod, status);
	if (body)
		nf_agentq_register(n->aq, c->id, body);
	else
		nf_log(LOG_DEBUG, "container %s: no pid yet: not registered", c->id ? c->id : "?");
}

static void on_configure(nri *n, uint32_t stream, const ProtobufCBinaryData *p)
{
	Nri__Pkg__Api__V1alpha1__ConfigureRequest *q =
	    nri__pkg__api__v1alpha1__configure_request__unpack(NULL, p->len, p->data);
	Nri__Pkg__Api__V1alpha1__ConfigureResponse rsp =
	    NRI__PKG__API__V1ALPHA1__CONFIGURE_RESPONSE__INIT;
	rsp.events = NRI_EVENTS;
	reply(n->s, stream, &rsp.base);
	nf_log(LOG_NOTICE, "configured by %s %s as %s-%s: registrations%s",
	       q ? q->runtime_name : "?", q ? q->runtime_version : "?", n->cfg.idx, n->cfg.name,
	       n->cfg.repin ? " and the gentle re-pin" : " (the re-pin is off)");
	nri__pkg__api__v1alpha1__configure_request__free_unpacked(q, NULL);
	n->state = ST_READY;
	n->backoff_ms = 0;
	n->down_logged = false;
	set_ready(n, true);
	if (n->cfg.prelaunched_fd >= 0) /* no Synchronize comes to a pre-launched plugin */
		nf_repins_resume(n->rp, NULL, 0);
}

static void on_synchronize(nri *n, uint32_t stream, const ProtobufCBinaryData *p)
{
	Nri__Pkg__Api__V1alpha1__SynchronizeRequest *q =
	    nri__pkg__api__v1alpha1__synchronize_request__unpack(NULL, p->len, p->data);
	Nri__Pkg__Api__V1alpha1__SynchronizeResponse rsp =
	    NRI__PKG__API__V1ALPHA1__SYNCHRONIZE_RESPONSE__INIT;
	reply(n->s, stream, &rsp.base);
	size_t nc = q ? q->n_containers : 0, registered = 0;
	nf_repin_seen *seen = calloc(nc ? nc : 1, sizeof(*seen));
	for (size_t i = 0; i < nc; i++) {
		const nf_pb_container *c = q->containers[i];
		if (seen)
			seen[i] = (nf_repin_seen){.id = c->id, .spec_mems = nf_nri_spec_mems(c)};
		bool running =
		    c->state == NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
		if (c->pid &&
		    (running ||
		     c->state == NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_CREATED)) {
			register_container(n, c, pod_of(q->pods, q->n_pods, c->pod_sandbox_id),
					   running ? "running" : "created");
			registered++;
		}
	}
	nf_log(LOG_INFO, "synchronized: %zu container(s), %zu registered with the agent", nc,
	       registered);
	if (seen)
		nf_repins_resume(n->rp, seen, nc);
	free(seen);
	nri__pkg__api__v1alpha1__synchronize_request__free_unpacked(q, NULL);
}

/* memory.min, .low or .high of the container's v2 cgroup set: kubelet's
 * MemoryQoS, whose values come through `unified`. The cgroup from the spec's
 * cgroupsPath, else from /proc/PID/cgroup (in the plugin's cgroup namespace). */
static void cgroup_facts(const nri *n, const nf_pb_container *c, nf_nri_cgroup_facts *ret)
{
	static const char *const files[] = {"memory.min", "memory.low", "memory.high"};
	static const char *const unset[] = {"0", "0", "max"};
	_cleanup_free_ char *rel = nf_nri_cgroup_path(c->linux ? c->linux->cgroups_path : NULL);
	*ret = (nf_nri_cgroup_facts){0};
	for (int attempt = 0; attempt < 2 && !ret->known; attempt++) {
		if (attempt == 1) {
			free(rel);
			rel = NULL;
			if (!c->pid || nf_pid_cgroup(c->pid, NF_CG_V2, &rel) < 0)
				return;
		}
		size_t read = 0;
		bool set = false;
		for (size_t i = 0; rel && i < NF_ARRAY_SIZE(files); i++) {
			_cleanup_free_ char *path = NULL, *v = NULL;
			if (asprintf(&path, "%s%s/%s", n->cfg.cgroup_root, rel, files[i]) < 0 ||
			    nf_read_line(path, &v) < 0)
				continue;
			read++;
			set |= strcmp(v, unset[i]) != 0;
		}
		*ret = (nf_nri_cgroup_facts){.known = read == NF_ARRAY_SIZE(files),
					     .unified_memory = set};
	}
}

static void on_update(nri *n, uint32_t stream, const ProtobufCBinaryData *p)
{
	Nri__Pkg__Api__V1alpha1__UpdateContainerRequest *q =
	    nri__pkg__api__v1alpha1__update_container_request__unpack(NULL, p->len, p->data);
	Nri__Pkg__Api__V1alpha1__UpdateContainerResponse rsp =
	    NRI__PKG__API__V1ALPHA1__UPDATE_CONTAINER_RESPONSE__INIT;
	nf_pb_update *u = NULL;
	nf_nodeset old, new, uni;
	nf_nri_cgroup_facts facts = {0};
	char b1[NF_NODESET_STRLEN], b2[NF_NODESET_STRLEN];
	const nf_pb_container *c = q ? q->container : NULL;
	if (c && n->cfg.repin)
		cgroup_facts(n, c, &facts);
	nf_repin_verdict v = c && c->id ? nf_nri_repin_decide(n->cfg.repin, c, q->linux_resources,
							      &n->all, &facts, &old, &new, &uni)
					: NF_REPIN_NO_CHANGE;
	int r = 0;
	if (v == NF_REPIN_ADJUST && (r = nf_repin_begin(n->rp, c->id, &old, &new, &uni)) == 0)
		u = nf_nri_mems_update(c->id, &uni, true);
	const nf_pb_resources *lr = q ? q->linux_resources : NULL;
	bool sets_mems = lr && lr->cpu && lr->cpu->mems && *lr->cpu->mems;
	if (u) {
		rsp.update = &u;
		rsp.n_update = 1;
	} else if (c && c->id && sets_mems) {
		nf_repin_forget(n->rp, c->id); /* newer mems than a re-pin's: it must not narrow */
	}
	/* never an error: a plugin's error fails the CRI call */
	reply(n->s, stream, &rsp.base);
	if (u)
		nf_log(LOG_INFO,
		       "container %s: update of its mems %s -> %s: answered %s (old and new), the "
		       "agent moves the memory, then the mems narrow",
		       c->id, nf_nri_spec_mems(c), nf_nodeset_format(&new, b1, sizeof(b1)),
		       nf_nodeset_format(&uni, b2, sizeof(b2)));
	else if (v == NF_REPIN_ADJUST)
		nf_log_errno(LOG_WARNING, r,
			     "container %s: no re-pin: its state file in '%s' could not be written",
			     c->id, n->cfg.state_dir);
	else if (v != NF_REPIN_NO_CHANGE)
		nf_log(v == NF_REPIN_OFF || v == NF_REPIN_WIDENS ? LOG_DEBUG : LOG_INFO,
		       "container %s: update of its mems %s -> %s left to the runtime: %s", c->id,
		       nf_nri_spec_mems(c), sets_mems ? lr->cpu->mems : "",
		       nf_repin_verdict_text(v));
	nf_nri_update_free(u);
	nri__pkg__api__v1alpha1__update_container_request__free_unpacked(q, NULL);
}

static void on_state_change(nri *n, uint32_t stream, const ProtobufCBinaryData *p)
{
	Nri__Pkg__Api__V1alpha1__StateChangeEvent *q =
	    nri__pkg__api__v1alpha1__state_change_event__unpack(NULL, p->len, p->data);
	Nri__Pkg__Api__V1alpha1__Empty rsp = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;
	reply(n->s, stream, &rsp.base);
	const nf_pb_container *c = q ? q->container : NULL;
	if (!c || !c->id) {
		nri__pkg__api__v1alpha1__state_change_event__free_unpacked(q, NULL);
		return;
	}
	switch ((int)q->event) {
	case NF_EV_START_CONTAINER:
		register_container(n, c, q->pod, "created");
		break;
	case NF_EV_POST_START_CONTAINER:
		register_container(n, c, q->pod, "running");
		break;
	case NF_EV_POST_UPDATE_CONTAINER:
		nf_repin_applied(n->rp, c->id, nf_nri_spec_mems(c));
		break;
	case NF_EV_REMOVE_CONTAINER:
		nf_repin_forget(n->rp, c->id);
		nf_agentq_unregister(n->aq, c->id);
		break;
	}
	nri__pkg__api__v1alpha1__state_change_event__free_unpacked(q, NULL);
}

/* Requests on the plugin's connection (nf_request_fn). Anything but what the
 * plugin subscribed to gets an empty answer, never an error. */
static void on_request(nf_session *s, uint32_t stream, const Ttrpc__Request *q, void *userdata)
{
	nri *n = userdata;
	const char *m = q->method;
	const ProtobufCBinaryData *p = &q->payload;
	Nri__Pkg__Api__V1alpha1__Empty empty = NRI__PKG__API__V1ALPHA1__EMPTY__INIT;
	Nri__Pkg__Api__V1alpha1__CreateContainerResponse create =
	    NRI__PKG__API__V1ALPHA1__CREATE_CONTAINER_RESPONSE__INIT;
	Nri__Pkg__Api__V1alpha1__StopContainerResponse stop =
	    NRI__PKG__API__V1ALPHA1__STOP_CONTAINER_RESPONSE__INIT;
	if (strcmp(q->service, NF_NRI_SERVICE_PLUGIN) != 0)
		nf_session_reply(s, stream, NF_GRPC_UNIMPLEMENTED, "unknown service", NULL);
	else if (strcmp(m, "Configure") == 0)
		on_configure(n, stream, p);
	else if (strcmp(m, "Synchronize") == 0)
		on_synchronize(n, stream, p);
	else if (strcmp(m, "UpdateContainer") == 0)
		on_update(n, stream, p);
	else if (strcmp(m, "StateChange") == 0)
		on_state_change(n, stream, p);
	else if (strcmp(m, "CreateContainer") == 0)
		reply(s, stream, &create.base);
	else if (strcmp(m, "StopContainer") == 0)
		reply(s, stream, &stop.base);
	else if (strcmp(m, "Shutdown") == 0)
		reply(s, stream, &empty.base), nf_log(LOG_NOTICE, "the runtime shuts down");
	else
		nf_session_reply(s, stream, NF_GRPC_UNIMPLEMENTED, "unknown method", NULL);
}

/* ---- the connection ---- */

static void end_session(nri *n, const char *why, int err)
{
	if (!n->s)
		return;
	nf_log(LOG_WARNING, "the NRI connection ended: %s%s%s", why, err ? ": " : "",
	       err ? strerror(-err) : "");
	set_ready(n, false);
	nf_session_free(n->s); /* pending calls end with -ECONNRESET */
	n->s = NULL;
	n->state = ST_DOWN;
	drain_outbox(n);
	if (n->cfg.prelaunched_fd >= 0) {
		n->stop = true; /* a pre-launched plugin's socket does not come back */
		return;
	}
	n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : BACKOFF_MIN_MS;
	n->backoff_ms = n->backoff_ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms;
	n->next_connect_ns = nf_now_ns() + n->backoff_ms * UINT64_C(1000000);
}

static void on_registered(nf_session *s, int err, const Ttrpc__Response *rsp, void *userdata)
{
	nri *n = userdata;
	(void)s;
	if (err == 0 && rsp->status && rsp->status->code != NF_GRPC_OK)
		nf_log(LOG_ERR, "the runtime refused the registration as %s-%s: %s", n->cfg.idx,
		       n->cfg.name, rsp->status->message);
	else if (err < 0)
		nf_log_errno(LOG_WARNING, err, "registering with the runtime");
	else
		nf_log(LOG_INFO, "registered with the runtime as %s-%s", n->cfg.idx, n->cfg.name);
}

static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Connects (or takes the pre-connected socket) and registers. */
static void start_session(nri *n)
{
	int fd = n->cfg.prelaunched_fd >= 0 ? n->cfg.prelaunched_fd : dial(n->cfg.nri_socket);
	if (fd < 0) {
		if (!n->down_logged)
			nf_log(LOG_WARNING,
			       "cannot connect to the runtime's NRI socket '%s': %s; trying again "
			       "(up to every %d s)",
			       n->cfg.nri_socket, strerror(-fd), BACKOFF_MAX_MS / 1000);
		n->down_logged = true;
		n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : BACKOFF_MIN_MS;
		n->backoff_ms = n->backoff_ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms;
		n->next_connect_ns = nf_now_ns() + n->backoff_ms * UINT64_C(1000000);
		return;
	}
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest q =
	    NRI__PKG__API__V1ALPHA1__REGISTER_PLUGIN_REQUEST__INIT;
	q.plugin_name = (char *)n->cfg.name;
	q.plugin_idx = (char *)n->cfg.idx;
	int r = nf_session_new(fd, on_request, n, &n->s);
	if (r < 0) {
		close(fd);
		nf_log_errno(LOG_ERR, r, "NRI session");
		n->next_connect_ns = nf_now_ns() + BACKOFF_MAX_MS * UINT64_C(1000000);
		return;
	}
	n->state = ST_REGISTERING;
	n->deadline_ns = nf_now_ns() + REGISTER_MS * UINT64_C(1000000);
	r = nf_session_call(n->s, NF_NRI_SERVICE_RUNTIME, "RegisterPlugin", &q.base, REGISTER_MS,
			    on_registered, n);
	if (r < 0)
		end_session(n, "sending the registration", r);
	else
		nf_log(LOG_INFO, "connected to '%s'; registering as %s-%s",
		       n->cfg.prelaunched_fd >= 0 ? "the pre-connected socket" : n->cfg.nri_socket,
		       n->cfg.idx, n->cfg.name);
}

/* ---- the loop ---- */

static int poll_timeout(const nri *n, uint64_t now)
{
	uint64_t until = now + 1000 * UINT64_C(1000000); /* housekeeping, once a second */
	uint64_t d = n->s ? nf_session_deadline(n->s) : 0;
	if (d && d < until)
		until = d;
	if (n->state == ST_REGISTERING && n->deadline_ns < until)
		until = n->deadline_ns;
	if (!n->s && n->next_connect_ns < until)
		until = n->next_connect_ns;
	return until > now ? (int)((until - now) / 1000000) + 1 : 0;
}

static void step(nri *n)
{
	uint64_t now = nf_now_ns();
	struct pollfd p[3] = {{.fd = n->sig_fd, .events = POLLIN},
			      {.fd = n->wake_fd, .events = POLLIN},
			      {.fd = n->s ? nf_session_fd(n->s) : -1}};
	if (n->s)
		p[2].events = POLLIN | (nf_session_wants_write(n->s) ? POLLOUT : 0);
	if (poll(p, 3, poll_timeout(n, now)) < 0 && errno != EINTR)
		nf_log(LOG_ERR, "poll: %m");
	if (p[0].revents & POLLIN) {
		struct signalfd_siginfo si;
		if (read(n->sig_fd, &si, sizeof(si)) == sizeof(si))
			nf_log(LOG_NOTICE, "signal %u: stopping", si.ssi_signo);
		n->stop = true;
	}
	int r = 0;
	if (n->s && p[2].revents & (POLLIN | POLLHUP | POLLERR))
		r = nf_session_read(n->s);
	if (n->s && r == 0 && p[2].revents & POLLOUT)
		r = nf_session_flush(n->s);
	if (r < 0)
		end_session(n, r == -ECONNRESET ? "the runtime closed it" : "I/O",
			    r == -ECONNRESET ? 0 : r);
	if (p[1].revents & POLLIN)
		drain_outbox(n);
	now = nf_now_ns();
	if (n->s)
		nf_session_expire(n->s, now);
	if (n->s && n->state == ST_REGISTERING && now > n->deadline_ns)
		end_session(n, "the runtime did not configure the plugin in time", 0);
	if (!n->s && !n->stop && now >= n->next_connect_ns)
		start_session(n);
	nf_repins_expire(n->rp, WIDEN_WAIT_S);
}

static int setup(nri *n)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* a runtime gone while the plugin writes: an error to handle, not a death */
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (n->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return nf_log_errno(LOG_ERR, -errno, "signalfd/eventfd");
	int r = nf_memory_nodes(&n->all);
	if (r < 0)
		return nf_log_errno(LOG_ERR, r, "reading the nodes with memory");
	nf_repin_config rc = {.state_dir = n->cfg.state_dir,
			      .agent_socket = n->cfg.agent_socket,
			      .move_timeout_s = n->cfg.move_timeout_s,
			      .narrow = narrow,
			      .userdata = n};
	if ((r = nf_repins_new(&rc, &n->rp)) < 0)
		return nf_log_errno(LOG_ERR, r, "state directory '%s'", n->cfg.state_dir);
	if ((r = nf_agentq_start(n->cfg.agent_socket, n->cfg.agent_check_s, &n->aq)) < 0)
		return nf_log_errno(LOG_ERR, r, "starting the agent's thread");
	return 0;
}

int nf_nri_run(const nf_nri_config *cfg)
{
	nri n = {.cfg = *cfg, .sig_fd = -1, .wake_fd = -1};
	pthread_mutex_init(&n.lock, NULL);
	pthread_cond_init(&n.done, NULL);
	int r = setup(&n);
	while (r == 0 && !n.stop)
		step(&n);
	if (n.s) {
		set_ready(&n, false);
		nf_session_free(n.s);
		n.s = NULL;
	}
	n.state = ST_DOWN;
	if (n.wake_fd >= 0)
		drain_outbox(&n);
	nf_repins_free(n.rp); /* its threads see the stop; what they asked fails */
	nf_agentq_stop(n.aq);
	if (n.sig_fd >= 0)
		close(n.sig_fd);
	if (n.wake_fd >= 0)
		close(n.wake_fd);
	return r < 0 ? 3 : 0;
}
