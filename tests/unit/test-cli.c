/* The CLI's pure parts: containers by name (plugin/cli/names.c) and the
 * event stream's parser (plugin/cli/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugin/cli/names.h"
#include "../../plugin/cli/sse.h"

static const char containers[] =
    "[{\"id\": \"3f2a9c0d11aa\", \"name\": \"web\", \"pod\": null},"
    " {\"id\": \"3f2a77b0c2bb\", \"name\": \"db\", \"pod\": null},"
    " {\"id\": \"9e1c00ffee00\", \"name\": \"api\","
    "  \"pod\": {\"uid\": \"u1\", \"name\": \"shop-1\", \"namespace\": \"prod\"}},"
    " {\"id\": \"77aa00000001\", \"name\": \"api\","
    "  \"pod\": {\"uid\": \"u2\", \"name\": \"shop-2\", \"namespace\": \"prod\"}},"
    " {\"id\": \"/system.slice/x.service\", \"name\": null, \"pod\": null},"
    " {\"id\": \"web\", \"name\": \"other\", \"pod\": null}]";

/* ARG's id, or NULL with the error in *ERR and its message in *MSG. */
static const char *resolve(json_object *list, const char *arg, int *err, char **msg)
{
	const char *id = NULL;
	free(*msg);
	*msg = NULL;
	*err = nf_cli_resolve(list, arg, &id, msg);
	return *err == 0 ? id : NULL;
}

static void names(void **state)
{
	json_object *list = json_tokener_parse(containers);
	char *msg = NULL;
	int err;
	(void)state;
	assert_non_null(list);
	/* an id wins over a name: "web" is one container's id, another's name */
	assert_string_equal(resolve(list, "web", &err, &msg), "web");
	assert_string_equal(resolve(list, "db", &err, &msg), "3f2a77b0c2bb");
	assert_string_equal(resolve(list, "3f2a9c0d11aa", &err, &msg), "3f2a9c0d11aa");
	/* an unambiguous prefix */
	assert_string_equal(resolve(list, "3f2a9", &err, &msg), "3f2a9c0d11aa");
	assert_string_equal(resolve(list, "9e1", &err, &msg), "9e1c00ffee00");
	/* namespace/pod/container */
	assert_string_equal(resolve(list, "prod/shop-2/api", &err, &msg), "77aa00000001");
	assert_string_equal(resolve(list, "/system.slice/x.service", &err, &msg),
			    "/system.slice/x.service");
	/* a name over a prefix: "other" is a name only */
	assert_string_equal(resolve(list, "other", &err, &msg), "web");

	/* ambiguous: the candidates are listed */
	assert_null(resolve(list, "3f2a", &err, &msg));
	assert_int_equal(err, -ENOTUNIQ);
	assert_non_null(strstr(msg, "'3f2a' is ambiguous"));
	assert_non_null(strstr(msg, "3f2a9c0d11aa web"));
	assert_non_null(strstr(msg, "3f2a77b0c2bb db"));
	assert_null(resolve(list, "api", &err, &msg));
	assert_int_equal(err, -ENOTUNIQ);
	assert_non_null(strstr(msg, "9e1c00ffee00 prod/shop-1/api"));
	assert_non_null(strstr(msg, "77aa00000001 prod/shop-2/api"));

	/* unknown: what the agent knows */
	assert_null(resolve(list, "nope", &err, &msg));
	assert_int_equal(err, -ENOENT);
	assert_non_null(strstr(msg, "no container 'nope'; the agent knows: "));
	assert_non_null(strstr(msg, "/system.slice/x.service"));
	assert_null(resolve(list, "", &err, &msg)); /* no prefix of everything */
	assert_int_equal(err, -ENOENT);
	json_object_put(list);

	list = json_tokener_parse("[]");
	assert_null(resolve(list, "x", &err, &msg));
	assert_int_equal(err, -ENOENT);
	assert_string_equal(msg, "no container 'x'; the agent knows none");
	free(msg);
	json_object_put(list);
}

typedef struct {
	char seen[1024];
	int n, stop_at;
} sink;

static bool on_event(const char *type, const char *data, void *userdata)
{
	sink *k = userdata;
	size_t len = strlen(k->seen);
	snprintf(k->seen + len, sizeof(k->seen) - len, "[%s|%s]", type, data);
	return ++k->n != k->stop_at;
}

static void sse(void **state)
{
	static const char text[] = ": numafollow events\n\n"
				   "id: 1\nevent: migration-start\ndata: {\"id\":1}\n\n"
				   "id: 2\r\nevent: migration-end\r\ndata: {\"id\":\r\n\r\n"
				   "data: a\ndata:b\n\n"
				   "event: lost\ndata: {\"dropped\":3}\n\n"
				   "event: incomplete\ndata: x";
	(void)state;
	/* whole, and cut at every byte */
	for (size_t step = 1; step <= sizeof(text); step++) {
		sink k = {.stop_at = -1};
		nf_sse s = {.on_event = on_event, .userdata = &k};
		for (size_t i = 0; i < sizeof(text) - 1; i += step) {
			size_t n = sizeof(text) - 1 - i < step ? sizeof(text) - 1 - i : step;
			assert_true(nf_sse_feed(&s, text + i, n));
		}
		nf_sse_done(&s);
		assert_string_equal(k.seen, "[migration-start|{\"id\":1}]"
					    "[migration-end|{\"id\":]"
					    "[message|a\nb]"
					    "[lost|{\"dropped\":3}]");
	}
	/* the callback stops the feed */
	sink k = {.stop_at = 1};
	nf_sse s = {.on_event = on_event, .userdata = &k};
	assert_false(nf_sse_feed(&s, text, sizeof(text) - 1));
	assert_int_equal(k.n, 1);
	nf_sse_done(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names),
	    cmocka_unit_test(sse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
