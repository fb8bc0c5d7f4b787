#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../cgroup/nodeset.h"
#include "../../cgroup/util.h"

#include <string.h>

static char *fmt(const nf_nodeset *s)
{
	static char buf[NF_NODESET_STRLEN];
	return nf_nodeset_format(s, buf, sizeof(buf));
}

static void roundtrip(void **state)
{
	static const struct {
		const char *in, *out;
		unsigned count;
	} cases[] = {
	    {"", "", 0},
	    {"\n", "", 0},
	    {"0", "0", 1},
	    {"0-3", "0-3", 4},
	    {"0,2-3,5\n", "0,2-3,5", 4},
	    {"3,1,2", "1-3", 3},
	    {"127", "127", 1},
	    {"0-1,1-2", "0-2", 3},
	};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		nf_nodeset s;
		assert_int_equal(nf_nodeset_parse(cases[i].in, &s), 0);
		assert_string_equal(fmt(&s), cases[i].out);
		assert_int_equal(nf_nodeset_count(&s), cases[i].count);
	}
}

static void malformed(void **state)
{
	static const char *const bad[] = {"x",
					  "1-",
					  "-1",
					  "1,",
					  ",1",
					  "3-1",
					  "1 2",
					  "1\n2",
					  "128",
					  "0-128",
					  "99999999999999999999",
					  "1.5",
					  "+1"};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(bad); i++) {
		nf_nodeset s = {{7}};
		assert_true(nf_nodeset_parse(bad[i], &s) < 0);
		assert_int_equal(s.w[0], 7); /* untouched on error */
	}
}

static void set_ops(void **state)
{
	nf_nodeset a, b, c;
	(void)state;
	assert_int_equal(nf_nodeset_parse("0-3", &a), 0);
	assert_int_equal(nf_nodeset_parse("1,3", &b), 0);
	nf_nodeset_minus(&a, &b, &c);
	assert_string_equal(fmt(&c), "0,2");
	assert_false(nf_nodeset_equal(&a, &b));
}

/* The kernel's node_remap(): position in FROM picks the position in TO. */
static void remap(void **state)
{
	nf_nodeset from, to;
	(void)state;
	assert_int_equal(nf_nodeset_parse("0-1", &from), 0);
	assert_int_equal(nf_nodeset_parse("2-3", &to), 0);
	assert_int_equal(nf_nodeset_remap(0, &from, &to), 2);
	assert_int_equal(nf_nodeset_remap(1, &from, &to), 3);
	assert_int_equal(nf_nodeset_remap(5, &from, &to), 5); /* not in from */
	assert_int_equal(nf_nodeset_parse("3", &to), 0);
	assert_int_equal(nf_nodeset_remap(1, &from, &to), 3); /* wraps */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip),
	    cmocka_unit_test(malformed),
	    cmocka_unit_test(set_ops),
	    cmocka_unit_test(remap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
