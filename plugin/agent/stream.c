/* The event stream's queues (stream.h): one copy of each event, shared by
 * reference among the clients' bounded queues. */
#include "stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	unsigned refs; /* under the stream's lock */
	size_t len;
	char text[]; /* "id: N\nevent: TYPE\ndata: JSON\n\n" */
} event;

struct nf_stream_client {
	nf_stream *s;
	nf_stream_waker w;
	event **q;	     /* a ring of queue_max */
	size_t head, n, off; /* OFF: bytes of the head event already read */
	uint64_t lost;	     /* dropped, not yet told */
	char note[96];	     /* a line to send before the queue: hello, lost, ping */
	size_t note_len, note_off;
	bool ping, asleep;
};

struct nf_stream {
	pthread_mutex_t lock;
	size_t queue_max, clients_max;
	nf_stream_client **clients;
	atomic_size_t n_clients;
	uint64_t next_id, published, lost;
	bool closed;
};

int nf_stream_new(size_t queue_max, size_t clients_max, nf_stream **ret)
{
	nf_stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->clients = calloc(clients_max ? clients_max : 1, sizeof(*s->clients))))
		return free(s), -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	/* two at least: a half-sent event stays at the head while a new one queues */
	s->queue_max = queue_max > 2 ? queue_max : 2;
	s->clients_max = clients_max;
	s->next_id = 1;
	*ret = s;
	return 0;
}

void nf_stream_free(nf_stream *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->clients);
	free(s);
}

bool nf_stream_listened(const nf_stream *s)
{
	return s && atomic_load_explicit(&s->n_clients, memory_order_relaxed) > 0;
}

static void event_unref(event *e)
{
	if (e && --e->refs == 0)
		free(e);
}

static void wake(nf_stream_client *c)
{
	if (c->asleep) {
		c->asleep = false;
		c->w.wake(c->w.ctx);
	}
}

/* E at the end of C's queue; a full queue is emptied first (but for an event
 * half read, which ends first), and counted. */
static void enqueue(nf_stream *s, nf_stream_client *c, event *e)
{
	if (c->n == s->queue_max) {
		size_t keep = c->off ? 1 : 0;
		for (size_t i = keep; i < c->n; i++)
			event_unref(c->q[(c->head + i) % s->queue_max]);
		c->lost += c->n - keep;
		s->lost += c->n - keep;
		c->n = keep;
	}
	c->q[(c->head + c->n++) % s->queue_max] = e;
	e->refs++;
	wake(c);
}

static event *event_new(uint64_t id, const char *type, json_object *data)
{
	const char *json = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!json)
		return NULL;
	size_t cap = strlen(json) + strlen(type) + 64;
	event *e = malloc(sizeof(*e) + cap);
	if (!e)
		return NULL;
	int n = snprintf(e->text, cap, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)id,
			 type, json);
	if (n < 0 || (size_t)n >= cap)
		return free(e), NULL;
	e->len = n;
	e->refs = 1; /* the publisher's, while it hands it out */
	return e;
}

void nf_stream_publish(nf_stream *s, const char *type, json_object *data)
{
	if (!nf_stream_listened(s) || !data)
		return;
	pthread_mutex_lock(&s->lock);
	event *e = s->closed ? NULL : event_new(s->next_id, type, data);
	if (e) {
		s->next_id++;
		s->published++;
		for (size_t i = 0; i < s->clients_max; i++)
			if (s->clients[i])
				enqueue(s, s->clients[i], e);
		event_unref(e);
	}
	pthread_mutex_unlock(&s->lock);
}

void nf_stream_ping(nf_stream *s)
{
	if (!nf_stream_listened(s))
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->clients_max; i++)
		if (s->clients[i]) {
			s->clients[i]->ping = true;
			wake(s->clients[i]);
		}
	pthread_mutex_unlock(&s->lock);
}

static void note(nf_stream_client *c, const char *text)
{
	c->note_len = snprintf(c->note, sizeof(c->note), "%s", text);
	c->note_off = 0;
}

