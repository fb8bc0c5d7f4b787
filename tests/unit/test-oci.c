#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../oci-hook/oci.h"
#include "../../cgroup/util.h"
#include "../../plugin/lib/json.h"

#include <string.h>

/* Captured from runc 1.1.5 and crun 1.8.1 running this project's VM test bundle. */
static const char runc_create[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"t1\",\"status\":\"creating\",\"pid\":29169,"
    "\"bundle\":\"/tmp/ocib\",\"annotations\":{\"io.kubernetes.cri.container-name\":\"web\"}}";
static const char runc_poststop[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"t1\",\"status\":\"stopped\",\"bundle\":\"/tmp/ocib\","
    "\"annotations\":{\"io.kubernetes.cri.container-name\":\"web\"}}";
static const char crun_create[] =
    "{\"ociVersion\":\"1.0\",\"id\":\"t1\",\"pid\":132,\"root\":\"rootfs\",\"bundle\":\"/tmp/"
    "ocib\",\"status\":\"created\",\"annotations\":{\"io.kubernetes.cri.container-name\":"
    "\"web\"}}";
static const char crun_poststop[] =
    "{\"ociVersion\":\"1.0\",\"id\":\"t1\",\"pid\":0,\"root\":\"rootfs\",\"bundle\":\"/tmp/ocib\","
    "\"status\":\"stopped\",\"annotations\":{}}";

/* Parses TEXT and, with NEED_PID, checks it for createRuntime; S is left
 * untouched (zeroed) on failure, and the reason is in *RET_MSG. */
static int parse(const char *text, bool need_pid, nf_oci_state *s, char **ret_msg)
{
	int r = nf_oci_state_parse(text, strlen(text), s, ret_msg);
	if (r == 0 && need_pid && (r = nf_oci_state_check(s, NF_STAGE_CREATE_RUNTIME, ret_msg)) < 0)
		nf_oci_state_done(s);
	return r;
}

/* Parses TEXT as a valid state: 0, and no message. */
static void parse_ok(const char *text, bool need_pid, nf_oci_state *s)
{
	char *msg = NULL;
	assert_int_equal(parse(text, need_pid, s, &msg), 0);
	assert_null(msg);
}

static void state_runtimes(void **state)
{
	nf_oci_state s;
	(void)state;
	parse_ok(runc_create, true, &s);
	assert_string_equal(s.id, "t1");
	assert_int_equal(s.pid, 29169);
	assert_string_equal(s.status, "creating");
	assert_string_equal(s.bundle, "/tmp/ocib");
	assert_string_equal(nf_json_string(s.annotations, "io.kubernetes.cri.container-name"),
			    "web");
	nf_oci_state_done(&s);

	parse_ok(crun_create, true, &s);
	assert_int_equal(s.pid, 132);
	assert_string_equal(s.status, "created");
	nf_oci_state_done(&s);

	/* poststop: runc leaves pid out, crun sends 0 */
	parse_ok(runc_poststop, false, &s);
	assert_int_equal(s.pid, 0);
	nf_oci_state_done(&s);
	parse_ok(crun_poststop, false, &s);
	assert_int_equal(s.pid, 0);
	assert_int_equal(json_object_object_length(s.annotations), 0);
	nf_oci_state_done(&s);
}

static void state_variants(void **state)
{
	nf_oci_state s;
	(void)state;
	/* older runtimes: bundlePath; no annotations at all, or null */
	parse_ok("{\"id\":\"a\",\"pid\":7,\"bundlePath\":\"/b\"}", true, &s);
	assert_string_equal(s.bundle, "/b");
	assert_null(s.status);
	assert_non_null(s.annotations);
	assert_int_equal(json_object_object_length(s.annotations), 0);
	nf_oci_state_done(&s);
	parse_ok("{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\",\"annotations\":null}", true, &s);
	assert_int_equal(json_object_object_length(s.annotations), 0);
	nf_oci_state_done(&s);
	/* poststop needs neither pid nor bundle */
	parse_ok("{\"id\":\"a\"}", false, &s);
	assert_null(s.bundle);
	nf_oci_state_done(&s);
}

static void state_malformed(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"", "the state is not a JSON object"},
	    {"not json", "the state is not a JSON object"},
	    {"[1,2]", "the state is not a JSON object"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\"} trailing",
	     "the state is not a JSON object"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\"", "the state is not a JSON object"},
	    {"{\"pid\":7,\"bundle\":\"/b\"}", "'id' must be a string of 1 to 255 characters"},
	    {"{\"id\":\"\",\"pid\":7,\"bundle\":\"/b\"}",
	     "'id' must be a string of 1 to 255 characters"},
	    {"{\"id\":42,\"pid\":7,\"bundle\":\"/b\"}",
	     "'id' must be a string of 1 to 255 characters"},
	    {"{\"id\":\"a\",\"bundle\":\"/b\"}",
	     "'pid' is missing or 0 (the runtime gives it at every stage but poststop)"},
	    {"{\"id\":\"a\",\"pid\":0,\"bundle\":\"/b\"}",
	     "'pid' is missing or 0 (the runtime gives it at every stage but poststop)"},
	    {"{\"id\":\"a\",\"pid\":\"7\",\"bundle\":\"/b\"}",
	     "'pid' must be a non-negative integer"},
	    {"{\"id\":\"a\",\"pid\":-7,\"bundle\":\"/b\"}", "'pid' must be a non-negative integer"},
	    {"{\"id\":\"a\",\"pid\":7.5,\"bundle\":\"/b\"}",
	     "'pid' must be a non-negative integer"},
	    {"{\"id\":\"a\",\"pid\":4294967303,\"bundle\":\"/b\"}",
	     "'pid' must be a non-negative integer"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\",\"status\":1}",
	     "'status' must be a string"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":[\"/b\"]}", "'bundle' must be a string"},
	    {"{\"id\":\"a\",\"pid\":7}", "'bundle' (or 'bundlePath') must be an absolute path"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"rel/b\"}",
	     "'bundle' (or 'bundlePath') must be an absolute path"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\",\"annotations\":[]}",
	     "'annotations' must be an object of strings"},
	    {"{\"id\":\"a\",\"pid\":7,\"bundle\":\"/b\",\"annotations\":{\"k\":1}}",
	     "'annotations' must be an object of strings"},
	};
	nf_oci_state s = {0};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		char *msg = NULL;
		assert_int_equal(parse(cases[i].text, true, &s, &msg), -EINVAL);
		assert_non_null(msg);
		assert_string_equal(msg, cases[i].why);
		assert_null(s.id); /* untouched on failure */
		free(msg);
		/* a caller that does not want the reason */
		assert_int_equal(parse(cases[i].text, true, &s, NULL), -EINVAL);
	}
	char id[300];
	memset(id, 'x', sizeof(id));
	id[sizeof(id) - 1] = '\0';
	char *text, *msg = NULL;
	assert_true(asprintf(&text, "{\"id\":\"%s\",\"pid\":7,\"bundle\":\"/b\"}", id) > 0);
	assert_int_equal(parse(text, true, &s, &msg), -EINVAL);
	assert_string_equal(msg, "'id' must be a string of 1 to 255 characters");
	free(msg);
	free(text);
}

