/* dockerd's answer to the agent's name lookup (plugin/agent/docker.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include <errno.h>

#include "../../plugin/agent/docker.h"

static int parse(const char *body, char **name)
{
	*name = NULL;
	return nf_docker_parse_name(body, name);
}

static void names(void **state)
{
	(void)state;
	char *n;
	assert_int_equal(parse("[{\"Id\":\"ab\",\"Names\":[\"/nf-b\"],\"State\":\"running\"}]", &n),
			 0);
	assert_string_equal(n, "nf-b");
	free(n);
	/* docker's names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a link adds "/other/name" later) */
	assert_int_equal(parse("[{\"Names\":[\"/web_1.a-b\",\"/x/alias\"]}]", &n), 0);
	assert_string_equal(n, "web_1.a-b");
	free(n);
	assert_int_equal(parse("[{\"Names\":[\"/app/db\",\"/db\"]}]", &n), 0);
	assert_string_equal(n, "db");
	free(n);
}

static void refusals(void **state)
{
	(void)state;
	char *n;
	assert_int_equal(parse("[]", &n), -ENOENT); /* dockerd does not know it */
	assert_null(n);
	static const char *const bad[] = {
	    NULL,
	    "",
	    "{}",
	    "not json",
	    "[{}]",
	    "[{\"Names\":[]}]",
	    "[{\"Names\":\"/x\"}]",
	    "[{\"Names\":[7]}]",
	    "[{\"Names\":[\"/\"]}]",
	    "[{\"Names\":[\"/a\"]}]",	       /* one character: not a docker name */
	    "[{\"Names\":[\"/-x\"]}]",	       /* must start with a letter or digit */
	    "[{\"Names\":[\"/a\\nb\"]}]",      /* no control characters in logs */
	    "[{\"Names\":[\"/caf\\u00e9\"]}]", /* nor what docker itself refuses */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(parse(bad[i], &n), -EBADMSG);
		assert_null(n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(names), cmocka_unit_test(refusals)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
