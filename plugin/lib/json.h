/* json-c helpers shared by the CLI, the agent and the hook. */
#ifndef NF_JSON_H
#define NF_JSON_H

#include "../../cgroup/nodeset.h"
#include "../../cgroup/util.h"

#include <json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline void nf_json_putp(json_object **o)
{
	json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(nf_json_putp)))

/* Adds V as KEY of O; false, V released, when V is NULL (json-c out of memory)
 * or the add fails: chains of them build an object with every allocation
 * checked. */
static inline bool nf_json_add(json_object *o, const char *key, json_object *v)
{
	if (v && json_object_object_add(o, key, v) == 0)
		return true;
	json_object_put(v);
	return false;
}

static inline bool nf_json_append(json_object *array, json_object *v)
{
	if (v && json_object_array_add(array, v) == 0)
		return true;
	json_object_put(v);
	return false;
}

/* S as a JSON string, made well-formed UTF-8 (a cgroup's name, and what is
 * derived from it, may not be); NULL when out of memory. */
static inline json_object *nf_json_text(const char *s)
{
	if (nf_utf8_valid(s))
		return json_object_new_string(s);
	char *clean = nf_utf8_clean(s);
	json_object *o = clean ? json_object_new_string(clean) : NULL;
	free(clean);
	return o;
}

/* A node set as the kernel's list string ("0-1,3"). */
static inline json_object *nf_json_nodeset(const nf_nodeset *s)
{
	char buf[NF_NODESET_STRLEN];
	return json_object_new_string(nf_nodeset_format(s, buf, sizeof(buf)));
}

/* {"node": bytes} for the nodes with any: A[n] + B[n] over N nodes (either may be
 * NULL); NULL when out of memory. */
static inline json_object *nf_json_per_node(const uint64_t *a, const uint64_t *b, unsigned n)
{
	json_object *o = json_object_new_object();
	for (unsigned i = 0; o && i < n; i++) {
		uint64_t v = (a ? a[i] : 0) + (b ? b[i] : 0);
		char key[16];
		if (!v)
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object *j = json_object_new_int64(v);
		if (!j || json_object_object_add(o, key, j) < 0) {
			json_object_put(j);
			json_object_put(o);
			return NULL;
		}
	}
	return o; /* NULL when out of memory */
}

/* O's member KEY when it is a string, else NULL. */
static inline const char *nf_json_string(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) &&
		       json_object_is_type(v, json_type_string)
		   ? json_object_get_string(v)
		   : NULL;
}

/* Whether annotation KEY of ANN is set to "true" (WANT) or "false" (!WANT). */
static inline bool nf_json_flag(json_object *ann, const char *key, bool want)
{
	const char *v = nf_json_string(ann, key);
	return v && strcmp(v, want ? "true" : "false") == 0;
}

/* Annotations' shape: an object whose every value is a string. */
static inline bool nf_json_is_string_map(json_object *o)
{
	if (!json_object_is_type(o, json_type_object))
		return false;
	json_object_object_foreach(o, key, val)
	{
		(void)key;
		if (!json_object_is_type(val, json_type_string))
			return false;
	}
	return true;
}

#endif
