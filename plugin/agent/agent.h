/* numafollowd's state, as an object: the tree of watched cgroups, the
 * containers among them, the migration queue and its workers, the
 * registrations and the history. One mutex inside guards all of it. Every
 * nf_agent_* function takes it for itself, except where it says otherwise;
 * callbacks run with it held and must not call back into the agent. */
#ifndef NF_AGENT_H
#define NF_AGENT_H

#include "decide.h"
#include "../../cgroup/cgroup.h"
#include "../lib/record.h"

#include <json.h>
#include <sys/types.h>

typedef struct nf_agent nf_agent;

/* How migrations run; a reload may change it. */
typedef struct {
	unsigned retries;
	nf_method method;
	unsigned threads;   /* move_pages workers per migration; 0: the mover's default */
	uint64_t max_rate;  /* bytes per second per migration; 0: unthrottled */
	uint64_t budget_ms; /* a migration stops after it, the rest repaired later; 0: none */
	bool assist;	    /* move alongside the kernel inside others' v2 cpuset.mems writes */
} nf_agent_tuning;

typedef struct nf_container nf_container; /* below */

typedef struct {
	const char *state_dir, *cgroup_root;
	const char *docker_socket; /* dockerd's, for docker containers' names; NULL: off */
	unsigned workers;
	unsigned history; /* records kept in memory */
	size_t journal_max;
	nf_agent_tuning tuning;
	/* Called with the lock held whenever a migration record concludes, with
	 * its container (its last is the record): copies what it keeps, never
	 * blocks (kevents.c). NULL: nothing. */
	void (*on_done)(const nf_container *c, void *userdata);
	void *on_done_data;
	/* GET /v1/events: migrations' start, progress and end, containers added,
	 * removed and their mems changed; NULL: none. Outlives the agent. */
	struct nf_stream *stream;
} nf_agent_config;

/* What the hook told about a container (POST /v1/containers). */
typedef struct {
	char *id, *name, *pod_uid, *pod_name, *pod_namespace, *bundle, *status;
	pid_t pid;
	json_object *annotations;
	bool opted_out;	   /* numafollow.io/migrate=false: moved only when the API asks */
	uint64_t max_rate; /* numafollow.io/max-rate in bytes/s, or 0: the agent's */
} nf_registration;
void nf_registration_free(nf_registration *r);

/* A container as the API and the metrics see it, valid during a callback. */
typedef struct nf_container {
	const char *id, *cgroup, *runtime, *pod_uid; /* "" when unknown */
	const char *name;	    /* the registration's, or docker's; NULL when unknown */
	const nf_registration *reg; /* NULL unless registered */
	nf_nodeset mems, eff;
	size_t tasks;
	unsigned nnodes;
	const uint64_t *anon, *file; /* bytes per node at the last sample, or NULL */
	uint64_t outside;	     /* bytes outside eff at the last sample */
	nf_cg_state state;
	const nf_record *last; /* the last migration, or NULL */
} nf_container;
typedef void (*nf_container_fn)(const nf_container *c, void *userdata);
typedef void (*nf_record_fn)(const nf_record *r, void *userdata);

#define NF_DURATION_BUCKETS 10
extern const double nf_duration_bounds[NF_DURATION_BUCKETS];

typedef struct {
	const nf_hierarchy *h; /* fixed after start */
	const char *cgroup_root;
	uint64_t uptime_ns;
	size_t cgroups_watched, containers, queued;
	unsigned workers;
	bool history_persistent;
	uint64_t results[NF_RES_COUNT];
	uint64_t moved_total, kernel_moved_total, residual_total;
	uint64_t duration_bucket[NF_DURATION_BUCKETS + 1];
	double duration_sum;
	uint64_t events, overflows, reconciles, drift_repairs, scan_errors;
	uint64_t history_write_errors;
	uint64_t
	    read_errors; /* cgroup or /proc reads that failed (not for a cgroup or task gone) */
	uint64_t gentle_total;		      /* bytes moved by move_pages */
	uint64_t residue_total[NF_WHY_COUNT]; /* residue left, by reason */
	uint64_t assists, assist_total;	      /* assists run, bytes they moved */
	/* The agent's lock since the start: how often it was taken, how long
	 * it was held in all and at most, and where the longest hold took it. */
	uint64_t lock_holds, lock_held_ns, lock_held_max_ns;
	const char *lock_held_max_in; /* a function's name, or NULL */
} nf_agent_stats;

