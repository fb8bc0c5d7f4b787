/* The agent's history: a ring of the newest migration records, each held by
 * reference (a running job and a container's last migration hold theirs too),
 * and the journal that makes it survive a restart. Not thread-safe: the
 * agent's lock guards it (agent-internal.h), but for the compaction's write,
 * which a worker runs with the lock dropped. */
#ifndef NF_HISTORY_H
#define NF_HISTORY_H

#include "../lib/journal.h"
#include "../lib/record.h"

typedef struct nf_cg nf_cg;

typedef struct {
	nf_record **ring;
	size_t cap, len, first; /* the oldest is ring[first] */
	uint64_t next_id;	/* the id the next record gets */
	nf_journal journal;
	bool journal_ok;       /* opened: history is meant to survive a restart */
	bool journal_failing;  /* the last append failed (a full disk?) */
	bool compact_failing;  /* the last compaction failed */
	uint64_t write_errors; /* appends that failed */
} nf_history;

int nf_history_init(nf_history *h, size_t cap);
void nf_history_done(nf_history *h);
/* Takes a reference to R; the oldest record drops out when full. */
void nf_history_push(nf_history *h, nf_record *r);
/* The same, but R replaces a record with its id where there is one (the
 * journal holds a record as handed out, then as concluded; a staged move
 * also as started, between the two). */
void nf_history_put(nf_history *h, nf_record *r);
/* The I-th newest record (0: the newest), or NULL past the end. */
nf_record *nf_history_newest(const nf_history *h, size_t i);
/* The record with ID, or NULL. */
nf_record *nf_history_find(const nf_history *h, uint64_t id);

/* Opens DIR's journal and replays what it holds. Its failure costs only
 * persistence (said in the log), but another agent on DIR stops this one:
 * -EBUSY. */
int nf_history_open(nf_history *h, const char *dir, size_t max_bytes);
/* Appends R as it is now; a failure is said once and counted. */
void nf_history_save(nf_history *h, nf_record *r);
/* Whether the journal is open and its appends succeed. */
bool nf_history_persistent(const nf_history *h);
/* Records replayed as queued or running were cut short by a stop or a
 * crash: concluded as such, once. */
void nf_history_conclude_interrupted(nf_history *h);
/* Gives each cgroup that FIND (USERDATA, a cgroup path) knows its last
 * migration and what it left, from the history just replayed. */
void nf_history_link(const nf_history *h, nf_cg *(*find)(void *userdata, const char *rel),
		     void *userdata);
/* The journal's compaction (lib/journal.h): due, begun (0, or -errno when
 * not), and ended after nf_journal_compact_write's result R. */
bool nf_history_compaction_due(const nf_history *h);
int nf_history_compact_begin(nf_history *h, nf_journal_compaction *ret);
void nf_history_compact_end(nf_history *h, nf_journal_compaction *k, int r);

#endif
