#include "docker.h"
#include "../lib/http.h"
#include "../lib/log.h"
#include "../../cgroup/util.h"

#include <json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE  256
#define ID_LEN 64

struct nf_docker {
	pthread_mutex_t lock;
	pthread_cond_t more;
	pthread_t thread;
	char *socket;
	nf_docker_fn fn;
	void *userdata;
	char ids[QUEUE][ID_LEN + 1]; /* a ring */
	unsigned head, count;
	bool stopping;
	bool failing; /* the last lookup found no answering dockerd: said once */
};

/* docker's own rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
static bool docker_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 255 ||
	    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int nf_docker_parse_name(const char *body, char **ret)
{
	json_object *o = body ? json_tokener_parse(body) : NULL, *names = NULL, *name;
	const char *s = NULL;
	int r = -EBADMSG;
	if (json_object_is_type(o, json_type_array) && json_object_array_length(o) == 0)
		r = -ENOENT;
	else if (json_object_is_type(o, json_type_array) &&
		 json_object_object_get_ex(json_object_array_get_idx(o, 0), "Names", &names) &&
		 json_object_is_type(names, json_type_array))
		/* the container's own name is "/name"; a legacy link adds
		 * "/other/alias", which may come first */
		for (size_t i = 0; !s && i < json_object_array_length(names); i++)
			if ((name = json_object_array_get_idx(names, i)) &&
			    json_object_is_type(name, json_type_string) &&
			    *json_object_get_string(name) == '/' &&
			    docker_name(json_object_get_string(name) + 1))
				s = json_object_get_string(name) + 1;
	if (s)
		r = (*ret = strdup(s)) ? 0 : -ENOMEM;
	json_object_put(o);
	return r;
}

static void lookup(nf_docker *d, const char *id)
{
	char path[96 + ID_LEN];
	nf_http_peer peer = {.socket = d->socket, .connect_ms = 1000, .total_ms = 5000};
	nf_http_reply rep = {0};
	_cleanup_free_ char *name = NULL;
	/* the list, not GET /containers/ID/json: that one waits for the
	 * container's lock, which dockerd holds while the container starts */
	snprintf(path, sizeof(path),
		 "/containers/json?all=1&filters=%%7B%%22id%%22%%3A%%5B%%22%s%%22%%5D%%7D", id);
	int r = nf_http(&peer, "GET", path, NULL, &rep);
	bool answered = r == 0 && rep.status < 500;
	if (!answered && !d->failing)
		/* no socket: no dockerd on this host, not a fault */
		nf_log(access(d->socket, F_OK) == 0 ? LOG_WARNING : LOG_INFO,
		       "docker: dockerd at %s did not answer (%s): docker containers stay "
		       "unnamed until it does (asked again at their next sample)",
		       d->socket, r < 0 ? rep.error : "a server error");
	else if (answered && d->failing)
		nf_log(LOG_INFO, "docker: dockerd at %s answers again", d->socket);
	d->failing = !answered;
	r = answered && rep.status == 200 ? nf_docker_parse_name(rep.body, &name) : -EBADMSG;
	if (r == -ENOENT)
		nf_log(LOG_DEBUG, "docker: dockerd does not know %.12s", id);
	else if (answered && r < 0)
		nf_log(LOG_WARNING,
		       "docker: dockerd's answer for %.12s has no usable name (HTTP %ld)", id,
		       rep.status);
	nf_http_reply_done(&rep);
	d->fn(d->userdata, id, name, !answered);
}

static void *run(void *userdata)
{
	nf_docker *d = userdata;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->count && !d->stopping)
			pthread_cond_wait(&d->more, &d->lock);
		if (d->stopping)
			break;
		char id[ID_LEN + 1];
		memcpy(id, d->ids[d->head], sizeof(id));
		d->head = (d->head + 1) % QUEUE;
		d->count--;
		pthread_mutex_unlock(&d->lock);
		lookup(d, id);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int nf_docker_new(const char *socket, nf_docker_fn fn, void *userdata, nf_docker **ret)
{
	nf_docker *d = calloc(1, sizeof(*d));
	if (!d || !(d->socket = strdup(socket))) {
		free(d);
		return -ENOMEM;
	}
	d->fn = fn;
	d->userdata = userdata;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->more, NULL);
	int r = pthread_create(&d->thread, NULL, run, d);
	if (r) {
		free(d->socket);
		free(d);
		return -r;
	}
	*ret = d;
	return 0;
}

bool nf_docker_ask(nf_docker *d, const char *id)
{
	if (strlen(id) != ID_LEN)
		return false;
	pthread_mutex_lock(&d->lock);
	bool room = d->count < QUEUE;
	if (room) {
		memcpy(d->ids[(d->head + d->count) % QUEUE], id, ID_LEN + 1);
		d->count++;
		pthread_cond_signal(&d->more);
	}
	pthread_mutex_unlock(&d->lock);
	return room;
}

void nf_docker_free(nf_docker *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->more);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->more);
	free(d->socket);
	free(d);
}
