/* How far a long move is, for a progress line or a running record: the
 * engine calls an nf_progress_fn every NF_PROGRESS_NS while it moves memory,
 * and at each change of phase, from the thread that called it. */
#ifndef NF_PROGRESS_H
#define NF_PROGRESS_H

#include <stdint.h>

typedef enum {
	NF_PHASE_MEASURE, /* reading where the memory is */
	NF_PHASE_WIDEN,	  /* staged: writing old + new mems */
	NF_PHASE_MOVE,	  /* move_pages on the worker pool */
	NF_PHASE_SWEEP,	  /* migrate_pages for what is left, and verifying */
	NF_PHASE_NARROW,  /* staged: writing the new mems */
	NF_PHASE_COUNT
} nf_phase;

typedef struct {
	nf_phase phase;
	uint64_t done_bytes;  /* moved so far */
	uint64_t total_bytes; /* outside the target at the start; 0: not measured yet */
	uint64_t elapsed_ns;  /* since the start */
	uint64_t move_ns;     /* since the bulk began to move (done_bytes' time); 0: not yet */
} nf_progress;

typedef void (*nf_progress_fn)(const nf_progress *p, void *userdata);

/* At most this often during a phase (4 a second): a report costs a lock-free
 * read of the workers' shared counter. */
#define NF_PROGRESS_NS (UINT64_C(250) * 1000 * 1000)

static inline const char *nf_phase_name(nf_phase p)
{
	static const char *const names[NF_PHASE_COUNT] = {
	    [NF_PHASE_MEASURE] = "measure", [NF_PHASE_WIDEN] = "widen",	  [NF_PHASE_MOVE] = "move",
	    [NF_PHASE_SWEEP] = "sweep",	    [NF_PHASE_NARROW] = "narrow",
	};
	return p < NF_PHASE_COUNT ? names[p] : "?";
}

/* Bytes per second since the bulk began, and the seconds left at that rate
 * (0 when unknown). */
static inline uint64_t nf_progress_rate(const nf_progress *p)
{
	return p->move_ns ? (uint64_t)((double)p->done_bytes * 1e9 / (double)p->move_ns) : 0;
}

static inline uint64_t nf_progress_eta_s(const nf_progress *p)
{
	uint64_t rate = nf_progress_rate(p);
	if (!rate || p->total_bytes <= p->done_bytes)
		return 0;
	return (p->total_bytes - p->done_bytes + rate - 1) / rate;
}

#endif
