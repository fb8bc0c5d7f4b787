/* The progress line of migrate and move: one line on stderr, redrawn in
 * place as the engine reports (a bar, MiB moved of MiB to move, the rate,
 * the time left, the phase), as pv and rsync --info=progress2 draw theirs. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BAR 24

/* A terminal's foreground job draws; one in the background would stop on
 * SIGTTOU (stty tostop) halfway through a staged move. */
bool nf_cli_progress_wanted(const nf_cli_args *a)
{
	bool tty = isatty(STDERR_FILENO);
	if (a->quiet || (tty && tcgetpgrp(STDERR_FILENO) != getpgrp()))
		return false;
	return a->progress || (!a->json && tty);
}

static void clock_text(uint64_t s, char buf[32])
{
	if (s >= 3600)
		snprintf(buf, 32, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
	else
		snprintf(buf, 32, "%llu:%02llu", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
}

/* "move    [#########...............]  123.4/512.0 MiB  210 MiB/s  0:02 left",
 * and at the end "done ... 0:05 in all" */
static bool draw(const nf_progress *p, bool last)
{
	char bar[BAR + 1], when[32];
	unsigned fill = p->total_bytes ? (unsigned)(BAR * p->done_bytes / p->total_bytes) : last;
	fill = fill < BAR ? fill : BAR;
	if (last && p->done_bytes >= p->total_bytes)
		fill = BAR;
	memset(bar, '#', fill);
	memset(bar + fill, '.', BAR - fill);
	bar[BAR] = '\0';
	if (last)
		clock_text(p->elapsed_ns / 1000000000, when);
	else if (nf_progress_eta_s(p))
		clock_text(nf_progress_eta_s(p), when);
	else
		snprintf(when, sizeof(when), "-:--");
	fprintf(stderr, "\r%-7s [%s] %7.1f/%.1f MiB %6.0f MiB/s  %s %s\033[K%s",
		last ? "done" : nf_phase_name(p->phase), bar, nf_mib(p->done_bytes),
		nf_mib(p->total_bytes), nf_mib(nf_progress_rate(p)), when, last ? "in all" : "left",
		last ? "\n" : "");
	return fflush(stderr) == 0 && !ferror(stderr);
}

void nf_cli_progress(const nf_progress *p, void *userdata)
{
	nf_cli_progress_line *l = userdata;
	l->last = *p;
	if (!l->broken)
		l->broken = !draw(p, false); /* nobody reads it any more */
	l->drawn = true;
}

void nf_cli_progress_end(nf_cli_progress_line *l, bool ok)
{
	if (!l->drawn || l->broken)
		return;
	if (ok)
		draw(&l->last, true);
	else /* the error follows on a line of its own */
		fputs("\n", stderr);
}
