/* Registrations with numafollowd from the NRI plugin (agentc.h). */
#include "agentc.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 5000 /* how often registrations are tried while the agent is away */

typedef struct job {
	struct job *next;
	char *id;
	char *body; /* NULL: an unregistration */
} job;

/* The last registration of each container, for the agent's return. */
typedef struct known {
	struct known *next;
	char *id, *body;
} known;

struct nf_agentq {
	char *socket;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	job *head, *tail;
	known *known;
	bool stopping, away; /* away: the last request found no agent */
	uint64_t uptime_s;   /* 1 + the agent's, at the last check (0: unknown); less: a restart */
	unsigned check_s;    /* how often an idle queue asks whether it restarted */
};

int nf_agent_request(const char *socket, const char *method, const char *path, const char *body,
		     long timeout_ms, nf_http_reply *ret)
{
	nf_http_peer p = {.socket = socket, .connect_ms = timeout_ms, .total_ms = timeout_ms};
	return nf_http(&p, method, path, body, ret);
}

static void job_free(job *j)
{
	free(j->id);
	free(j->body);
	free(j);
}

/* Sends J; -ECONNREFUSED (or another nf_http error) when the agent did not
 * answer. Logged here: this thread is the top level of its requests. */
static int send_job(nf_agentq *q, const job *j)
{
	_cleanup_free_ char *id = nf_http_escape(j->id), *path = NULL;
	nf_http_reply rep;
	if (!id || asprintf(&path, "/v1/containers/%s", id) < 0)
		return -ENOMEM;
	int r = nf_agent_request(q->socket, j->body ? "POST" : "DELETE",
				 j->body ? "/v1/containers" : path, j->body, 5000, &rep);
	if (r == 0 && (rep.status == 200 || rep.status == 201))
		nf_log(LOG_INFO, "container %s: %s with the agent", j->id,
		       !j->body		   ? "unregistered"
		       : rep.status == 201 ? "registered"
					   : "re-registered");
	else if (r == 0 && !j->body && rep.status == 404)
		nf_log(LOG_DEBUG, "container %s: the agent no longer knew it", j->id);
	else if (r == 0)
		nf_log(LOG_WARNING, "container %s: the agent answered %ld: %s", j->id, rep.status,
		       rep.body ? rep.body : "");
	else if (!q->away)
		nf_log(LOG_WARNING,
		       "agent unreachable at '%s' (%s): registrations wait for it, tried again "
		       "every %d s",
		       q->socket, rep.error, RETRY_MS / 1000);
	nf_http_reply_done(&rep);
	return r;
}

static void remember(nf_agentq *q, const job *j)
{
	known **p = &q->known;
	while (*p && strcmp((*p)->id, j->id) != 0)
		p = &(*p)->next;
	if (*p) {
		known *k = *p;
		if (!j->body) {
			*p = k->next;
			free(k->id), free(k->body), free(k);
			return;
		}
		char *b = strdup(j->body);
		if (b)
			free(k->body), k->body = b;
		return;
	}
	known *k = j->body ? calloc(1, sizeof(*k)) : NULL;
	if (k && (k->id = strdup(j->id)) && (k->body = strdup(j->body))) {
		k->next = q->known;
		q->known = k;
	} else if (k) {
		free(k->id), free(k);
	}
}

/* While the agent is away: every RETRY_MS, every known registration again.
 * Called with the lock held; returns with it held. */
static void retry_known(nf_agentq *q)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RETRY_MS / 1000;
	while (!q->stopping && !q->head)
		if (pthread_cond_timedwait(&q->cond, &q->lock, &until) == ETIMEDOUT)
			break;
	if (q->stopping || q->head)
		return; /* new work first: it may be the agent's answer */
	size_t n = 0;
	bool back = true;
	for (known *k = q->known; k && back; k = k->next) {
		job j = {.id = k->id, .body = k->body};
		pthread_mutex_unlock(&q->lock);
		int r = send_job(q, &j);
		pthread_mutex_lock(&q->lock);
		back = r != -ECONNREFUSED && r != -ETIMEDOUT;
		n += back;
		if (!q->known)
			break;
	}
	if (back && q->away)
		nf_log(LOG_NOTICE, "the agent answers again: %zu registration(s) sent again", n);
	q->away = !back;
	q->uptime_s = 0; /* a restart meanwhile is covered: everything went again */
}

