/* numafollow top: the agent's containers, their memory per node as bars, and
 * the migrations in flight with their progress, redrawn in place (ANSI: the
 * alternate screen, cursor home, erase to the end); q quits. Not a
 * terminal: the same lines, plain, once per refresh. Asks the agent's
 * GET /v1/containers and /v1/migrations each refresh, over either
 * transport. */
#include "cli.h"
#include "../lib/http.h"
#include "../lib/nf.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define BAR 12

typedef struct {
	bool tty;  /* stdout is a terminal: redraw in place */
	bool keys; /* stdin is a terminal in raw mode: q quits */
	struct termios saved;
	unsigned width;
	FILE *out; /* the frame, built in memory and written at once */
	char *buf;
	size_t len;
} screen;

static volatile sig_atomic_t interrupted, suspended;

static void on_signal(int sig)
{
	if (sig == SIGTSTP)
		suspended = 1;
	else
		interrupted = 1;
}

static uint64_t num(json_object *o, const char *key)
{
	return (uint64_t)nf_cli_num(o, key);
}

static void bar(FILE *f, uint64_t part, uint64_t whole)
{
	unsigned n = whole ? (unsigned)(part * BAR / whole) : 0;
	if (part && !n)
		n = 1; /* a little memory still shows */
	fputc('[', f);
	for (unsigned i = 0; i < BAR; i++)
		fputc(i < n ? '#' : '.', f);
	fputc(']', f);
}

/* The line's end: erase the rest of it on a terminal. */
static void eol(const screen *s)
{
	fputs(s->tty ? "\033[K\n" : "\n", s->out);
}

static void container_line(const screen *s, json_object *c)
{
	json_object *mem = json_object_object_get(c, "memory"), *pod;
	char name[128];
	uint64_t total = 0;
	json_object_object_foreach(mem, k0, v0)
	{
		(void)k0;
		total += json_object_get_int64(v0);
	}
	if (json_object_object_get_ex(c, "pod", &pod) && pod &&
	    strcmp(nf_cli_str(pod, "name"), "-") != 0)
		snprintf(name, sizeof(name), "%s/%s/%s", nf_cli_str(pod, "namespace"),
			 nf_cli_str(pod, "name"), nf_cli_str(c, "name"));
	else
		snprintf(name, sizeof(name), "%s", nf_cli_str(c, "name"));
	fprintf(s->out, "%-14.14s %-22.22s %-5.5s %8.1f ", nf_cli_str(c, "id"), name,
		nf_cli_str(c, "mems_effective"), nf_mib(total));
	json_object_object_foreach(mem, node, v)
	{
		fprintf(s->out, " %s", node);
		bar(s->out, json_object_get_int64(v), total);
		fprintf(s->out, "%7.1f", nf_mib(json_object_get_int64(v)));
	}
	fprintf(s->out, "  %s", nf_cli_str(c, "state"));
	eol(s);
}

static void migration_line(const screen *s, json_object *r)
{
	json_object *p = json_object_object_get(r, "progress");
	fprintf(s->out, "%5llu %-14.14s %-9s %3s->%-3s %-8s", (unsigned long long)num(r, "id"),
		nf_cli_str(r, "container"), nf_cli_str(r, "trigger"), nf_cli_str(r, "from"),
		nf_cli_str(r, "to"), nf_cli_str(r, "result"));
	if (p) {
		uint64_t done = num(p, "moved_bytes"), total = num(p, "total_bytes");
		uint64_t eta = num(p, "eta_s");
		fprintf(s->out, " %-7s ", nf_cli_str(p, "phase"));
		bar(s->out, done < total ? done : total, total);
		fprintf(s->out, " %7.1f/%-7.1f MiB %6.0f MiB/s", nf_mib(done), nf_mib(total),
			nf_mib(num(p, "rate_bytes_per_s")));
		if (eta)
			fprintf(s->out, " %llu:%02llu left", (unsigned long long)eta / 60,
				(unsigned long long)eta % 60);
	}
	eol(s);
}

