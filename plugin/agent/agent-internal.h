/* The agent's internals, shared by its files and by nothing else: agent.h is
 * what the API, the metrics and main see.
 *
 * The rooms (docs/architecture.md has one line per file):
 *   agent.c     start, stop, the lock, the counters, the tuning
 *   tree.c      the tree of cgroup directories and their inotify watches
 *   sample.c    a container's tasks and memory per node; docker's names
 *   events.c    the event loop's sources: inotify events and the reconcile
 *   requests.c  the API's sources: registrations, migrate and move requests
 *   follow.c    the one decision path they feed: a change of a container's
 *               mems, or drift (the rules in decide.c), asks jobs.c to move
 *   jobs.c      the queue and the workers: the only room that drops the lock
 *   assist.c    moving beside the kernel inside someone else's v2 write
 *   query.c     what the API reads: containers and records
 *   history.c   the ring of records and its journal
 *   announce.c  what the event stream (stream.c, GET /v1/events) is told
 *
 * THE LOCK
 *
 * What it guards: one mutex, nf_agent.lock, guards everything reachable from
 * struct nf_agent: the cgroup tree and its watch table, every nf_cg (sample,
 * registration, jobs, last record), the queue, the history ring and the
 * journal's appends, the counters, the tuning, and every record the agent
 * fills in. Not guarded, because fixed once the workers start: h, nnodes,
 * inotify_fd, top (the pointer and its rel), threads, stream. Also not: a
 * job's cancel flag (atomic: the engine polls it), a running record's
 * progress (a sequence lock of atomics, written by its worker from the
 * engine's progress callback while the lock is dropped: record.h),
 * kevents' queue, docker's and the event stream's (their own locks, never
 * taken the other way round: a publisher may hold the agent's lock, the
 * stream's callbacks never take it).
 *
 * Who takes it: the public nf_agent_* functions (agent.h), each for itself,
 * through nf_agent_lock() and nf_agent_unlock() (which time each hold);
 * docker's thread when a name comes back (sample.c); the workers (jobs.c).
 * Nothing else: route.c, metrics.c and kevents.c run under it only inside the
 * callbacks an nf_agent_* function calls, and those never call back into the
 * agent. Internal functions are called with it held, except:
 *   - *_drops_lock(): entered with it held, they let it go and take it again
 *     before they return. They live in jobs.c and nowhere else.
 *   - *_unlocked(): run while it is dropped. They touch nothing it guards,
 *     only what the caller copied out for them (a path, options, the job's
 *     cancel flag) and what they hand back.
 *
 * What never runs under it: a migration (the engine, the mover, the settling,
 * a staged move's writes of cpuset.mems, the assist's wait and its moves),
 * the journal's compaction (its read, write, fsync and rename: a worker runs
 * it with the lock dropped), network I/O (docker.c's and kevents.c's
 * threads). What still does, each bounded by one container or one record:
 * reading a container's cgroup files and, on v1 when its memory changed, its
 * tasks' numa_maps (sample.c); the cpuset files and /proc/PID/comm of a
 * container whose mems changed (follow.c); inotify_add_watch and readdir of a
 * directory (tree.c); one write(2) of a journal line (history.c); log lines.
 * The event loop takes it once per inotify event (a new directory: its
 * subtree); a periodic reconcile and a stale GET /v1/containers once per
 * batch of NF_BATCH containers; the reconcile after an inotify overflow and
 * the start's scan hold it across the whole tree ("lock" in /v1/status
 * says how long it was held; docs/benchmarks.md has the figures). */
#ifndef NF_AGENT_INTERNAL_H
#define NF_AGENT_INTERNAL_H

#include "agent.h"
#include "docker.h"
#include "history.h"
#include "../lib/engine.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/residency.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct nf_job nf_job;

/* How many containers a periodic reconcile or a resample reads per hold of
 * the lock: the other threads wait for a batch, not for the whole tree. */
#define NF_BATCH 32

/* One cgroup directory; a container when it has tasks (or a registration). */
struct nf_cg {
	struct nf_cg *parent, *child, *next; /* the directory tree */
	struct nf_cg *wd_next;		     /* hash chain by watch descriptor */
	int wd;
	char *rel;
	nf_identity ident;
	size_t tasks;
	nf_nodeset mems, eff;
	uint64_t *anon, *file; /* bytes per node at the last sample (containers only) */
	uint64_t residual;     /* left outside by the last migration */
	uint64_t assisted;     /* moved by assists since the last migration started */
	uint64_t *pre;	       /* bytes per node when a write began (v2), or NULL */
	uint64_t v1_sig;       /* v1: what the last sample's numa_stat and tasks were */
	uint64_t sampled_ns;   /* when (nf_now_ns) */
	unsigned reconciled;   /* the last reconcile that read it (nf_agent.reconcile_gen) */
	bool assist_armed;     /* an assist was asked for the write under way */
	char *name;	       /* a docker container's name, from dockerd */
	enum { NAME_UNASKED, NAME_ASKED, NAME_DONE } name_state;
	bool drifted;
	bool gone;	/* removed while a worker still holds it */
	bool announced; /* the event stream was told it is a container */
	/* a staged move ended at other mems than its target (another writer's):
	 * they are followed as a change once the move is off C */
	bool refollow;
	nf_registration *reg;
	nf_record *last; /* the last migration */
	nf_job *running, *pending;
};

