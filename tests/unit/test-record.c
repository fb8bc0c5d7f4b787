/* The typed migration record: JSON out and back, old journal lines, bad
 * input; the history ring that holds records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/agent/history.h"
#include "../../plugin/lib/explain.h"
#include "../../plugin/lib/record.h"

#include <errno.h>
#include <string.h>

static nf_nodeset nodes(const char *s)
{
	nf_nodeset n;
	assert_int_equal(nf_nodeset_parse(s, &n), 0);
	return n;
}

static json_object *parse(const char *text)
{
	json_object *o = json_tokener_parse(text);
	assert_non_null(o);
	return o;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* A line as numafollowd 0.2.0 wrote it, before the record was a struct. */
static const char old_line[] =
    "{\"id\":7,\"container\":\"abc\",\"cgroup\":\"/kubepods/pod1/abc\",\"trigger\":\"inotify\","
    "\"from\":\"0\",\"to\":\"1\",\"result\":\"partial\",\"started_at\":"
    "\"2026-11-21T09:41:18.779Z\",\"duration_ms\":1817,\"tasks\":2,\"tasks_failed\":0,"
    "\"pages_not_moved\":3,\"kernel_moved_bytes\":0,\"moved_bytes\":268435456,"
    "\"residual_bytes\":68157440,\"residual\":{\"shared\":68157440},\"errors\":[\"pid 12: "
    "migrate_pages: Operation not permitted\"]}";

