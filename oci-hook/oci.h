/* What an OCI hook is given: the stage, the runtime's state on stdin, the
 * bundle's config.json, and the hook's own config file. Pure parsers (no I/O)
 * so that unit tests and the fuzzer can reach every malformed input.
 *
 * oci-hook/'s one error convention: functions return 0 or a -errno (-EINVAL
 * for malformed input, -EFBIG for too large, -ENOMEM) and, on failure only,
 * put the reason a user reads in *RET_MSG (malloc'ed, the caller frees it;
 * RET_MSG may be NULL). RET_MSG is always the last parameter. */
#ifndef NF_OCI_H
#define NF_OCI_H

#include "../cgroup/nodeset.h"

#include <json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Runtimes send a few hundred bytes; a larger state is refused unparsed. */
#define NF_OCI_STATE_MAX (1024 * 1024)
/* config.json is read through a path the bundle controls (a FIFO, /dev/zero...). */
#define NF_OCI_CONFIG_MAX (4 * 1024 * 1024)

typedef enum {
	NF_STAGE_PRESTART,
	NF_STAGE_CREATE_RUNTIME,
	NF_STAGE_CREATE_CONTAINER,
	NF_STAGE_START_CONTAINER,
	NF_STAGE_POSTSTART,
	NF_STAGE_POSTSTOP,
} nf_stage;

/* "createRuntime" to NF_STAGE_CREATE_RUNTIME; -EINVAL for an unknown name. */
int nf_stage_parse(const char *name, nf_stage *ret);
const char *nf_stage_name(nf_stage s);
/* The stage a state's status implies, for a hook run without one (a hooks.d
 * file lists several stages but passes the same args): "creating" and
 * "created" are createRuntime, "running" poststart, "stopped" poststop.
 * (runc says "created" at poststart; registering again is harmless.) */
int nf_stage_from_status(const char *status, nf_stage *ret);

typedef struct {
	char *id;
	pid_t pid; /* 0 when absent (poststop) */
	char *status, *bundle;
	json_object *annotations; /* an object, empty when the state had none */
} nf_oci_state;

/* Parses the state JSON (runc's or crun's shape; "bundle" or "bundlePath")
 * and checks its types. */
int nf_oci_state_parse(const char *text, size_t len, nf_oci_state *ret, char **ret_msg);
/* What STAGE needs of a parsed state: a pid and an absolute bundle at every
 * stage but poststop. */
int nf_oci_state_check(const nf_oci_state *s, nf_stage stage, char **ret_msg);
void nf_oci_state_done(nf_oci_state *s);

typedef struct {
	bool has_mems; /* linux.resources.cpu.mems was set */
	nf_nodeset mems;
	json_object *annotations; /* an object, empty when the config had none */
} nf_oci_config;

/* The parts of a bundle's config.json the hook uses. */
int nf_oci_config_parse(const char *text, size_t len, nf_oci_config *ret, char **ret_msg);
void nf_oci_config_done(nf_oci_config *c);

#define NF_HOOK_BUDGET_MS 2000

/* /etc/numafollow/hook.conf: "name = value" lines, '#' comments. */
typedef struct {
	bool enabled;	    /* false: the hook does nothing */
	bool strict;	    /* failures exit 2, which fails the container's start */
	bool standalone;    /* migrate in the hook when the agent is unreachable */
	unsigned budget_ms; /* NF_HOOK_BUDGET_MS unless set */
	uint64_t max_rate;  /* the standalone migration's cap in bytes/s; 0: none */
	char *socket;
} nf_hook_conf;

int nf_hook_conf_default(nf_hook_conf *ret);
/* Sets one setting (as in the file) from a string. */
int nf_hook_conf_set(nf_hook_conf *c, const char *name, const char *value, char **ret_msg);
/* Applies TEXT over C's values; the reason names the line. */
/* A budget-ms value: milliseconds from 10 to 60000, else -EINVAL. */
int nf_hook_budget_parse(const char *s, unsigned *ret);
int nf_hook_conf_parse(const char *text, nf_hook_conf *c, char **ret_msg);
void nf_hook_conf_done(nf_hook_conf *c);

/* Returns R, with the formatted reason in *RET_MSG when RET_MSG is not NULL
 * (NULL there when even that allocation failed). */
int nf_oci_fail(int r, char **ret_msg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
