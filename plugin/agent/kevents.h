/* Kubernetes Events about migrations (events.k8s.io/v1, regarding the Pod),
 * sent from the node with the in-cluster service account. The agent hands
 * over a concluded record (nf_kevents_record, with its lock held): a copy is
 * queued, never waiting; when the bounded queue is full the event is dropped
 * and counted. One sender thread owns the rest: client-go's spam filter per
 * regarding object (a burst of 25, then one per 5 minutes), repeats within
 * 10 minutes as a PATCH of the first Event's series, retries with backoff on
 * connection errors, 5xx and 429 (Retry-After honoured), none on other 4xx.
 * The pure parts (the bodies, the filter, the backoff) are declared here for
 * the unit tests. */
#ifndef NF_KEVENTS_H
#define NF_KEVENTS_H

#include "agent.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_KEV_SA_DIR	       "/var/run/secrets/kubernetes.io/serviceaccount"
#define NF_KEV_CONTROLLER      "numafollow.io/agent"
#define NF_KEV_ACTION	       "MigrateMemory"
#define NF_KEV_NOTE_MAX	       1024 /* bytes, the API server's limit */
#define NF_KEV_FIELD_MAX       128  /* reason, action, reportingController/Instance */
#define NF_KEV_NAME_MAX	       253  /* a DNS subdomain */
#define NF_KEV_BURST	       25   /* client-go's spam filter: a burst per object, */
#define NF_KEV_REFILL_NS       (300ull * 1000000000) /* then one per 5 minutes */
#define NF_KEV_SERIES_NS       (600ull * 1000000000) /* a repeat within it joins the series */
#define NF_KEV_ATTEMPTS	       5		     /* per event, the first included */
#define NF_KEV_BACKOFF_MS      1000		     /* doubling from there, */
#define NF_KEV_BACKOFF_MAX     30000		     /* up to this */
#define NF_KEV_RETRY_AFTER_MAX 120		     /* seconds of a Retry-After obeyed */
#define NF_KEV_OBJECTS	       1024 /* objects the filter remembers (least recent go) */

typedef enum { NF_KEV_NORMAL, NF_KEV_WARNING } nf_kev_type;

/* One event, with copies of all it says: nothing in it points into the agent. */
typedef struct {
	nf_kev_type type;
	const char *reason;   /* static text */
	char *pod, *ns, *uid; /* the regarding Pod; uid may be "" */
	char *note;	      /* valid UTF-8, at most NF_KEV_NOTE_MAX bytes */
	uint64_t time_ns;     /* CLOCK_REALTIME, when the migration ended */
} nf_kevent;

/* The event about C's last record, at NOW_NS (CLOCK_REALTIME). -ENODATA: C is
 * no known pod's (no pod name and namespace registered); -ECANCELED: the
 * record calls for no event (not done, superseded, or nothing moved and
 * nothing left); -ENOMEM. */
int nf_kevent_from(const nf_container *c, uint64_t now_ns, nf_kevent *ret);
void nf_kevent_done(nf_kevent *e);

/* A MicroTime: "2026-11-28T10:00:00.000000Z". */
void nf_kev_time(uint64_t ns, char buf[32]);
/* An Event's name as client-go makes it, "POD.<hex of NS>", POD shortened to
 * fit NF_KEV_NAME_MAX without ending in '.' or '-'; NULL: out of memory. */
char *nf_kev_name(const char *pod, uint64_t ns);

typedef struct {
	const char *controller; /* reportingController */
	const char *instance;	/* reportingInstance, at most NF_KEV_FIELD_MAX bytes */
} nf_kev_reporter;
/* The body of the POST that creates E as NAME; NULL: out of memory. */
char *nf_kev_body(const nf_kevent *e, const char *name, const nf_kev_reporter *rep);
/* The merge patch that makes an Event the series of COUNT occurrences, the
 * last at LAST_NS (an Event of events.k8s.io/v1 is immutable but for it). */
char *nf_kev_series_patch(uint32_t count, uint64_t last_ns);
/* How long to wait before attempt ATTEMPT + 1 (ATTEMPT >= 1): RETRY_AFTER_S
 * when the server said (capped), else the doubling backoff; in ms. */
uint64_t nf_kev_backoff_ms(unsigned attempt, long retry_after_s);

