/* Which container a person means (names.h): the agent's ids, an id's
 * prefix, docker's names and Kubernetes' namespace/pod/container, matched
 * against the agent's container list. No I/O: unit-tested as it is. */
#include "names.h"
#include "cli.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *field(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		   ? json_object_get_string(v)
		   : NULL;
}

/* "namespace/pod/container" when C has all three, in BUF. */
static const char *kube_name(json_object *c, char *buf, size_t len)
{
	json_object *pod;
	const char *ns, *name, *ctr = field(c, "name");
	if (!json_object_object_get_ex(c, "pod", &pod) || !pod || !ctr ||
	    !(ns = field(pod, "namespace")) || !(name = field(pod, "name")))
		return NULL;
	snprintf(buf, len, "%s/%s/%s", ns, name, ctr);
	return buf;
}

typedef enum { BY_ID, BY_NAME, BY_PREFIX, BY_COUNT } match;

/* How well C answers to ARG; BY_COUNT: not at all. */
static match matches(json_object *c, const char *arg)
{
	char kube[768];
	const char *id = field(c, "id"), *name = field(c, "name");
	const char *k = kube_name(c, kube, sizeof(kube));
	if (!id)
		return BY_COUNT;
	if (strcmp(id, arg) == 0)
		return BY_ID;
	if ((name && strcmp(name, arg) == 0) || (k && strcmp(k, arg) == 0))
		return BY_NAME;
	if (*arg && strncmp(id, arg, strlen(arg)) == 0)
		return BY_PREFIX;
	return BY_COUNT;
}

/* "ID (NAME)" of each container in LIST (at most 20), comma-separated. */
static char *describe(json_object **list, size_t n)
{
	char *out = strdup(""), *next;
	for (size_t i = 0; out && i < n && i < 20; i++) {
		char kube[768];
		const char *k = kube_name(list[i], kube, sizeof(kube)),
			   *name = field(list[i], "name");
		const char *shown = k ? k : name;
		next = nf_cli_format("%s%s%s%s%s", out, i ? ", " : "", field(list[i], "id"),
				     shown ? " " : "", shown ? shown : "");
		free(out);
		out = next;
	}
	if (out && n > 20) {
		next = nf_cli_format("%s and %zu more", out, n - 20);
		free(out);
		out = next;
	}
	return out;
}

int nf_cli_resolve(json_object *containers, const char *arg, const char **ret_id, char **ret_msg)
{
	size_t n = json_object_array_length(containers), found[BY_COUNT] = {0};
	/* every container, then those of each kind of match */
	_cleanup_free_ json_object **all = calloc((BY_COUNT + 1) * (n + 1), sizeof(*all));
	json_object **by[BY_COUNT];
	*ret_msg = NULL;
	if (!all)
		return -ENOMEM;
	for (match m = 0; m < BY_COUNT; m++)
		by[m] = all + (m + 1) * (n + 1);
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(containers, i);
		match m = matches(c, arg);
		all[i] = c;
		if (m < BY_COUNT)
			by[m][found[m]++] = c;
	}
	/* the strongest kind of match that has any decides */
	for (match m = 0; m < BY_COUNT; m++) {
		if (found[m] == 1) {
			*ret_id = field(by[m][0], "id");
			return 0;
		}
		if (found[m] > 1) {
			_cleanup_free_ char *list = describe(by[m], found[m]);
			*ret_msg =
			    list ? nf_cli_format("'%s' is ambiguous: it names %zu containers: %s",
						 arg, found[m], list)
				 : NULL;
			return *ret_msg ? -ENOTUNIQ : -ENOMEM;
		}
	}
	_cleanup_free_ char *list = describe(all, n);
	*ret_msg = !list ? NULL
		   : n	 ? nf_cli_format("no container '%s'; the agent knows: %s", arg, list)
			 : nf_cli_format("no container '%s'; the agent knows none", arg);
	return *ret_msg ? -ENOENT : -ENOMEM;
}