/* Sends every known registration again (lock held; dropped around each). */
static size_t resend_known(nf_agentq *q)
{
	size_t n = 0;
	for (known *k = q->known; k && !q->stopping; k = k->next) {
		job j = {.id = k->id, .body = k->body};
		pthread_mutex_unlock(&q->lock);
		int r = send_job(q, &j);
		pthread_mutex_lock(&q->lock);
		n += r == 0;
	}
	return n;
}

/* Idle for CHECK_S: an agent that restarted lost its registrations (they are
 * not in its journal), and one that went away gets them when it answers. */
static void check_agent(nf_agentq *q)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += q->check_s;
	/* no uptime yet for the agent that has the registrations: take it now */
	while (!q->stopping && !q->head && (q->uptime_s || !q->known))
		if (pthread_cond_timedwait(&q->cond, &q->lock, &until) == ETIMEDOUT)
			break;
	if (q->stopping || q->head)
		return;
	nf_http_reply rep;
	pthread_mutex_unlock(&q->lock);
	int r = nf_agent_request(q->socket, "GET", "/v1/status", NULL, 5000, &rep);
	json_object *o = r == 0 && rep.status == 200 && rep.body ? json_tokener_parse(rep.body)
								 : NULL,
		    *v;
	uint64_t up = json_object_object_get_ex(o, "uptime_s", &v) ? json_object_get_int64(v) : 0;
	json_object_put(o);
	pthread_mutex_lock(&q->lock);
	if (r < 0 && !q->away && q->known)
		nf_log(LOG_WARNING,
		       "agent unreachable at '%s' (%s): registrations are sent again when it "
		       "answers",
		       q->socket, rep.error);
	q->away = r < 0;
	nf_http_reply_done(&rep);
	if (r == 0 && up + 1 < q->uptime_s && q->known)
		nf_log(LOG_NOTICE, "the agent restarted: %zu registration(s) sent again",
		       resend_known(q));
	q->uptime_s = r == 0 ? up + 1 : 0;
}

static void *worker(void *userdata)
{
	nf_agentq *q = userdata;
	pthread_mutex_lock(&q->lock);
	while (!q->stopping) {
		job *j = q->head;
		if (!j) {
			if (q->away)
				retry_known(q);
			else
				check_agent(q);
			continue;
		}
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		remember(q, j);
		pthread_mutex_unlock(&q->lock);
		int r = q->away && j->body ? -ECONNREFUSED : send_job(q, j);
		pthread_mutex_lock(&q->lock);
		q->away = q->away || r == -ECONNREFUSED || r == -ETIMEDOUT;
		job_free(j);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int nf_agentq_start(const char *socket, unsigned check_s, nf_agentq **ret)
{
	nf_agentq *q = calloc(1, sizeof(*q));
	if (!q || !(q->socket = strdup(socket)))
		return free(q), -ENOMEM;
	q->check_s = check_s;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	int e = pthread_create(&q->thread, NULL, worker, q);
	if (e) {
		free(q->socket), free(q);
		return -e;
	}
	*ret = q;
	return 0;
}

void nf_agentq_stop(nf_agentq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	while (q->head) {
		job *j = q->head;
		q->head = j->next;
		job_free(j);
	}
	while (q->known) {
		known *k = q->known;
		q->known = k->next;
		free(k->id), free(k->body), free(k);
	}
	free(q->socket);
	free(q);
}

static void push(nf_agentq *q, const char *id, char *body)
{
	job *j = calloc(1, sizeof(*j));
	if (!j || !(j->id = strdup(id))) {
		free(j), free(body);
		nf_log(LOG_ERR, "container %s: out of memory for its registration", id);
		return;
	}
	j->body = body;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void nf_agentq_register(nf_agentq *q, const char *id, json_object *body)
{
	const char *text =
	    body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
	char *copy = text ? strdup(text) : NULL;
	json_object_put(body);
	if (!copy) {
		nf_log(LOG_ERR, "container %s: out of memory for its registration", id);
		return;
	}
	push(q, id, copy);
}

void nf_agentq_unregister(nf_agentq *q, const char *id)
{
	push(q, id, NULL);
}