struct nf_job {
	nf_job *next; /* in the queue */
	nf_cg *cg;
	nf_trigger trigger;
	nf_nodeset from, to;
	bool has_from, queued;
	bool staged; /* a staged move to TO: it writes cpuset.mems itself */
	bool resume; /* a staged move cut short after widening FROM to FROM u TO */
	bool assist; /* an assist of the kernel's migration from FROM: no record */
	nf_record *record;
	_Atomic bool cancel;
};

struct nf_agent {
	pthread_mutex_t lock;
	pthread_cond_t work;
	nf_hierarchy h;
	nf_cg *top; /* the scan root: the hierarchy's root or --cgroup-root */
	nf_cg **wd_hash;
	size_t wd_buckets, n_cgs;
	int inotify_fd;
	unsigned nnodes; /* node ids below this */
	nf_agent_tuning tuning;
	bool rescan; /* events were lost: the next reconcile lists directories again */
	unsigned reconcile_gen;

	pthread_t *threads;
	unsigned n_threads;
	nf_job *head, *tail;
	bool stopping;

	nf_history hist; /* the records, and their journal */
	uint64_t started_ns;
	nf_agent_stats stats; /* its counters */
	nf_docker *docker;    /* names docker containers; NULL when off */
	void (*on_done)(const nf_container *c, void *userdata);
	void *on_done_data;
	struct nf_stream *stream; /* GET /v1/events, or NULL */
	uint64_t locked_ns;	  /* when the holder took the lock */
	const char *locked_in;	  /* and in which function */
};

/* agent.c: the lock, timed (nf_agent_stats' lock_*). */
#define nf_agent_lock(a) nf_agent_lock_in(a, __func__)
void nf_agent_lock_in(nf_agent *a, const char *fn);
void nf_agent_unlock(nf_agent *a);
/* Around a wait on a condition, which lets the lock go meanwhile. */
void nf_agent_hold_ends(nf_agent *a);
void nf_agent_hold_begins(nf_agent *a, const char *fn);

/* tree.c */
void nf_cg_path(const nf_agent *a, const nf_cg *c, char buf[PATH_MAX]);
/* An nf_cgroup view of C for the cgroup layer; PATH is its storage. */
nf_cgroup nf_cg_cgroup(const nf_agent *a, const nf_cg *c, char path[PATH_MAX]);
bool nf_cg_is_container(const nf_cg *c);
const char *nf_cg_id(const nf_cg *c);
bool nf_cg_opted_out(const nf_cg *c);
/* A staged move of C is queued or running: it writes C's mems itself and ends
 * at its own target, so nothing else is asked of C meanwhile. */
bool nf_cg_staging(const nf_cg *c);
nf_cg *nf_cg_new(const char *rel);
void nf_cg_free(nf_cg *c);
/* Frees C (unlinked, gone) unless a job still holds it. */
void nf_cg_release(nf_cg *c);
nf_cg *nf_tree_watched(const nf_agent *a, int wd);
nf_cg *nf_tree_child(nf_cg *parent, const char *name);
/* Child NAME of PARENT, tracked, watched and scanned if new; NULL: no memory. */
nf_cg *nf_tree_add(nf_agent *a, nf_cg *parent, const char *name);
/* Watches C, reads it, and adds its children. */
void nf_tree_scan(nf_agent *a, nf_cg *c);
/* Unlinks C and its subtree; a worker that holds one frees it when done. */
void nf_tree_remove(nf_agent *a, nf_cg *c);
/* Directories the events missed (an overflow, a watch that failed). */
void nf_tree_rescan(nf_agent *a, nf_cg *c);
void nf_tree_free(nf_cg *c);
/* The container below C that goes by ID, or NULL. */
nf_cg *nf_tree_find_id(nf_cg *c, const char *id);
/* Cgroup REL below the top, or NULL; with ADD, tracked on the way if new. */
nf_cg *nf_tree_find_path(nf_agent *a, const char *rel, bool add);
/* Container ID: its id, or a cgroup path naming a container. */
nf_cg *nf_tree_find(nf_agent *a, const char *id);
/* The cgroup of PID in the cpuset hierarchy (tracked on the way if new). */
int nf_tree_cg_of_pid(nf_agent *a, pid_t pid, nf_cg **ret);
/* The scan root: --cgroup-root ROOT (NULL: the hierarchy's root). */
int nf_tree_open_top(nf_agent *a, const char *root);

