/* An nf_agent held in memory for tests/fuzz/fuzz-api.c: agent.h's query and
 * request functions over a few fixed containers and records, no cgroups, no
 * processes, no threads (tests/fuzz/fake-agent.c says what it models). */
#ifndef NF_FAKE_AGENT_H
#define NF_FAKE_AGENT_H

#include "../../plugin/agent/agent.h"

/* Pids a registration may name: FAKE_PID_FIRST + i is in container i. */
#define FAKE_PID_FIRST	 1000
#define FAKE_PID_ROOT	 1 /* in the root cgroup */
#define FAKE_PID_OUTSIDE 2 /* outside the watched root */

nf_agent *fake_agent_new(void);
void fake_agent_free(nf_agent *a);
/* How many times a request changed the agent's state. */
unsigned long fake_agent_changes(const nf_agent *a);
/* What workers would do between two requests: a running migration ends
 * (failed: the fake runs nothing), a queued one starts. */
void fake_agent_tick(nf_agent *a);

#endif
