/* The agent's history: a ring of the newest migration records, each held by
 * reference (a running job and a container's last migration hold theirs too).
 * Not thread-safe: the agent's lock guards it. */
#ifndef NF_HISTORY_H
#define NF_HISTORY_H

#include "../lib/record.h"

typedef struct {
	nf_record **ring;
	size_t cap, len, first; /* the oldest is ring[first] */
} nf_history;

int nf_history_init(nf_history *h, size_t cap);
void nf_history_done(nf_history *h);
/* Takes a reference to R; the oldest record drops out when full. */
void nf_history_push(nf_history *h, nf_record *r);
/* The same, but R replaces a record with its id where there is one (the
 * journal holds a record as handed out, then as concluded). */
void nf_history_put(nf_history *h, nf_record *r);
/* The I-th newest record (0: the newest), or NULL past the end. */
nf_record *nf_history_newest(const nf_history *h, size_t i);
/* The record with ID, or NULL. */
nf_record *nf_history_find(const nf_history *h, uint64_t id);

#endif