static void state_too_large(void **state)
{
	(void)state;
	/* A valid state padded with whitespace past 1 MiB is refused unparsed. */
	size_t len = NF_OCI_STATE_MAX + 1;
	char *text = malloc(len);
	assert_non_null(text);
	memset(text, ' ', len);
	memcpy(text, crun_create, strlen(crun_create));
	nf_oci_state s;
	char *msg = NULL;
	assert_int_equal(nf_oci_state_parse(text, len, &s, &msg), -EFBIG);
	assert_string_equal(msg, "the state is larger than 1 MiB");
	free(msg);
	msg = NULL;
	/* exactly 1 MiB is fine */
	assert_int_equal(nf_oci_state_parse(text, len - 1, &s, &msg), 0);
	assert_null(msg);
	nf_oci_state_done(&s);
	free(text);
}

/* `crun spec`'s shape, trimmed, with the parts the hook reads. */
static const char config[] =
    "{\"ociVersion\":\"1.0.0\",\"process\":{\"terminal\":false,\"args\":[\"sleep\",\"2\"]},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"crun\","
    "\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"pod-a\"},"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}],"
    "\"cpu\":{\"cpus\":\"0\",\"mems\":\"1,3-4\"}},\"namespaces\":[{\"type\":\"pid\"}]}}";