static void old_journal_line(void **state)
{
	(void)state;
	json_object *o = parse(old_line);
	nf_record *r;
	assert_int_equal(nf_record_parse(o, &r, NULL), 0);
	assert_int_equal(r->id, 7);
	assert_string_equal(r->container, "abc");
	assert_string_equal(r->cgroup, "/kubepods/pod1/abc");
	assert_int_equal(r->trigger, NF_TRIG_INOTIFY);
	assert_true(nf_nodeset_equal(&r->from, &(nf_nodeset){.w = {1}}));
	assert_int_equal(r->state, NF_REC_DONE);
	assert_int_equal(r->result, NF_RES_PARTIAL);
	assert_int_equal(r->moved_bytes, 268435456);
	assert_int_equal(r->residual[NF_STAY_SHARED], 68157440);
	assert_int_equal(r->n_errors, 1);
	assert_string_equal(r->errors[0], "pid 12: migrate_pages: Operation not permitted");
	/* and written back, the same line (member order included) */
	json_object *back = nf_record_json(r);
	assert_non_null(back);
	assert_string_equal(json_object_to_json_string_ext(
				back, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			    old_line);
	json_object_put(back);
	json_object_put(o);
	nf_record_unref(r);
}

static void lifecycle(void **state)
{
	(void)state;
	nf_nodeset from = nodes("0"), to = nodes("1");
	nf_record *r = nf_record_new(3, "c1", "/c1", NF_TRIG_API, &from, &to);
	assert_non_null(r);
	json_object *o = nf_record_json(r);
	assert_string_equal(str(o, "result"), "queued");
	assert_null(str(o, "started_at")); /* a queued record has not started */
	assert_null(str(o, "moved_bytes"));
	json_object_put(o);

	nf_record_start(r);
	o = nf_record_json(r);
	assert_string_equal(str(o, "result"), "running");
	assert_int_equal(strlen(str(o, "started_at")), strlen("2026-11-21T09:41:18.779Z"));
	json_object_put(o);

	nf_task_error err = {.pid = 42, .err = EPERM, .what = "migrate_pages"};
	nf_migration m = {.tasks = 2,
			  .tasks_migrated = 1,
			  .tasks_failed = 1,
			  .moved_bytes = 1 << 20,
			  .errors = &err,
			  .n_errors = 1};
	assert_int_equal(nf_record_finish(r, 0, &m, 4096, 2500000000u), 0);
	assert_int_equal(r->result, NF_RES_PARTIAL); /* one task failed */
	assert_int_equal(r->duration_ms, 2500);
	assert_string_equal(r->errors[0], "pid 42: migrate_pages: Operation not permitted");
	o = nf_record_json(r);
	nf_record *back;
	assert_int_equal(nf_record_parse(o, &back, NULL), 0);
	assert_int_equal(back->kernel_moved_bytes, 4096);
	assert_int_equal(back->tasks_failed, 1);
	assert_string_equal(back->started_at, r->started_at);
	json_object_put(o);
	nf_record_unref(back);
	nf_record_unref(r);
}

static void results(void **state)
{
	(void)state;
	nf_nodeset n = nodes("1");
	struct {
		int err;
		nf_migration m;
		nf_result want;
	} cases[] = {
	    {-ENOENT, {0}, NF_RES_FAILED},
	    {0, {.cancelled = true, .residual_bytes = 1}, NF_RES_SUPERSEDED},
	    {0, {.tasks = 1, .tasks_failed = 1}, NF_RES_FAILED},
	    {0, {.tasks = 1, .tasks_migrated = 1, .residual_bytes = 1}, NF_RES_PARTIAL},
	    {0, {.tasks = 1, .tasks_migrated = 1}, NF_RES_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		nf_record *r = nf_record_new(1, "c", "/c", NF_TRIG_INOTIFY, &n, &n);
		nf_record_finish(r, cases[i].err, &cases[i].m, 0, 0);
		assert_int_equal(r->result, cases[i].want);
		if (cases[i].err)
			assert_string_equal(r->errors[0],
					    "could not start: No such file or directory");
		nf_record_unref(r);
	}
}

static void malformed(void **state)
{
	(void)state;
	static const struct {
		const char *json, *why;
	} cases[] = {
	    {"[]", "not a JSON object"},
	    {"{\"container\":\"c\",\"cgroup\":\"/"
	     "c\",\"trigger\":\"api\",\"from\":\"\",\"to\":\"1\","
	     "\"result\":\"ok\"}",
	     "'id' is not a positive integer"},
	    {"{\"id\":-1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"ok\"}",
	     "'id' is not a positive integer"},
	    {"{\"id\":1,\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\",\"to\":\"1\","
	     "\"result\":\"ok\"}",
	     "'container' or 'cgroup' is missing"},
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"cron\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"ok\"}",
	     "'trigger' is missing or unknown"},
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"x\","
	     "\"to\":\"1\",\"result\":\"ok\"}",
	     "'from' or 'to' is not a node list"},
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"done\"}",
	     "'result' is missing or unknown"},
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"ok\",\"moved_bytes\":\"9\"}",
	     "a count, 'residual' or 'errors' is malformed"},
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"ok\",\"errors\":[1]}",
	     "a count, 'residual' or 'errors' is malformed"},
	    /* json-c asserts on the length of a non-array: checked first */
	    {"{\"id\":1,\"container\":\"c\",\"cgroup\":\"/c\",\"trigger\":\"api\",\"from\":\"\","
	     "\"to\":\"1\",\"result\":\"ok\",\"method\":\"move_pages\",\"reasons\":\"x\"}",
	     "a count, 'residual' or 'errors' is malformed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *o = parse(cases[i].json);
		nf_record *r = NULL;
		const char *why = NULL;
		assert_int_equal(nf_record_parse(o, &r, &why), -EINVAL);
		assert_null(r);
		assert_string_equal(why, cases[i].why);
		json_object_put(o);
	}
}

/* The engine's share and the explanation travel through the JSON. */
static void engine_fields(void **state)
{
	(void)state;
	nf_nodeset from = nodes("0"), to = nodes("1");
	nf_record *r = nf_record_new(9, "c", "/c", NF_TRIG_INOTIFY, &from, &to);
	nf_migration m = {.tasks = 1,
			  .tasks_migrated = 1,
			  .moved_bytes = 300 << 20,
			  .residual_bytes = 12 << 20,
			  .method = NF_METHOD_MOVE_PAGES,
			  .threads = 2,
			  .gentle_bytes = 290 << 20};
	m.residual[NF_STAY_SHARED] = 12 << 20;
	m.stayed[NF_MOVE_EACCES] = 12 << 20;
	assert_int_equal(nf_record_finish(r, 0, &m, 0, 1000000000), 0);
	/* one reason: the sharing (EACCES says the same, without the remedy) */
	assert_int_equal(r->n_reasons, 1);
	assert_int_equal(r->reasons[0].why, NF_WHY_SHARED);
	json_object *o = nf_record_json(r);
	assert_string_equal(str(o, "method"), "move_pages");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "rate_bytes_per_s")),
			 300 << 20);
	nf_record *back;
	assert_int_equal(nf_record_parse(o, &back, NULL), 0);
	assert_int_equal(back->method, NF_METHOD_MOVE_PAGES);
	assert_int_equal(back->threads, 2);
	assert_int_equal(back->gentle_bytes, 290 << 20);
	assert_int_equal(back->stayed[NF_MOVE_EACCES], 12 << 20);
	assert_int_equal(back->n_reasons, 1);
	assert_string_equal(back->reasons[0].text, r->reasons[0].text);
	json_object_put(o);
	nf_record_unref(back);
	nf_record_unref(r);
}

