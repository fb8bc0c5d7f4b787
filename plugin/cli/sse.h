/* Server-sent events as they arrive (the agent's GET /v1/events): lines cut
 * anywhere by the transport, events dispatched at their blank line. */
#ifndef NF_CLI_SSE_H
#define NF_CLI_SSE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
	/* TYPE ("message" when unnamed) and DATA (its data lines joined by
	 * newlines); false stops the feed. */
	bool (*on_event)(const char *type, const char *data, void *userdata);
	void *userdata;
	char *line, *data; /* the line so far; the event's data so far */
	size_t line_len, data_len;
	char type[64];
	bool has_data;
} nf_sse;

/* Takes N bytes at P; false when on_event said stop, out of memory, or a
 * line is over 4 MiB. */
bool nf_sse_feed(nf_sse *s, const char *p, size_t n);
void nf_sse_done(nf_sse *s);

#endif