static void frame(const screen *s, json_object *cs, json_object *ms)
{
	json_object *carr = json_object_object_get(cs, "containers");
	json_object *marr = json_object_object_get(ms, "migrations");
	size_t nc = json_object_array_length(carr), nm = 0;
	char when[32];
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	for (size_t i = 0; i < json_object_array_length(marr); i++) {
		const char *res = nf_cli_str(json_object_array_get_idx(marr, i), "result");
		nm += strcmp(res, "running") == 0 || strcmp(res, "queued") == 0;
	}
	if (s->tty)
		fputs("\033[H", s->out);
	fprintf(s->out, "numafollow top  %s  %zu containers, %zu migrations in flight%s", when, nc,
		nm, s->keys ? "  (q quits)" : "");
	eol(s);
	fprintf(s->out, "%-14s %-22s %-5s %8s  %s", "ID", "NAME", "MEMS", "MiB",
		"MEMORY PER NODE (MiB)  STATE");
	eol(s);
	for (size_t i = 0; i < nc; i++)
		container_line(s, json_object_array_get_idx(carr, i));
	eol(s);
	fprintf(s->out, "%5s %-14s %-9s %-8s %-8s %s", "MIGR", "CONTAINER", "TRIGGER", "NODES",
		"RESULT", "PROGRESS");
	eol(s);
	for (size_t i = 0; i < json_object_array_length(marr); i++) {
		json_object *r = json_object_array_get_idx(marr, i);
		const char *res = nf_cli_str(r, "result");
		if (strcmp(res, "running") == 0 || strcmp(res, "queued") == 0)
			migration_line(s, r);
	}
	if (!nm)
		fputs("(none)", s->out), eol(s);
	if (s->tty)
		fputs("\033[J", s->out);
}

/* Waits MS for q (or a signal); true: quit. */
static bool wait_key(const screen *s, unsigned ms)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	if (suspended) /* Ctrl-Z during the refresh */
		return false;
	if (!s->keys) {
		struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&t, NULL);
		return interrupted;
	}
	if (poll(&p, 1, ms) > 0) {
		char c;
		if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
			return true;
	}
	return interrupted;
}

static void screen_open(screen *s)
{
	struct winsize w;
	s->tty = isatty(STDOUT_FILENO);
	s->width = s->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col ? w.ws_col : 0;
	s->keys = s->tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s->saved) == 0;
	if (s->keys) {
		struct termios raw = s->saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	if (s->tty) /* the alternate screen, without the cursor */
		fputs("\033[?1049h\033[?25l", stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGQUIT, on_signal);
	if (s->tty)
		signal(SIGTSTP, on_signal);
}

static void screen_close(screen *s)
{
	if (s->tty)
		fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (s->keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &s->saved);
}

/* Ctrl-Z: the terminal as it was while top is stopped, the view back after. */
static void suspend(screen *s)
{
	suspended = 0;
	screen_close(s);
	signal(SIGTSTP, SIG_DFL);
	raise(SIGTSTP); /* stopped here until SIGCONT */
	screen_open(s);
}

/* One refresh: the frame on stdout, or the failure in E. */
static int refresh(const nf_cli_args *a, screen *s, nf_cli_error *e)
{
	_cleanup_json_ json_object *cs = NULL, *ms = NULL;
	int r = nf_cli_get(a, "/v1/containers", &cs, e);
	if (r == 0)
		r = nf_cli_get(a, "/v1/migrations?limit=200", &ms, e);
	if (r < 0)
		return r;
	if (!(s->out = open_memstream(&s->buf, &s->len)))
		return -ENOMEM;
	frame(s, cs, ms);
	fclose(s->out);
	struct winsize w; /* asked each time: the terminal may have been resized */
	unsigned rows = 0;
	if (s->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col)
		s->width = w.ws_col, rows = w.ws_row;
	/* each line cut at the terminal's width, so that nothing wraps, and the
	 * frame at its height, so that the header stays */
	unsigned row = 0;
	for (char *line = s->buf, *next; line && *line && (!rows || row + 1 < rows);
	     line = next, row++) {
		next = strchr(line, '\n');
		size_t n = next ? (size_t)(next - line) : strlen(line);
		size_t keep = s->width && n > s->width + 3 ? s->width : n; /* + "\033[K" */
		fwrite(line, 1, keep, stdout);
		if (keep < n && s->tty)
			fputs("\033[K", stdout);
		if (next)
			fputc('\n', stdout), next++;
	}
	if (!s->tty)
		fputc('\n', stdout);
	bool closed = fflush(stdout) == EOF || ferror(stdout);
	free(s->buf);
	s->buf = NULL;
	return closed ? -EPIPE : 0; /* a reader such as head(1) has what it wanted */
}

int nf_cli_top(const nf_cli_args *a)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	screen s = {0};
	unsigned ms = a->interval_ms ? a->interval_ms : 1000;
	int r = 0;
	nf_http_setup(true);
	screen_open(&s);
	for (unsigned i = 0; !a->iterations || i < a->iterations; i++) {
		if (suspended)
			suspend(&s);
		if ((r = refresh(a, &s, &e)) < 0)
			break;
		if (a->iterations && i + 1 == a->iterations)
			break;
		if (wait_key(&s, ms))
			break;
	}
	screen_close(&s);
	nf_http_teardown();
	return r < 0 && r != -EPIPE ? nf_cli_fail(&e, r) : 0;
}
