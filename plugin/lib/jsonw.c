#include "jsonw.h"
#include "../../cgroup/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(nf_jw *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (nf_grow(&w->buf, &w->cap, w->len + n + 1, 1, 4096) < 0) {
		w->oom = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/* Before a value: the comma that separates it from the previous one. */
static void sep(nf_jw *w)
{
	if (w->keyed) {
		w->keyed = false;
		return;
	}
	if (w->more[w->depth])
		put(w, ",", 1);
	w->more[w->depth] = true;
}

void nf_jw_open(nf_jw *w, char bracket)
{
	sep(w);
	put(w, &bracket, 1);
	if (w->depth + 1 < NF_JW_DEPTH)
		w->more[++w->depth] = false;
	else
		w->oom = true; /* deeper than any view of the agent's */
}

void nf_jw_close(nf_jw *w, char bracket)
{
	put(w, &bracket, 1);
	if (w->depth > 0)
		w->depth--;
}

static void quoted(nf_jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(w, "\"", 1);
	for (const char *p = s;;) {
		size_t n = 0;
		while (p[n] && p[n] != '"' && p[n] != '\\' && (unsigned char)p[n] >= 0x20)
			n++;
		put(w, p, n);
		p += n;
		if (!*p)
			break;
		char e[6] = {'\\', *p};
		size_t len = 2;
		switch (*p) {
		case '\n':
			e[1] = 'n';
			break;
		case '\t':
			e[1] = 't';
			break;
		case '\r':
			e[1] = 'r';
			break;
		case '\b':
			e[1] = 'b';
			break;
		case '\f':
			e[1] = 'f';
			break;
		case '"':
		case '\\':
			break;
		default:
			memcpy(e + 1, "u00", 3);
			e[4] = hex[(unsigned char)*p >> 4];
			e[5] = hex[*p & 0xf];
			len = 6;
		}
		put(w, e, len);
		p++;
	}
	put(w, "\"", 1);
}

void nf_jw_key(nf_jw *w, const char *key)
{
	sep(w);
	quoted(w, key);
	put(w, ":", 1);
	w->keyed = true;
}

void nf_jw_str(nf_jw *w, const char *s)
{
	if (!s) {
		nf_jw_null(w);
		return;
	}
	sep(w);
	if (nf_utf8_valid(s)) {
		quoted(w, s);
		return;
	}
	char *clean = nf_utf8_clean(s);
	if (clean)
		quoted(w, clean);
	else
		w->oom = true;
	free(clean);
}

void nf_jw_str_or_null(nf_jw *w, const char *s)
{
	nf_jw_str(w, s && *s ? s : NULL);
}

void nf_jw_kstr(nf_jw *w, const char *key, const char *s)
{
	nf_jw_key(w, key);
	nf_jw_str(w, s);
}

void nf_jw_u64(nf_jw *w, uint64_t v)
{
	char b[24];
	sep(w);
	put(w, b, snprintf(b, sizeof(b), "%" PRIu64, v));
}

void nf_jw_int(nf_jw *w, long long v)
{
	char b[24];
	sep(w);
	put(w, b, snprintf(b, sizeof(b), "%lld", v));
}

void nf_jw_bool(nf_jw *w, bool v)
{
	sep(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void nf_jw_null(nf_jw *w)
{
	sep(w);
	put(w, "null", 4);
}

void nf_jw_json(nf_jw *w, json_object *o)
{
	if (!o) {
		nf_jw_null(w);
		return;
	}
	sep(w);
	size_t n;
	const char *s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s)
		put(w, s, n);
	else
		w->oom = true;
}

char *nf_jw_done(nf_jw *w)
{
	put(w, "\n", 1);
	if (w->oom) {
		free(w->buf);
		w->buf = NULL;
		return NULL;
	}
	w->buf[w->len] = '\0';
	return w->buf;
}