/* Finds the hierarchy, opens the journal, scans and watches, queues the
 * repair of drift found, starts workers. Logs why it could not. */
int nf_agent_new(const nf_agent_config *cfg, nf_agent **ret);
/* Drains the workers (running migrations finish, queued ones are dropped). */
void nf_agent_free(nf_agent *a);
/* The inotify descriptor, for the event loop's poll (no lock). */
int nf_agent_fd(const nf_agent *a);
/* Reads and handles what the inotify fd has. */
void nf_agent_read_events(nf_agent *a);
/* Re-reads every container's mems, tasks and residency; repairs drift. */
void nf_agent_reconcile(nf_agent *a);
void nf_agent_set_tuning(nf_agent *a, const nf_agent_tuning *t);
void nf_agent_stats_get(nf_agent *a, nf_agent_stats *ret);

/* Samples again the containers whose last sample (tasks, memory per node) is
 * older than MAX_AGE_MS: memory grows with no event to say so. */
void nf_agent_resample(nf_agent *a, uint64_t max_age_ms);
/* Calls FN for every container. */
void nf_agent_each_container(nf_agent *a, nf_container_fn fn, void *userdata);
/* Re-reads container ID (its id, or its cgroup path) and calls FN with it;
 * -ENOENT when there is none. */
int nf_agent_container(nf_agent *a, const char *id, nf_container_fn fn, void *userdata);
/* Calls FN for the newest records, of container ID (or all), at most LIMIT. */
void nf_agent_each_record(nf_agent *a, const char *id, size_t limit, nf_record_fn fn,
			  void *userdata);
/* Calls FN with record ID; -ENOENT when there is none. */
int nf_agent_record(nf_agent *a, uint64_t id, nf_record_fn fn, void *userdata);

/* Takes R. Registers it for the cgroup of its pid (a registration of the same
 * id elsewhere moves), asks for a migration when memory is outside the mems,
 * and calls FN with the container. 0 new, 1 updated, or -errno with the
 * reason in *ret_msg: -ESRCH (no such pid), -EXDEV (outside the watched root),
 * -EPERM (the root cgroup), -EEXIST (another container goes by that id),
 * -ENXIO (no effective mems), another when the cgroup cannot be found. */
int nf_agent_register(nf_agent *a, nf_registration *r, nf_container_fn fn, void *userdata,
		      char **ret_msg);
/* -ENOENT: no container ID; -ENODATA: it is not registered. */
int nf_agent_unregister(nf_agent *a, const char *id);
/* Queues a migration of container ID to its effective mems and calls FN with
 * its record. -ENOENT: no such container; -ENXIO: no effective mems;
 * -EBUSY: a staged move of it is under way. */
int nf_agent_migrate(nf_agent *a, const char *id, nf_record_fn fn, void *userdata);
/* Queues a migration of container ID to TO, a subset of its effective mems,
 * with trigger T (NF_TRIG_API or NF_TRIG_NRI), without writing its
 * cpuset.mems: the NRI plugin's re-pin, where the runtime owns the mems.
 * -ENOENT: no such container; -EBUSY: a migration of it is queued or
 * running; -ERANGE: TO is not within its effective mems. */
int nf_agent_migrate_to(nf_agent *a, const char *id, const nf_nodeset *to, nf_trigger t,
			nf_record_fn fn, void *userdata);
/* Queues a staged move of container ID to TO (lib/staged.h) and calls FN
 * with its record. -ENOENT: no such container; -EBUSY: a migration of it is
 * under way; -EROFS, -EACCES: its cpuset.mems cannot be written (the reason
 * in *ret_msg). */
int nf_agent_move(nf_agent *a, const char *id, const nf_nodeset *to, nf_record_fn fn,
		  void *userdata, char **ret_msg);

#endif
