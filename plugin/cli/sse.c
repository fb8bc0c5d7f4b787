/* The event stream's text (sse.h), as the HTML standard's parser reads it,
 * less what the agent never sends (retry, multi-line ids). */
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (4 * 1024 * 1024)

static bool append(char **buf, size_t *len, const char *p, size_t n)
{
	if (*len + n > LINE_MAX_BYTES)
		return false;
	char *b = realloc(*buf, *len + n + 1);
	if (!b)
		return false;
	memcpy(b + *len, p, n);
	*len += n;
	b[*len] = '\0';
	*buf = b;
	return true;
}

static bool dispatch(nf_sse *s)
{
	bool go = true;
	if (s->has_data)
		go = s->on_event(*s->type ? s->type : "message", s->data ? s->data : "",
				 s->userdata);
	s->type[0] = '\0';
	s->data_len = 0;
	if (s->data)
		s->data[0] = '\0';
	s->has_data = false;
	return go;
}

/* One line, without its end. */
static bool line(nf_sse *s, const char *l)
{
	const char *colon = strchr(l, ':');
	size_t key = colon ? (size_t)(colon - l) : strlen(l);
	const char *v = colon ? colon + 1 + (colon[1] == ' ') : "";
	if (!*l)
		return dispatch(s);
	if (key == 5 && strncmp(l, "event", 5) == 0)
		snprintf(s->type, sizeof(s->type), "%s", v);
	else if (key == 4 && strncmp(l, "data", 4) == 0) {
		if (s->has_data && !append(&s->data, &s->data_len, "\n", 1))
			return false;
		s->has_data = true;
		return append(&s->data, &s->data_len, v, strlen(v));
	}
	return true; /* comments (":"), id and unknown fields */
}

bool nf_sse_feed(nf_sse *s, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (!append(&s->line, &s->line_len, p, take))
			return false;
		p += take + (nl != NULL);
		n -= take + (nl != NULL);
		if (!nl)
			break;
		if (s->line_len && s->line[s->line_len - 1] == '\r')
			s->line[--s->line_len] = '\0';
		s->line_len = 0;
		if (!line(s, s->line))
			return false;
	}
	return true;
}

void nf_sse_done(nf_sse *s)
{
	free(s->line);
	free(s->data);
	s->line = s->data = NULL;
}
