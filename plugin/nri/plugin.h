/* numafollow-nri's life: connect to the runtime's NRI socket (or take the
 * pre-connected one on fd 3), register, answer the runtime's requests, keep
 * the agent told, run the re-pins, and connect again when the runtime goes
 * away. */
#ifndef NF_NRI_PLUGIN_H
#define NF_NRI_PLUGIN_H

#include <stdbool.h>

#define NF_NRI_DEFAULT_SOCKET "/var/run/nri/nri.sock"
#define NF_NRI_DEFAULT_STATE  "/var/lib/numafollow/nri"

typedef struct {
	const char *nri_socket, *agent_socket, *state_dir;
	const char *name, *idx;	 /* what it registers as */
	const char *cgroup_root; /* where the container cgroups' memory.* files are */
	bool repin;		 /* the gentle CRI re-pin (off by default) */
	unsigned move_timeout_s;
	unsigned agent_check_s; /* how often an idle plugin checks for an agent restart */
	int prelaunched_fd;	/* the runtime's socket when it launched the plugin; else -1 */
} nf_nri_config;

/* Runs until SIGTERM or SIGINT (or, pre-launched, until the runtime closes
 * the connection). The exit status: 0, or 3 when it cannot start. */
int nf_nri_run(const nf_nri_config *cfg);

#endif