/* Whether TEXT (a ca.crt) holds PEM certificates, and nothing but: 0 with at
 * least one, each a BEGIN/END CERTIFICATE block whose base64 decodes to one
 * DER SEQUENCE of the length it says; -EINVAL otherwise. TLS checks the
 * certificates themselves at the first request; this catches a file that
 * cannot be one (empty, a key, a token, cut short) at the start. */
int nf_kev_ca_check(const char *text);

/* The spam filter and the aggregation, as client-go's recorder keeps them. */
typedef struct nf_kev_filter nf_kev_filter;
typedef enum {
	NF_KEV_CREATE, /* a new Event */
	NF_KEV_SERIES, /* a PATCH of the series of Event ret->name */
	NF_KEV_LIMITED /* over the object's rate: not sent (a series still counts it) */
} nf_kev_verdict;
typedef struct {
	nf_kev_verdict verdict;
	const char *name; /* NF_KEV_SERIES: the Event, valid until the next call */
	uint32_t count;	  /* NF_KEV_SERIES: occurrences so far, this one included */
} nf_kev_plan;
int nf_kev_filter_new(nf_kev_filter **ret);
void nf_kev_filter_free(nf_kev_filter *f);
/* What to do with E at MONO_NS (CLOCK_MONOTONIC); -ENOMEM. */
int nf_kev_filter_plan(nf_kev_filter *f, const nf_kevent *e, uint64_t mono_ns, nf_kev_plan *ret);
/* E was created as NAME at MONO_NS: its repeats go to that Event's series. */
int nf_kev_filter_created(nf_kev_filter *f, const nf_kevent *e, const char *name, uint64_t mono_ns);
/* The series' Event is gone (404): the next repeat creates a new one. */
void nf_kev_filter_forget(nf_kev_filter *f, const nf_kevent *e);

/* ---- the sender ---- */

typedef enum {
	NF_KEV_FAIL_UNREACHABLE,  /* no answer: connection, TLS, timeout */
	NF_KEV_FAIL_SERVER,	  /* 5xx */
	NF_KEV_FAIL_THROTTLED,	  /* 429 */
	NF_KEV_FAIL_UNAUTHORIZED, /* 401, after re-reading the token */
	NF_KEV_FAIL_FORBIDDEN,	  /* 403: RBAC */
	NF_KEV_FAIL_REJECTED,	  /* another 4xx: the body was refused */
	NF_KEV_FAIL_COUNT
} nf_kev_fail;
const char *nf_kev_fail_name(nf_kev_fail f);

typedef struct {
	const char *sa_dir; /* token and ca.crt (NF_KEV_SA_DIR in a pod) */
	const char *host;   /* the API server (KUBERNETES_SERVICE_HOST) */
	const char *port;   /* KUBERNETES_SERVICE_PORT */
	const char *node;   /* this node's name (NODE_NAME), for reportingInstance */
	size_t queue_max;   /* events waiting at most */
} nf_kevents_config;

typedef struct {
	bool enabled;
	size_t queued;
	uint64_t created, patched, retries, dropped, rate_limited;
	uint64_t failed[NF_KEV_FAIL_COUNT];
} nf_kevents_stats;

typedef struct nf_kevents nf_kevents;
/* Whether this looks like a pod of a cluster: KUBERNETES_SERVICE_HOST is set
 * and SA_DIR has a token. */
bool nf_kevents_in_cluster(const char *sa_dir);
/* Reads the token and checks the CA file, starts the sender. -errno with the
 * reason in *ret_msg (static text). Needs nf_http_setup(true) first. */
int nf_kevents_start(const nf_kevents_config *cfg, nf_kevents **ret, const char **ret_msg);
/* Stops the sender (a request under way ends at its timeout); what is still
 * queued is dropped. NULL is fine. */
void nf_kevents_stop(nf_kevents *k);
/* An nf_container_fn (USERDATA: the nf_kevents, or NULL for none): queues the
 * event about C's last record when there is one. Never blocks on the network. */
void nf_kevents_record(const nf_container *c, void *userdata);
/* K's counters; all zero when K is NULL (events off). */
void nf_kevents_stats_get(nf_kevents *k, nf_kevents_stats *ret);
/* "https://host:port", or NULL when K is NULL. */
const char *nf_kevents_server(const nf_kevents *k);

#endif
