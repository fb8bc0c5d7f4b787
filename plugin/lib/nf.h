/* What numafollow's three programs share: the version, the agent's default
 * socket and the exit statuses. */
#ifndef NF_NF_H
#define NF_NF_H

#define NF_VERSION	  "0.2.0"
#define NF_DEFAULT_SOCKET "/run/numafollow/numafollow.sock"

/* numafollow: 0 done and verified, 1 partial (a residue stayed), 2 bad usage or
 * input, 3 system error. numafollowd: 0 clean stop, 2 bad usage or config, 3
 * cannot start. numafollow-hook: 0 always (a failing hook kills the container),
 * but 2 in strict mode. */
enum {
	NF_EXIT_OK = 0,
	NF_EXIT_PARTIAL = 1,
	NF_EXIT_USAGE = 2,
	NF_EXIT_SYSTEM = 3,
	NF_EXIT_STRICT = 2,
};

#endif
