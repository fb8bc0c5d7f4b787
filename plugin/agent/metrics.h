/* numafollowd's Prometheus text exposition. */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include "agent.h"
#include "kevents.h"

/* The exposition of A, and of K's Kubernetes events (NULL: off); NULL when
 * out of memory. */
char *nf_metrics(nf_agent *a, nf_kevents *k);

#endif
