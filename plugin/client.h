/* The CLI's agent commands: status, ps, history, migrate --via-agent (libcurl). */
#ifndef NF_CLIENT_H
#define NF_CLIENT_H

#include <stdbool.h>

typedef struct {
	const char *cmd; /* status, ps, history or migrate */
	const char *arg; /* the container id, or NULL */
	const char *socket, *url, *token_file;
	bool json;
} nf_client_args;

/* Runs the command; returns the exit status (0, 1 partial, 2 usage, 3 system). */
int nf_client(const nf_client_args *a);

#endif
