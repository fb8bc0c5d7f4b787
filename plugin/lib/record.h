/* A migration record: what the agent queued, ran and concluded for one
 * container. A C struct in memory; JSON only at the edges (the journal, the
 * API, the CLI), made by nf_record_json and read back by nf_record_parse. */
#ifndef NF_RECORD_H
#define NF_RECORD_H

#include "engine.h"
#include "explain.h"

#include <json.h>
#include <stdatomic.h>

typedef enum {
	NF_TRIG_INOTIFY,   /* a cpuset.mems write */
	NF_TRIG_RECONCILE, /* the periodic re-read found a change or drift */
	NF_TRIG_HOOK,	   /* a registration found memory outside the mems */
	NF_TRIG_API,	   /* POST /v1/containers/{id}/migrate */
	NF_TRIG_MOVE,	   /* POST /v1/containers/{id}/move: a staged move */
	NF_TRIG_NRI,	   /* POST .../migrate {"to", "trigger": "nri"}: a CRI re-pin */
	NF_TRIG_COUNT
} nf_trigger;

typedef enum { NF_REC_QUEUED, NF_REC_RUNNING, NF_REC_DONE, NF_REC_STATE_COUNT } nf_rec_state;

typedef enum {
	NF_RES_OK,	   /* nothing left outside the target */
	NF_RES_PARTIAL,	   /* a residue stayed, or some tasks failed */
	NF_RES_FAILED,	   /* could not start, or no task could be migrated */
	NF_RES_SUPERSEDED, /* a newer change of the mems stopped it */
	NF_RES_COUNT
} nf_result;

/* How far a running record is: written by the one thread that runs it
 * (nf_record_progress_set, from the engine's progress callback) without the
 * agent's lock, read by anyone (nf_record_progress_get): a sequence lock
 * over atomics, so a reader never sees one report's bytes with another's
 * phase, and the writer never waits. */
typedef struct {
	atomic_uint seq; /* odd while a report is written; 0: none yet */
	_Atomic uint64_t phase, done, total, elapsed_ns, move_ns;
} nf_record_progress;

typedef struct {
	atomic_int refs;
	uint64_t id;
	char *container, *cgroup;
	nf_trigger trigger;
	nf_nodeset from, to;
	nf_rec_state state;
	/* From here on, set as the state advances: started_at once running, the
	 * rest once done. */
	char started_at[32]; /* RFC 3339, UTC, milliseconds */
	nf_result result;
	uint64_t duration_ms, tasks, tasks_failed, pages_not_moved;
	uint64_t kernel_moved_bytes, moved_bytes, residual_bytes;
	uint64_t residual[NF_STAY_COUNT];
	char **errors; /* "pid 12: migrate_pages: Operation not permitted" */
	size_t n_errors;
	/* How it moved (NF_METHOD_AUTO: unknown, a record of numafollow 0.2.0):
	 * the mover's threads and share, why the pages it tried stayed. */
	nf_method method;
	unsigned threads;
	uint64_t gentle_bytes;
	/* moved by the agent's assist inside the kernel's own migration (a v2
	 * cpuset.mems write), before this record's run; not in kernel_moved_bytes */
	uint64_t assisted_bytes;
	uint64_t stayed[NF_MOVE_ERR_COUNT];
	nf_reason *reasons; /* why the residue stayed (nf_explain) */
	size_t n_reasons;
	/* a staged move's phases: old u new written, the engine, the new set */
	bool staged;
	uint64_t widen_ms, move_ms, narrow_ms;
	/* the agent's: the journal lacks its state now (an append failed) */
	bool unsaved;
	nf_record_progress progress; /* while running; in the JSON then */
} nf_record;

const char *nf_trigger_name(nf_trigger t);
const char *nf_result_name(nf_result r);
/* What the JSON's "result" says: the state until done, then the result. */
const char *nf_record_status(const nf_record *r);

/* A queued record with one reference; NULL when out of memory. */
nf_record *nf_record_new(uint64_t id, const char *container, const char *cgroup, nf_trigger t,
			 const nf_nodeset *from, const nf_nodeset *to);
nf_record *nf_record_ref(nf_record *r);
void nf_record_unref(nf_record *r);
/* Marks R running from now. */
void nf_record_start(nf_record *r);
/* The engine's report P on R (its progress callback). */
void nf_record_progress_set(nf_record *r, const nf_progress *p);
/* R's last report; false when none came yet, or a writer kept it busy. */
bool nf_record_progress_get(const nf_record *r, nf_progress *ret);
/* {phase, moved_bytes, total_bytes, rate_bytes_per_s, eta_s, elapsed_ms};
 * NULL when out of memory. */
json_object *nf_progress_json(const nf_progress *p);

/* Concludes R from the engine's run: ERR (a -errno) when it could not start,
 * else M; KERNEL bytes moved by the kernel meanwhile, NS the time it took.
 * -ENOMEM leaves R concluded without its error messages. */
int nf_record_finish(nf_record *r, int err, const nf_migration *m, uint64_t kernel, uint64_t ns);
/* Concludes R, which never ran to its end, as failed, saying WHY. */
int nf_record_abandon(nf_record *r, const char *why);

/* The parts of the shape the CLI's report shares: {status: bytes} of what
 * move_pages could not move, and [{class, bytes, text}]; NULL: out of memory. */
json_object *nf_stayed_json(const uint64_t stayed[NF_MOVE_ERR_COUNT]);
json_object *nf_reasons_json(const nf_reason *why, size_t n);
/* The record as JSON (the journal's and the API's shape); NULL: out of memory. */
json_object *nf_record_json(const nf_record *r);
/* Reads a record back from its JSON (a journal line, an API answer).
 * -EINVAL, with the reason in *ret_msg (static text) when it is malformed. */
int nf_record_parse(json_object *o, nf_record **ret, const char **ret_msg);

#endif
