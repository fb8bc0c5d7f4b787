/* Names of docker containers, asked of dockerd: docker runs no OCI hook, and
 * its cgroups carry only the id. One thread asks dockerd over its socket
 * (GET /containers/json filtered on the id), so a slow or absent dockerd
 * holds nothing up. */
#ifndef NF_DOCKER_H
#define NF_DOCKER_H

#include <stdbool.h>

typedef struct nf_docker nf_docker;

/* A lookup's end, on the lookup thread: NAME is the container's name without
 * docker's leading '/', or NULL when dockerd did not give one; then RETRY
 * says whether asking again later may help (dockerd down, slow or failing;
 * not when it does not know the id). */
typedef void (*nf_docker_fn)(void *userdata, const char *id, const char *name, bool retry);

/* A lookup thread for dockerd at SOCKET. */
int nf_docker_new(const char *socket, nf_docker_fn fn, void *userdata, nf_docker **ret);
/* Queues a lookup of ID (64 hex digits); false when the queue is full. */
bool nf_docker_ask(nf_docker *d, const char *id);
/* Stops the thread (a lookup under way ends first); D may be NULL. */
void nf_docker_free(nf_docker *d);

/* The name in dockerd's answer to GET /containers/json filtered on one id
 * (BODY), without its leading '/'; -ENOENT when the list is empty, -EBADMSG
 * when it has no name that can be shown. */
int nf_docker_parse_name(const char *body, char **ret);

#endif
