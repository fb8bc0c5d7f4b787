/* numafollowd's Prometheus text exposition. */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include "agent.h"

/* The exposition of A; NULL when out of memory. */
char *nf_metrics(nf_agent *a);

#endif