/* sample.c */
/* Reads C's tasks and, for a container, where its memory is. */
void nf_sample(nf_agent *a, nf_cg *c);
void nf_sample_store(nf_agent *a, nf_cg *c, const nf_residency *r);
/* Bytes of the last sample on nodes outside SET (anonymous only, or all). */
uint64_t nf_cg_outside(const nf_agent *a, const nf_cg *c, const nf_nodeset *set, bool anon_only);
/* Bytes per node at C's last sample (anon and file), to free, or NULL. */
uint64_t *nf_cg_node_totals(const nf_agent *a, const nf_cg *c);
/* A read of C that failed for another reason than C or a task going away:
 * counted; the first one is logged. */
void nf_read_failed(nf_agent *a, const nf_cg *c, const char *what, int r);
/* A docker name lookup's end (nf_docker_fn), on docker's thread. */
void nf_sample_named(void *userdata, const char *id, const char *name, bool retry);

/* follow.c */
/* Reads C's mems; a change of the effective ones on a container asks for a
 * migration, unless decide.c finds nothing to move. */
void nf_follow_mems(nf_agent *a, nf_cg *c, nf_trigger t, bool eff_only);
void nf_follow_subtree(nf_agent *a, nf_cg *c, nf_trigger t);
/* Drift (nf_decide_drift), decided on the last sample. */
void nf_follow_drift(nf_agent *a, nf_cg *c);

/* events.c */
/* The whole reconcile in one hold (after an inotify overflow). */
void nf_reconcile(nf_agent *a);
/* Drift below C, decided on the samples as they are (at start, just after
 * the scan read everything). */
void nf_reconcile_drift(nf_agent *a, nf_cg *c);

/* jobs.c */
/* A migration of C to its effective mems; its record, or NULL (opted out, or
 * out of memory). FROM, when the mems changed, is what they were. */
nf_record *nf_job_request(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from);
nf_job *nf_job_new(nf_agent *a, nf_cg *c, nf_trigger t, const nf_nodeset *from);
void nf_job_free(nf_job *j);
/* The nodes C's memory was on at its last sample, outside TO. */
nf_nodeset nf_job_sampled_from(const nf_agent *a, const nf_cg *c, const nf_nodeset *to);
void nf_job_enqueue(nf_agent *a, nf_job *j);
/* Takes C's queued job off the queue and frees it. */
void nf_job_drop_pending(nf_agent *a, nf_cg *c);
/* At the start, for staged move REC that a crash or a stop cut short: when
 * its container's cpuset.mems is the union it widened to, a staged move
 * resumes it to its target (docs/architecture.md says why not back). */
void nf_job_resume_staged(nf_agent *a, const nf_record *rec);
void *nf_job_worker(void *userdata);

/* assist.c */
/* An assist's run, from the worker's preparation to its conclusion. */
typedef struct {
	char *rel;
	nf_migrate_opts o;
	nf_move_result m;
	int r;
	bool changed; /* the effective mems changed within the wait */
	uint64_t t0, t1;
} nf_assist_run;
/* A write to C's cpuset.mems begins: samples, and arms assists below C. */
void nf_assist_arm(nf_agent *a, nf_cg *c);
/* The write is over: its assists stop. */
void nf_assist_disarm(nf_agent *a, nf_cg *c);
/* Stopping: assists below C end now. */
void nf_assist_cancel_all(nf_cg *c);
void nf_assist_prepare(const nf_agent *a, nf_job *j, uint64_t max_rate, nf_assist_run *ret);
void nf_assist_move_unlocked(const nf_hierarchy *h, nf_assist_run *x);
void nf_assist_conclude(nf_agent *a, nf_cg *c, nf_assist_run *x);

/* announce.c: events for GET /v1/events, built only while someone follows. */
/* TYPE ("migration-start", "migration-end") with the record. */
void nf_announce_record(nf_agent *a, const char *type, const nf_record *r);
/* "container-added" or "-removed" when C became a container or stopped
 * being one (tasks came or went, a registration, removed) since the last. */
void nf_announce_presence(nf_agent *a, nf_cg *c);
/* "container-mems": C's effective mems went from OLD to its current ones. */
void nf_announce_mems(nf_agent *a, const nf_cg *c, const nf_nodeset *old);
/* The engine's progress callback on a running record: its progress, and a
 * "migration-progress" event. Runs with the lock dropped and takes none but
 * the stream's: it touches only the record's atomics (the job holds a
 * reference) and its fixed fields (id, container, cgroup). */
typedef struct {
	struct nf_stream *stream;
	nf_record *record;
} nf_announce_sink;
void nf_announce_progress_unlocked(const nf_progress *p, void *userdata);

/* query.c */
nf_container nf_cg_view(const nf_agent *a, const nf_cg *c);

#endif