static void config_parse(void **state)
{
	nf_oci_config c;
	char *msg = NULL;
	(void)state;
	assert_int_equal(nf_oci_config_parse(config, strlen(config), &c, &msg), 0);
	assert_null(msg);
	assert_true(c.has_mems);
	assert_int_equal(nf_nodeset_count(&c.mems), 3);
	assert_true(nf_nodeset_has(&c.mems, 1) && nf_nodeset_has(&c.mems, 4));
	assert_string_equal(nf_json_string(c.annotations, "io.kubernetes.cri.sandbox-name"),
			    "pod-a");
	assert_null(nf_json_string(c.annotations, "absent"));
	nf_oci_config_done(&c);

	static const char *const no_mems[] = {
	    "{}", "{\"linux\":{}}", "{\"linux\":{\"resources\":null}}",
	    "{\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0\"}}}}",
	    "{\"linux\":{\"resources\":{\"cpu\":{\"mems\":\"\"}}}}"};
	for (size_t i = 0; i < NF_ARRAY_SIZE(no_mems); i++) {
		assert_int_equal(nf_oci_config_parse(no_mems[i], strlen(no_mems[i]), &c, &msg), 0);
		assert_null(msg);
		assert_false(c.has_mems);
		assert_int_equal(json_object_object_length(c.annotations), 0);
		nf_oci_config_done(&c);
	}
}

static void config_malformed(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"", "config.json is not a JSON object"},
	    {"{\"linux\":", "config.json is not a JSON object"},
	    {"{\"linux\":[]}",
	     "'linux', 'linux.resources' and 'linux.resources.cpu' must be objects"},
	    {"{\"linux\":{\"resources\":{\"cpu\":\"0\"}}}",
	     "'linux', 'linux.resources' and 'linux.resources.cpu' must be objects"},
	    {"{\"linux\":{\"resources\":{\"cpu\":{\"mems\":1}}}}",
	     "'linux.resources.cpu.mems' must be a string"},
	    {"{\"linux\":{\"resources\":{\"cpu\":{\"mems\":\"0-\"}}}}",
	     "'linux.resources.cpu.mems' is not a node list like \"0-1,3\""},
	    {"{\"linux\":{\"resources\":{\"cpu\":{\"mems\":\"9999\"}}}}",
	     "'linux.resources.cpu.mems' is not a node list like \"0-1,3\""},
	    {"{\"annotations\":{\"a\":true}}", "'annotations' must be an object of strings"},
	};
	nf_oci_config c = {0};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		size_t len = strlen(cases[i].text);
		char *msg = NULL;
		assert_int_equal(nf_oci_config_parse(cases[i].text, len, &c, &msg), -EINVAL);
		assert_non_null(msg);
		assert_string_equal(msg, cases[i].why);
		assert_null(c.annotations);
		free(msg);
		assert_int_equal(nf_oci_config_parse(cases[i].text, len, &c, NULL), -EINVAL);
	}
}