static bool says(const nf_reason *w, size_t n, nf_why why, const char *words)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].why == why && strstr(w[i].text, words))
			return true;
	return false;
}

static void explain(void **state)
{
	(void)state;
	nf_nodeset to = nodes("1");
	nf_reason w[NF_REASONS_MAX];
	nf_migration m = {0};
	m.stayed[NF_MOVE_ENOMEM] = 1 << 20; /* what the mover met, once moved after all */
	assert_int_equal(nf_explain(&m, &to, w), 0);
	m.residual_bytes = 41 << 20;
	m.residual[NF_STAY_SHARED] = 41 << 20;
	assert_int_equal(nf_explain(&m, &to, w), 2);
	assert_true(says(w, 2, NF_WHY_SHARED, "41.0 MiB mapped by several processes"));
	assert_true(says(w, 2, NF_WHY_SHARED, "CAP_SYS_NICE"));
	assert_true(says(w, 2, NF_WHY_NO_MEMORY, "no room"));
	m.sys_nice = true; /* with the capability, shared pages stayed for another reason */
	assert_int_equal(nf_explain(&m, &to, w), 2);
	assert_false(says(w, 2, NF_WHY_SHARED, "CAP_SYS_NICE"));
	/* a run stopped by its deadline did not try the rest: no guess why it stayed */
	m = (nf_migration){.residual_bytes = 100 << 20, .deadline_hit = true};
	m.residual[NF_STAY_ANON] = 100 << 20;
	assert_int_equal(nf_explain(&m, &to, w), 1);
	assert_int_equal(w[0].why, NF_WHY_DEADLINE);
	assert_string_equal(nf_why_name(NF_WHY_NO_MEMORY), "no_memory");
}

static nf_record *rec(uint64_t id)
{
	nf_nodeset n = nodes("0");
	return nf_record_new(id, "c", "/c", NF_TRIG_RECONCILE, &n, &n);
}

static void history_ring(void **state)
{
	(void)state;
	nf_history h;
	assert_int_equal(nf_history_init(&h, 3), 0);
	assert_null(nf_history_newest(&h, 0));
	nf_record *kept = rec(1);
	nf_history_push(&h, kept);
	for (uint64_t id = 2; id <= 5; id++) {
		nf_record *r = rec(id);
		nf_history_push(&h, r);
		nf_record_unref(r);
	}
	assert_int_equal(h.len, 3);
	assert_int_equal(nf_history_newest(&h, 0)->id, 5);
	assert_int_equal(nf_history_newest(&h, 2)->id, 3);
	assert_null(nf_history_newest(&h, 3));
	assert_null(nf_history_find(&h, 2)); /* dropped out */
	assert_int_equal(nf_history_find(&h, 4)->id, 4);
	/* put: a record journaled again (concluded) replaces its earlier line */
	nf_record *again = rec(4);
	again->state = NF_REC_DONE;
	nf_history_put(&h, again);
	nf_record_unref(again);
	assert_int_equal(h.len, 3);
	assert_int_equal(nf_history_find(&h, 4)->state, NF_REC_DONE);
	again = rec(6);
	nf_history_put(&h, again); /* a new id is pushed */
	nf_record_unref(again);
	assert_int_equal(nf_history_newest(&h, 0)->id, 6);
	/* a record the ring dropped lives on with whoever else holds it */
	assert_int_equal(kept->id, 1);
	nf_record_unref(kept);
	nf_history_done(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(old_journal_line), cmocka_unit_test(lifecycle),
	    cmocka_unit_test(results),		cmocka_unit_test(malformed),
	    cmocka_unit_test(history_ring),	cmocka_unit_test(engine_fields),
	    cmocka_unit_test(explain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
