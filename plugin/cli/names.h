/* Containers by name, for the commands that go through the agent. */
#ifndef NF_CLI_NAMES_H
#define NF_CLI_NAMES_H

#include <json.h>

/* Which of CONTAINERS (GET /v1/containers' array) ARG names: an id, else a
 * name (docker's, the registration's) or "namespace/pod/container", else an
 * id's prefix; the first kind that matches any decides. 0 with its id in
 * *RET_ID (CONTAINERS' string); -ENOENT (none) or -ENOTUNIQ (several), with
 * a message naming the candidates in *RET_MSG (to free); -ENOMEM. */
int nf_cli_resolve(json_object *containers, const char *arg, const char **ret_id, char **ret_msg);

#endif