int nf_stream_join(nf_stream *s, const nf_stream_waker *w, nf_stream_client **ret)
{
	nf_stream_client *c = calloc(1, sizeof(*c));
	if (!c || !(c->q = calloc(s->queue_max, sizeof(*c->q))))
		return free(c), -ENOMEM;
	c->s = s;
	c->w = *w;
	/* the headers go out with the first bytes: a client knows it follows */
	note(c, ": numafollow events\n\n");
	int r = -EBUSY;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; !s->closed && i < s->clients_max && r < 0; i++)
		if (!s->clients[i]) {
			s->clients[i] = c;
			atomic_fetch_add(&s->n_clients, 1);
			r = 0;
		}
	if (s->closed)
		r = -ESHUTDOWN;
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		free(c->q);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void nf_stream_leave(nf_stream_client *c)
{
	if (!c)
		return;
	nf_stream *s = c->s;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->clients_max; i++)
		if (s->clients[i] == c) {
			s->clients[i] = NULL;
			atomic_fetch_sub(&s->n_clients, 1);
		}
	for (; c->n; c->n--, c->head = (c->head + 1) % s->queue_max)
		event_unref(c->q[c->head]);
	pthread_mutex_unlock(&s->lock);
	free(c->q);
	free(c);
}

/* The next bytes to send: a note, else the head event; NULL when none. */
static const char *next_text(nf_stream_client *c, size_t *ret_len, bool *ret_note)
{
	/* between events only */
	if (c->note_off == c->note_len && c->lost && !c->off) {
		char text[sizeof(c->note)];
		snprintf(text, sizeof(text), "event: lost\ndata: {\"dropped\":%llu}\n\n",
			 (unsigned long long)c->lost);
		note(c, text);
		c->lost = 0;
	}
	if (c->note_off == c->note_len && !c->n && c->ping) {
		note(c, ": ping\n\n");
		c->ping = false;
	}
	*ret_note = c->note_off < c->note_len;
	if (*ret_note) {
		*ret_len = c->note_len - c->note_off;
		return c->note + c->note_off;
	}
	if (!c->n)
		return NULL;
	event *e = c->q[c->head];
	*ret_len = e->len - c->off;
	return e->text + c->off;
}

/* N bytes of what next_text gave were read. */
static void advance(nf_stream_client *c, size_t n, bool was_note)
{
	if (was_note) {
		c->note_off += n;
		return;
	}
	event *e = c->q[c->head];
	if ((c->off += n) < e->len)
		return;
	c->off = 0;
	c->head = (c->head + 1) % c->s->queue_max;
	c->n--;
	event_unref(e);
}

ssize_t nf_stream_read(nf_stream_client *c, char *buf, size_t max)
{
	nf_stream *s = c->s;
	size_t done = 0, len;
	bool is_note;
	const char *text;
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return -EPIPE;
	}
	while (done < max && (text = next_text(c, &len, &is_note))) {
		size_t n = len < max - done ? len : max - done;
		memcpy(buf + done, text, n);
		done += n;
		advance(c, n, is_note);
	}
	if (!done) {
		c->asleep = true;
		c->w.sleep(c->w.ctx);
	}
	pthread_mutex_unlock(&s->lock);
	return done;
}

void nf_stream_close(nf_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	for (size_t i = 0; i < s->clients_max; i++)
		if (s->clients[i])
			wake(s->clients[i]);
	pthread_mutex_unlock(&s->lock);
}

void nf_stream_stats_get(nf_stream *s, nf_stream_stats *ret)
{
	*ret = (nf_stream_stats){0};
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	ret->clients = atomic_load(&s->n_clients);
	ret->published = s->published;
	ret->lost = s->lost;
	for (size_t i = 0; i < s->clients_max; i++)
		if (s->clients[i] && s->clients[i]->n > ret->queued_max)
			ret->queued_max = s->clients[i]->n;
	pthread_mutex_unlock(&s->lock);
}
