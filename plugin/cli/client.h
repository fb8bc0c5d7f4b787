/* The CLI's agent commands: status, ps, history, migrate --via-agent (libcurl),
 * and what the CLI's two halves share: exit codes, messages, output. */
#ifndef NF_CLIENT_H
#define NF_CLIENT_H

#include <json.h>
#include <stdbool.h>
#include <stdint.h>

/* "numafollow: <message>" on stderr; returns CODE. */
int nf_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nf_cli_print_json(json_object *o);
static inline double nf_mib(uint64_t bytes)
{
	return bytes / 1048576.0;
}

typedef struct {
	const char *cmd; /* status, ps, history or migrate */
	const char *arg; /* the container id, or NULL */
	const char *socket, *url, *token_file;
	bool json;
} nf_client_args;

/* Runs the command; returns the exit status (0, 1 partial, 2 usage, 3 system). */
int nf_client(const nf_client_args *a);

#endif
