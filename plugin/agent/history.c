#include "history.h"

#include <errno.h>
#include <stdlib.h>

int nf_history_init(nf_history *h, size_t cap)
{
	*h = (nf_history){.cap = cap ? cap : 1};
	h->ring = calloc(h->cap, sizeof(*h->ring));
	return h->ring ? 0 : -ENOMEM;
}

void nf_history_done(nf_history *h)
{
	for (size_t i = 0; i < h->len; i++)
		nf_record_unref(h->ring[(h->first + i) % h->cap]);
	free(h->ring);
	*h = (nf_history){0};
}

void nf_history_push(nf_history *h, nf_record *r)
{
	if (h->len == h->cap) {
		nf_record_unref(h->ring[h->first]);
		h->first = (h->first + 1) % h->cap;
		h->len--;
	}
	h->ring[(h->first + h->len++) % h->cap] = nf_record_ref(r);
}

void nf_history_put(nf_history *h, nf_record *r)
{
	for (size_t i = 0; i < h->len; i++) {
		nf_record **slot = &h->ring[(h->first + i) % h->cap];
		if ((*slot)->id == r->id) {
			nf_record_unref(*slot);
			*slot = nf_record_ref(r);
			return;
		}
	}
	nf_history_push(h, r);
}

nf_record *nf_history_newest(const nf_history *h, size_t i)
{
	return i < h->len ? h->ring[(h->first + h->len - 1 - i) % h->cap] : NULL;
}

nf_record *nf_history_find(const nf_history *h, uint64_t id)
{
	for (size_t i = 0; i < h->len; i++) {
		nf_record *r = nf_history_newest(h, i);
		if (r->id == id)
			return r;
	}
	return NULL;
}