static void stages(void **state)
{
	static const char *const names[] = {"prestart",	      "createRuntime", "createContainer",
					    "startContainer", "poststart",     "poststop"};
	nf_stage s;
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(names); i++) {
		assert_int_equal(nf_stage_parse(names[i], &s), 0);
		assert_int_equal(s, i);
		assert_string_equal(nf_stage_name(s), names[i]);
	}
	assert_int_equal(nf_stage_from_status("creating", &s), 0); /* runc */
	assert_int_equal(s, NF_STAGE_CREATE_RUNTIME);
	assert_int_equal(nf_stage_from_status("created", &s), 0); /* crun */
	assert_int_equal(s, NF_STAGE_CREATE_RUNTIME);
	assert_int_equal(nf_stage_from_status("running", &s), 0);
	assert_int_equal(s, NF_STAGE_POSTSTART);
	assert_int_equal(nf_stage_from_status("stopped", &s), 0);
	assert_int_equal(s, NF_STAGE_POSTSTOP);
	assert_int_equal(nf_stage_from_status("paused", &s), -EINVAL);
	assert_int_equal(nf_stage_from_status(NULL, &s), -EINVAL);
	assert_int_equal(nf_stage_parse("CreateRuntime", &s), -EINVAL);
	assert_int_equal(nf_stage_parse("", &s), -EINVAL);
}

/* Parses TEXT over C, expecting -EINVAL with reason WHY. */
static void conf_refused(nf_hook_conf *c, const char *text, const char *why)
{
	char *msg = NULL;
	assert_int_equal(nf_hook_conf_parse(text, c, &msg), -EINVAL);
	assert_non_null(msg);
	assert_string_equal(msg, why);
	free(msg);
	assert_int_equal(nf_hook_conf_parse(text, c, NULL), -EINVAL);
}

static void hook_conf(void **state)
{
	nf_hook_conf c;
	char *msg = NULL;
	(void)state;
	assert_int_equal(nf_hook_conf_default(&c), 0);
	assert_true(c.enabled && c.standalone && !c.strict);
	assert_int_equal(c.budget_ms, 2000);
	assert_int_equal(
	    nf_hook_conf_parse("# numafollow hook\n\nenabled = no\n  strict=TRUE\n"
			       "budget-ms = 500\r\nsocket = /run/x.sock\nstandalone = off\n",
			       &c, &msg),
	    0);
	assert_null(msg);
	assert_false(c.enabled);
	assert_true(c.strict);
	assert_false(c.standalone);
	assert_int_equal(c.budget_ms, 500);
	assert_string_equal(c.socket, "/run/x.sock");
	conf_refused(&c, "\n\nenabled = maybe\n", "line 3: enabled: expected true or false");
	conf_refused(&c, "budget-ms = 5\n",
		     "line 1: budget-ms: expected a number of milliseconds from 10 to 60000");
	conf_refused(&c, "socket = rel\n", "line 1: socket: expected an absolute path");
	conf_refused(&c, "max-rate = fast\n",
		     "line 1: max-rate: expected a number of MiB/s from 0 (no cap) to 1048576");
	assert_int_equal(c.max_rate, 0);
	assert_int_equal(nf_hook_conf_parse("max-rate = 64\n", &c, &msg), 0);
	assert_int_equal(c.max_rate, UINT64_C(64) << 20);
	conf_refused(&c, "x\n", "line 1: expected 'name = value'");
	conf_refused(
	    &c, "colour = red\n",
	    "line 1: colour: unknown setting (enabled, strict, standalone, budget-ms, max-rate, "
	    "socket)");
	assert_string_equal(c.socket, "/run/x.sock"); /* the bad lines changed nothing */

	/* one setting, as the command line sets it */
	assert_int_equal(nf_hook_conf_set(&c, "budget-ms", "750", &msg), 0);
	assert_null(msg);
	assert_int_equal(c.budget_ms, 750);
	assert_int_equal(nf_hook_conf_set(&c, "socket", "rel", &msg), -EINVAL);
	assert_string_equal(msg, "expected an absolute path");
	free(msg);
	assert_int_equal(nf_hook_conf_set(&c, "strict", "maybe", NULL), -EINVAL);
	nf_hook_conf_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(state_runtimes),  cmocka_unit_test(state_variants),
	    cmocka_unit_test(state_malformed), cmocka_unit_test(state_too_large),
	    cmocka_unit_test(config_parse),    cmocka_unit_test(config_malformed),
	    cmocka_unit_test(stages),	       cmocka_unit_test(hook_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
