/* The event stream's queues (plugin/agent/stream.c): framing, sharing,
 * the bound on a client that falls behind, sleeping and waking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugin/agent/stream.h"

typedef struct {
	int sleeps, wakes;
} waker_log;

static void on_sleep(void *ctx)
{
	((waker_log *)ctx)->sleeps++;
}

static void on_wake(void *ctx)
{
	((waker_log *)ctx)->wakes++;
}

/* Everything C has now, as one string. */
static char *drain(nf_stream_client *c)
{
	static char all[65536];
	char buf[7]; /* small: events cut across reads */
	size_t len = 0;
	ssize_t n;
	while ((n = nf_stream_read(c, buf, sizeof(buf))) > 0) {
		memcpy(all + len, buf, n);
		len += n;
	}
	all[len] = '\0';
	return all;
}

static void publish(nf_stream *s, const char *type, int v)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(v));
	nf_stream_publish(s, type, o);
	json_object_put(o);
}

static void framing(void **state)
{
	nf_stream *s;
	nf_stream_client *c;
	waker_log w = {0};
	(void)state;
	assert_int_equal(nf_stream_new(4, 2, &s), 0);
	assert_false(nf_stream_listened(s));
	publish(s, "nobody", 0); /* nobody follows: nothing kept */
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w}, &c), 0);
	assert_true(nf_stream_listened(s));
	publish(s, "migration-start", 1);
	publish(s, "migration-end", 2);
	assert_string_equal(drain(c), ": numafollow events\n\n"
				      "id: 1\nevent: migration-start\ndata: {\"v\":1}\n\n"
				      "id: 2\nevent: migration-end\ndata: {\"v\":2}\n\n");
	assert_int_equal(w.sleeps, 1); /* the empty read at the end */
	publish(s, "x", 3);
	assert_int_equal(w.wakes, 1);
	publish(s, "x", 4); /* awake already: no second wake */
	assert_int_equal(w.wakes, 1);
	drain(c);
	nf_stream_ping(s);
	assert_string_equal(drain(c), ": ping\n\n");
	nf_stream_leave(c);
	assert_false(nf_stream_listened(s));
	nf_stream_close(s);
	nf_stream_free(s);
}

/* A client that reads nothing holds at most the queue; it is told what it
 * lost, then gets what came after; another client loses nothing. */
static void slow_reader(void **state)
{
	nf_stream *s;
	nf_stream_client *slow, *fast;
	nf_stream_stats st;
	waker_log w1 = {0}, w2 = {0};
	(void)state;
	assert_int_equal(nf_stream_new(4, 2, &s), 0);
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w1}, &slow), 0);
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w2}, &fast), 0);
	nf_stream_client *third;
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w2}, &third),
			 -EBUSY);
	for (int i = 1; i <= 1000; i++) {
		publish(s, "e", i);
		if (i % 3 == 0)
			drain(fast);
		nf_stream_stats_get(s, &st);
		assert_true(st.queued_max <= 4);
	}
	char *got = drain(slow);
	assert_non_null(strstr(got, "event: lost\ndata: {\"dropped\":"));
	assert_non_null(strstr(got, "id: 1000\n"));
	assert_null(strstr(got, "id: 1\n"));
	nf_stream_stats_get(s, &st);
	assert_int_equal(st.clients, 2);
	assert_true(st.lost >= 990);
	assert_int_equal(st.published, 1000);
	nf_stream_leave(slow);
	nf_stream_leave(fast);
	nf_stream_close(s);
	nf_stream_free(s);
}

/* An event half read is finished before the lost line. */
static void lost_between_events(void **state)
{
	nf_stream *s;
	nf_stream_client *c;
	waker_log w = {0};
	char buf[32];
	(void)state;
	assert_int_equal(nf_stream_new(2, 1, &s), 0);
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w}, &c), 0);
	drain(c);
	publish(s, "first", 1);
	assert_int_equal(nf_stream_read(c, buf, 10), 10); /* "id: 1\neven" */
	for (int i = 2; i <= 6; i++)
		publish(s, "e", i);
	char *rest = drain(c);
	const char *want = "t: first\ndata: {\"v\":1}\n\nevent: lost\n";
	assert_memory_equal(rest, want, strlen(want));
	assert_non_null(strstr(rest, "id: 6\n"));
	nf_stream_leave(c);
	nf_stream_close(s);
	nf_stream_free(s);
}

static void closing(void **state)
{
	nf_stream *s;
	nf_stream_client *c;
	waker_log w = {0};
	char buf[64];
	(void)state;
	assert_int_equal(nf_stream_new(2, 1, &s), 0);
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w}, &c), 0);
	drain(c); /* asleep */
	nf_stream_close(s);
	assert_int_equal(w.wakes, 1); /* a sleeping client is woken to see the end */
	assert_int_equal(nf_stream_read(c, buf, sizeof(buf)), -EPIPE);
	nf_stream_client *late;
	assert_int_equal(nf_stream_join(s, &(nf_stream_waker){on_sleep, on_wake, &w}, &late),
			 -ESHUTDOWN);
	nf_stream_leave(c);
	nf_stream_free(s);
	nf_stream_publish(NULL, "x", NULL); /* no stream: nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(framing),
	    cmocka_unit_test(slow_reader),
	    cmocka_unit_test(lost_between_events),
	    cmocka_unit_test(closing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
