#include "oci.h"
#include "../cgroup/util.h"
#include "../plugin/lib/json.h"
#include "../plugin/lib/nf.h"

#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

int nf_oci_fail(int r, char **ret_msg, const char *fmt, ...)
{
	va_list ap;
	if (!ret_msg)
		return r;
	va_start(ap, fmt);
	if (vasprintf(ret_msg, fmt, ap) < 0)
		*ret_msg = NULL;
	va_end(ap);
	return r;
}

static const char *const stages[] = {
    [NF_STAGE_PRESTART] = "prestart",
    [NF_STAGE_CREATE_RUNTIME] = "createRuntime",
    [NF_STAGE_CREATE_CONTAINER] = "createContainer",
    [NF_STAGE_START_CONTAINER] = "startContainer",
    [NF_STAGE_POSTSTART] = "poststart",
    [NF_STAGE_POSTSTOP] = "poststop",
};

int nf_stage_parse(const char *name, nf_stage *ret)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(stages); i++)
		if (strcmp(name, stages[i]) == 0) {
			*ret = i;
			return 0;
		}
	return -EINVAL;
}

const char *nf_stage_name(nf_stage s)
{
	return stages[s];
}

int nf_stage_from_status(const char *status, nf_stage *ret)
{
	static const struct {
		const char *status;
		nf_stage stage;
	} map[] = {{"creating", NF_STAGE_CREATE_RUNTIME},
		   {"created", NF_STAGE_CREATE_RUNTIME},
		   {"running", NF_STAGE_POSTSTART},
		   {"stopped", NF_STAGE_POSTSTOP}};
	for (size_t i = 0; status && i < NF_ARRAY_SIZE(map); i++)
		if (strcmp(status, map[i].status) == 0) {
			*ret = map[i].stage;
			return 0;
		}
	return -EINVAL;
}

/* TEXT as one complete JSON object (no trailing bytes), or NULL. */
static json_object *parse_object(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, text, len) : NULL;
	bool complete = tok && json_tokener_get_error(tok) == json_tokener_success &&
			(size_t)json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!complete || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* PARENT's "annotations": an object of strings, or a new empty object when
 * absent or null. */
static int annotations_of(json_object *parent, json_object **ret, char **ret_msg)
{
	json_object *v;
	if (!json_object_object_get_ex(parent, "annotations", &v) ||
	    json_object_is_type(v, json_type_null)) {
		*ret = json_object_new_object();
		return *ret ? 0 : nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
	}
	if (!nf_json_is_string_map(v))
		return nf_oci_fail(-EINVAL, ret_msg, "'annotations' must be an object of strings");
	*ret = json_object_get(v);
	return 0;
}

/* An optional string member; NULL when absent or null, -EINVAL when not a string. */
static int opt_string(json_object *o, const char *key, const char **ret)
{
	json_object *v;
	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = json_object_get_string(v);
	return 0;
}

static int state_fields(json_object *o, nf_oci_state *s, char **ret_msg)
{
	const char *id, *status, *bundle;
	json_object *v;
	if (opt_string(o, "id", &id) < 0 || !id || !*id || strlen(id) > 255)
		return nf_oci_fail(-EINVAL, ret_msg,
				   "'id' must be a string of 1 to 255 characters");
	if (!(s->id = strdup(id)))
		return nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
	if (json_object_object_get_ex(o, "pid", &v) && !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > INT_MAX)
			return nf_oci_fail(-EINVAL, ret_msg,
					   "'pid' must be a non-negative integer");
		s->pid = json_object_get_int64(v);
	}
	if (opt_string(o, "status", &status) < 0)
		return nf_oci_fail(-EINVAL, ret_msg, "'status' must be a string");
	if (opt_string(o, "bundle", &bundle) < 0 ||
	    (!bundle && opt_string(o, "bundlePath", &bundle) < 0))
		return nf_oci_fail(-EINVAL, ret_msg, "'bundle' must be a string");
	if ((status && !(s->status = strdup(status))) || (bundle && !(s->bundle = strdup(bundle))))
		return nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
	return annotations_of(o, &s->annotations, ret_msg);
}

