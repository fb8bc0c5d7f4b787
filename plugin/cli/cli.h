/* What the CLI's files share: the command line, the record that carries a
 * failure up to the one message its command prints, and output helpers.
 * numafollow.c parses and dispatches; local.c runs show and migrate on the
 * cgroup file system; client.c asks the agent. */
#ifndef NF_CLI_H
#define NF_CLI_H

#include "../lib/json.h"
#include "../lib/progress.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
	const char *cmd;
	const char *arg; /* the CGROUP, or the container id for the agent's commands */
	const char *to, *from;
	bool dry_run, json, via_agent, help, version;
	bool progress, quiet; /* --progress: the line on stderr anyway; --quiet: never */
	bool follow;	      /* history --follow: records as they end */
	unsigned iterations;  /* top -n: refreshes, then exit; 0: until q */
	unsigned interval_ms; /* top --interval */
	unsigned retries;
	const char *socket, *url, *token_file;
	const char *method; /* --method, or NULL: auto */
	unsigned threads;   /* --threads, 0: the mover's default */
	uint64_t max_rate;  /* --max-rate in bytes/s, 0: unthrottled */
	uint64_t budget_ms; /* --budget-ms, 0: none */
} nf_cli_args;

/* Why a command failed, said where the failure is understood (whose input,
 * which path), printed at the command's top by nf_cli_fail(). */
typedef struct {
	bool usage; /* the user's input is at fault, not the system */
	char *msg;
} nf_cli_error;

/* Fill *E (the user's input at fault, or the system) and return R, a -errno. */
int nf_cli_usage(nf_cli_error *e, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int nf_cli_system(nf_cli_error *e, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The one translation of a failure R (a -errno) to an exit status: prints
 * "numafollow: <message>" on stderr and returns NF_EXIT_USAGE or NF_EXIT_SYSTEM. */
int nf_cli_fail(nf_cli_error *e, int r);
void nf_cli_error_done(nf_cli_error *e);
/* A printf-formatted string to free, or NULL when out of memory. */
char *nf_cli_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Adds V as O's KEY; 0, or -ENOMEM when V is NULL (json-c out of memory) or
 * the add failed, V then released. */
int nf_cli_add(json_object *o, const char *key, json_object *v);
int nf_cli_append(json_object *array, json_object *v);
/* O, pretty, on stdout; -ENOMEM when json-c cannot format it. */
int nf_cli_print_json(json_object *o);

static inline double nf_mib(uint64_t bytes)
{
	return bytes / 1048576.0;
}

/* The progress line on stderr (progress.c): whether A wants it (--progress,
 * or stderr a terminal without --json; never with --quiet); the engine's
 * callback, with an nf_cli_progress_line as its data; and its last state,
 * drawn once more with the time taken and a newline. A line nobody reads
 * (stderr closed, a pipe's reader gone) is not drawn again. */
typedef struct {
	nf_progress last;
	bool drawn, broken;
} nf_cli_progress_line;
bool nf_cli_progress_wanted(const nf_cli_args *a);
void nf_cli_progress(const nf_progress *p, void *userdata);
/* OK: the run ended (with or without a residue), else it failed. */
void nf_cli_progress_end(nf_cli_progress_line *l, bool ok);

/* GET PATH from the agent (client.c), its JSON answer in *RET; a failure
 * said in E. */
int nf_cli_get(const nf_cli_args *a, const char *path, json_object **ret, nf_cli_error *e);

/* The commands, each returning the exit status. */
/* Member KEY of an answer's object O: its text ("-" when absent or empty),
 * its number (0 when absent). */
const char *nf_cli_str(json_object *o, const char *key);
int64_t nf_cli_num(json_object *o, const char *key);

int nf_cli_show(const nf_cli_args *a);
int nf_cli_migrate(const nf_cli_args *a);
int nf_cli_move(const nf_cli_args *a);
int nf_cli_agent(const nf_cli_args *a); /* status, ps, history, migrate/move --via-agent */
int nf_cli_top(const nf_cli_args *a);

#endif
