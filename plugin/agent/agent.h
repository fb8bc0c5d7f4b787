/* numafollowd's state: the tree of watched cgroups, the containers among them,
 * the migration queue and its workers, and the history. One mutex (lock)
 * guards all of it; the event loop, the HTTP thread and the workers take it
 * for short sections, and a worker drops it while the engine runs. */
#ifndef NF_AGENT_H
#define NF_AGENT_H

#include "../lib/engine.h"
#include "../lib/journal.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/util.h"

#include <json.h>
#include <pthread.h>
#include <stdatomic.h>

typedef enum { NF_TRIG_INOTIFY, NF_TRIG_RECONCILE, NF_TRIG_HOOK, NF_TRIG_API } nf_trigger;
typedef enum {
	NF_RES_OK,
	NF_RES_PARTIAL,
	NF_RES_FAILED,
	NF_RES_SUPERSEDED,
	NF_RES_COUNT
} nf_result;

typedef struct nf_job nf_job;

/* What the hook told about a container (POST /v1/containers). */
typedef struct {
	char *id, *name, *pod_uid, *pod_name, *pod_namespace, *bundle, *status;
	pid_t pid;
	json_object *annotations;
	bool opted_out; /* numafollow.io/migrate=false: moved only when the API asks */
} nf_registration;

/* One cgroup directory; a container when it has tasks (or a registration). */
typedef struct nf_cg {
	struct nf_cg *parent, *child, *next; /* the directory tree */
	struct nf_cg *wd_next;		     /* hash chain by watch descriptor */
	int wd;
	char *rel;
	nf_identity ident;
	size_t tasks;
	nf_nodeset mems, eff;
	uint64_t *anon, *file; /* bytes per node at the last sample (containers only) */
	uint64_t residual;     /* left outside by the last migration */
	bool drifted;
	bool gone; /* removed while a worker still holds it */
	nf_registration *reg;
	json_object *last; /* the last migration's record */
	nf_job *running, *pending;
} nf_cg;

struct nf_job {
	nf_job *next; /* in the queue */
	nf_cg *cg;
	nf_trigger trigger;
	nf_nodeset from, to;
	bool has_from, queued;
	json_object *record;
	_Atomic bool cancel;
};

typedef struct {
	const char *state_dir, *cgroup_root;
	unsigned workers, retries;
	unsigned history; /* records kept in memory */
	size_t journal_max;
} nf_agent_config;

#define NF_DURATION_BUCKETS 10

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t work;
	nf_hierarchy h;
	nf_cg *top; /* the scan root: the hierarchy's root or --cgroup-root */
	nf_cg **wd_hash;
	size_t wd_buckets, n_cgs;
	int inotify_fd;
	unsigned nnodes; /* node ids below this */
	unsigned retries;
	bool rescan; /* events were lost: the next reconcile lists directories again */

	pthread_t *threads;
	unsigned n_threads;
	nf_job *head, *tail;
	bool stopping;

	nf_journal journal;
	bool journal_ok;
	json_object **hist; /* a ring of records, oldest at hist_first */
	size_t hist_cap, hist_len, hist_first;
	uint64_t next_id;

	json_object *selfcheck;
	uint64_t started_ns;

	/* metrics */
	uint64_t results[NF_RES_COUNT];
	uint64_t moved_total, kernel_moved_total, residual_total;
	uint64_t duration_bucket[NF_DURATION_BUCKETS + 1];
	double duration_sum;
	uint64_t events, overflows, reconciles, drift_repairs, scan_errors;
} nf_agent;

extern const double nf_duration_bounds[NF_DURATION_BUCKETS];

const char *nf_trigger_name(nf_trigger t);
const char *nf_result_name(nf_result r);

/* Finds the hierarchy, opens the journal, scans and watches, queues the
 * repair of drift found, starts workers. */
int nf_agent_start(nf_agent *a, const nf_agent_config *cfg);
/* Drains the workers (running migrations finish, queued ones are dropped). */
void nf_agent_stop(nf_agent *a);
/* Reads and handles what the inotify fd has (the event loop calls it). */
void nf_agent_read_events(nf_agent *a);
/* Re-reads every cgroup's mems, tasks and residency; repairs drift. */
void nf_agent_reconcile(nf_agent *a);

/* With the lock held: */
bool nf_cg_is_container(const nf_cg *c);
const char *nf_cg_id(const nf_cg *c);
const char *nf_cg_state(const nf_cg *c);
/* Bytes of the last sample on nodes outside SET (anonymous only, or all). */
uint64_t nf_cg_outside(const nf_agent *a, const nf_cg *c, const nf_nodeset *set, bool anon_only);
nf_cg *nf_agent_find(nf_agent *a, const char *id);
/* The cgroup of PID in the cpuset hierarchy (tracked on the way if new). */
int nf_agent_cg_of_pid(nf_agent *a, pid_t pid, nf_cg **ret);
/* Re-reads one container's tasks and residency. */
void nf_agent_refresh(nf_agent *a, nf_cg *c);
/* Queues a migration to the container's effective mems; returns its record. */
json_object *nf_agent_request(nf_agent *a, nf_cg *c, nf_trigger t);
void nf_registration_free(nf_registration *r);

#endif