int nf_oci_state_parse(const char *text, size_t len, nf_oci_state *ret, char **ret_msg)
{
	if (len > NF_OCI_STATE_MAX)
		return nf_oci_fail(-EFBIG, ret_msg, "the state is larger than 1 MiB");
	json_object *o = parse_object(text, len);
	if (!o)
		return nf_oci_fail(-EINVAL, ret_msg, "the state is not a JSON object");
	nf_oci_state s = {0};
	int r = state_fields(o, &s, ret_msg);
	json_object_put(o);
	if (r < 0) {
		nf_oci_state_done(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int nf_oci_state_check(const nf_oci_state *s, nf_stage stage, char **ret_msg)
{
	if (stage == NF_STAGE_POSTSTOP)
		return 0;
	if (s->pid == 0)
		return nf_oci_fail(
		    -EINVAL, ret_msg,
		    "'pid' is missing or 0 (the runtime gives it at every stage but poststop)");
	if (!s->bundle || s->bundle[0] != '/')
		return nf_oci_fail(-EINVAL, ret_msg,
				   "'bundle' (or 'bundlePath') must be an absolute path");
	return 0;
}

void nf_oci_state_done(nf_oci_state *s)
{
	free(s->id);
	free(s->status);
	free(s->bundle);
	json_object_put(s->annotations);
	*s = (nf_oci_state){0};
}

/* O's member KEY as an object (NULL when absent); false when it is something else. */
static bool member_object(json_object *o, const char *key, json_object **ret)
{
	json_object *v = NULL;
	*ret = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return true;
	*ret = v;
	return json_object_is_type(v, json_type_object);
}

static int config_fields(json_object *o, nf_oci_config *c, char **ret_msg)
{
	json_object *linux_, *res, *cpu;
	const char *mems;
	if (!member_object(o, "linux", &linux_) || !member_object(linux_, "resources", &res) ||
	    !member_object(res, "cpu", &cpu))
		return nf_oci_fail(
		    -EINVAL, ret_msg,
		    "'linux', 'linux.resources' and 'linux.resources.cpu' must be objects");
	if (cpu && opt_string(cpu, "mems", &mems) < 0)
		return nf_oci_fail(-EINVAL, ret_msg, "'linux.resources.cpu.mems' must be a string");
	if (cpu && mems && *mems) {
		if (nf_nodeset_parse(mems, &c->mems) < 0)
			return nf_oci_fail(
			    -EINVAL, ret_msg,
			    "'linux.resources.cpu.mems' is not a node list like \"0-1,3\"");
		c->has_mems = true;
	}
	return annotations_of(o, &c->annotations, ret_msg);
}

int nf_oci_config_parse(const char *text, size_t len, nf_oci_config *ret, char **ret_msg)
{
	json_object *o = parse_object(text, len);
	if (!o)
		return nf_oci_fail(-EINVAL, ret_msg, "config.json is not a JSON object");
	nf_oci_config c = {0};
	int r = config_fields(o, &c, ret_msg);
	json_object_put(o);
	if (r < 0) {
		nf_oci_config_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void nf_oci_config_done(nf_oci_config *c)
{
	json_object_put(c->annotations);
	*c = (nf_oci_config){0};
}

int nf_hook_conf_default(nf_hook_conf *ret)
{
	*ret = (nf_hook_conf){.enabled = true, .standalone = true, .budget_ms = NF_HOOK_BUDGET_MS};
	ret->socket = strdup(NF_DEFAULT_SOCKET);
	return ret->socket ? 0 : -ENOMEM;
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
										    "off", "0"};
	for (size_t i = 0; i < NF_ARRAY_SIZE(yes); i++)
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*ret = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	return -EINVAL;
}

int nf_hook_conf_set(nf_hook_conf *c, const char *name, const char *value, char **ret_msg)
{
	bool *flag = strcmp(name, "enabled") == 0      ? &c->enabled
		     : strcmp(name, "strict") == 0     ? &c->strict
		     : strcmp(name, "standalone") == 0 ? &c->standalone
						       : NULL;
	uint64_t v;
	if (flag)
		return parse_bool(value, flag) < 0
			   ? nf_oci_fail(-EINVAL, ret_msg, "expected true or false")
			   : 0;
	if (strcmp(name, "budget-ms") == 0)
		return nf_hook_budget_parse(value, &c->budget_ms) < 0
			   ? nf_oci_fail(-EINVAL, ret_msg,
					 "expected a number of milliseconds from 10 to 60000")
			   : 0;
	if (strcmp(name, "max-rate") == 0) {
		if (nf_parse_u64(value, NULL, &v) < 0 || v > 1 << 20)
			return nf_oci_fail(-EINVAL, ret_msg,
					   "expected a number of MiB/s from 0 (no cap) to 1048576");
		c->max_rate = v << 20;
		return 0;
	}
	if (strcmp(name, "socket") == 0) {
		if (value[0] != '/')
			return nf_oci_fail(-EINVAL, ret_msg, "expected an absolute path");
		char *s = strdup(value);
		if (!s)
			return nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
		free(c->socket);
		c->socket = s;
		return 0;
	}
	return nf_oci_fail(-EINVAL, ret_msg,
			   "unknown setting (enabled, strict, standalone, budget-ms, max-rate, "
			   "socket)");
}

int nf_hook_budget_parse(const char *s, unsigned *ret)
{
	uint64_t v;
	if (nf_parse_u64(s, NULL, &v) < 0 || v < 10 || v > 60000)
		return -EINVAL;
	*ret = v;
	return 0;
}

int nf_hook_conf_parse(const char *text, nf_hook_conf *c, char **ret_msg)
{
	unsigned n = 0;
	for (const char *line = text; *line;) {
		const char *nl = strchrnul(line, '\n');
		_cleanup_free_ char *copy = strndup(line, nl - line), *msg = NULL;
		char *name, *value;
		if (!copy)
			return nf_oci_fail(-ENOMEM, ret_msg, "out of memory");
		n++;
		line = *nl ? nl + 1 : nl;
		int r = nf_conf_line(copy, &name, &value);
		if (r < 0)
			return nf_oci_fail(r, ret_msg, "line %u: expected 'name = value'", n);
		if (r > 0 && (r = nf_hook_conf_set(c, name, value, &msg)) < 0)
			return nf_oci_fail(r, ret_msg, "line %u: %s: %s", n, name,
					   msg ? msg : strerror(-r));
	}
	return 0;
}

void nf_hook_conf_done(nf_hook_conf *c)
{
	free(c->socket);
	c->socket = NULL;
}
