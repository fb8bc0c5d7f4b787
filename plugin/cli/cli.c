/* The CLI's error record and JSON output, shared by its commands. */
#include "cli.h"
#include "../lib/nf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void error_set(nf_cli_error *e, bool usage, const char *fmt, va_list ap)
{
	free(e->msg);
	e->usage = usage;
	if (vasprintf(&e->msg, fmt, ap) < 0)
		e->msg = NULL; /* undefined after a failure; nf_cli_fail then says strerror(-r) */
}

int nf_cli_usage(nf_cli_error *e, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_set(e, true, fmt, ap);
	va_end(ap);
	return r;
}

int nf_cli_system(nf_cli_error *e, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_set(e, false, fmt, ap);
	va_end(ap);
	return r;
}

int nf_cli_fail(nf_cli_error *e, int r)
{
	/* Without a message, an allocation failed: a system error (E still zeroed). */
	fprintf(stderr, "numafollow: %s\n",
		e->msg	       ? e->msg
		: r == -ENOMEM ? "out of memory"
			       : strerror(-r));
	return e->usage ? NF_EXIT_USAGE : NF_EXIT_SYSTEM;
}

char *nf_cli_format(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL; /* vasprintf leaves it undefined */
	va_end(ap);
	return s;
}

void nf_cli_error_done(nf_cli_error *e)
{
	free(e->msg);
	e->msg = NULL;
}

int nf_cli_add(json_object *o, const char *key, json_object *v)
{
	return nf_json_add(o, key, v) ? 0 : -ENOMEM;
}

int nf_cli_append(json_object *array, json_object *v)
{
	return nf_json_append(array, v) ? 0 : -ENOMEM;
}

int nf_cli_print_json(json_object *o)
{
	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return -ENOMEM;
	puts(s);
	return 0;
}
