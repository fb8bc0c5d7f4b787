/* Kubernetes Events (plugin/agent/kevents.c) apart from the network: the
 * event made of a record, its bodies within the API's limits, the spam filter
 * and the series, the backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/agent/kevents.h"
#include "../../plugin/lib/json.h"

#include <stdlib.h>
#include <string.h>

#define S	1000000000ull
#define MiB	(1024 * 1024ull)
#define NOV_28	1795860000ull /* 2026-11-28T10:00:00Z */
#define POD_UID "6f0c2c8e-1f0a-4b7e-9a51-3b1f2e4d5c6a"

typedef struct {
	nf_registration reg;
	nf_record *rec;
	nf_container c;
} fixture;

static void make(fixture *f, nf_result res, const char *pod, const char *ns)
{
	nf_nodeset from = {.w = {1}}, to = {.w = {2}};
	*f = (fixture){.reg = {.id = "abcdef0123456789",
			       .name = "app",
			       .pod_name = (char *)pod,
			       .pod_namespace = (char *)ns}};
	f->rec = nf_record_new(7, "abcdef0123456789", "/kubepods/x", NF_TRIG_INOTIFY, &from, &to);
	assert_non_null(f->rec);
	f->rec->state = NF_REC_DONE;
	f->rec->result = res;
	f->rec->moved_bytes = 200 * MiB;
	f->rec->kernel_moved_bytes = 56 * MiB;
	f->rec->duration_ms = 1390;
	f->rec->tasks = 1;
	f->c = (nf_container){.id = "abcdef0123456789",
			      .name = f->reg.name,
			      .pod_uid = POD_UID,
			      .reg = &f->reg,
			      .last = f->rec};
}

static void unmake(fixture *f)
{
	nf_record_unref(f->rec);
}

static void normal(void **state)
{
	(void)state;
	fixture f;
	nf_kevent e;
	make(&f, NF_RES_OK, "web-0", "shop");
	assert_int_equal(nf_kevent_from(&f.c, NOV_28 * S + 123456789, &e), 0);
	assert_int_equal(e.type, NF_KEV_NORMAL);
	assert_string_equal(e.reason, "MemoryFollowed");
	assert_string_equal(e.pod, "web-0");
	assert_string_equal(e.ns, "shop");
	assert_string_equal(e.uid, POD_UID);
	assert_non_null(strstr(e.note, "256.0 MiB moved to node 1 in 1.39 s"));
	assert_non_null(strstr(e.note, "kernel 56.0 MiB"));
	assert_non_null(strstr(e.note, "container app (abcdef012345)"));

	nf_kev_reporter rep = {.controller = NF_KEV_CONTROLLER, .instance = "numafollow-node-1"};
	char *name = nf_kev_name(e.pod, e.time_ns), *body = nf_kev_body(&e, name, &rep);
	_cleanup_json_ json_object *o = json_tokener_parse(body);
	json_object *md, *reg;
	assert_non_null(o);
	assert_string_equal(nf_json_string(o, "apiVersion"), "events.k8s.io/v1");
	assert_string_equal(nf_json_string(o, "kind"), "Event");
	assert_string_equal(nf_json_string(o, "eventTime"), "2026-11-28T10:00:00.123456Z");
	assert_string_equal(nf_json_string(o, "type"), "Normal");
	assert_string_equal(nf_json_string(o, "reason"), "MemoryFollowed");
	assert_string_equal(nf_json_string(o, "action"), "MigrateMemory");
	assert_string_equal(nf_json_string(o, "reportingController"), "numafollow.io/agent");
	assert_string_equal(nf_json_string(o, "reportingInstance"), "numafollow-node-1");
	assert_string_equal(nf_json_string(o, "note"), e.note);
	assert_true(json_object_object_get_ex(o, "metadata", &md));
	assert_string_equal(nf_json_string(md, "name"), name);
	assert_string_equal(nf_json_string(md, "namespace"), "shop");
	assert_true(json_object_object_get_ex(o, "regarding", &reg));
	assert_string_equal(nf_json_string(reg, "apiVersion"), "v1");
	assert_string_equal(nf_json_string(reg, "kind"), "Pod");
	assert_string_equal(nf_json_string(reg, "name"), "web-0");
	assert_string_equal(nf_json_string(reg, "namespace"), "shop");
	assert_string_equal(nf_json_string(reg, "uid"), POD_UID);
	assert_false(json_object_object_get_ex(o, "series", NULL));
	free(name);
	free(body);
	nf_kevent_done(&e);
	unmake(&f);
}

static void warning(void **state)
{
	(void)state;
	fixture f;
	nf_kevent e;
	nf_reason why[2] = {{.why = NF_WHY_SHARED, .bytes = 64 * MiB},
			    {.why = NF_WHY_FILE, .bytes = MiB}};
	snprintf(why[0].text, sizeof(why[0].text),
		 "64.0 MiB mapped by several processes: they move only with CAP_SYS_NICE");
	snprintf(why[1].text, sizeof(why[1].text), "1.0 MiB of mapped page cache");
	make(&f, NF_RES_PARTIAL, "db-0", "shop");
	f.rec->residual_bytes = 65 * MiB;
	f.rec->reasons = why;
	f.rec->n_reasons = 2;
	assert_int_equal(nf_kevent_from(&f.c, NOV_28 * S, &e), 0);
	f.rec->reasons = NULL;
	f.rec->n_reasons = 0;
	assert_int_equal(e.type, NF_KEV_WARNING);
	assert_string_equal(e.reason, "MemoryLeftBehind");
	assert_true(strncmp(e.note, "Memory left behind: 65.0 MiB stayed outside node 1", 50) == 0);
	assert_non_null(strstr(e.note, "CAP_SYS_NICE; 1.0 MiB of mapped page cache."));
	assert_non_null(strstr(e.note, "numafollow migrate --via-agent abcdef012345"));
	nf_kevent_done(&e);
	f.rec->result = NF_RES_FAILED;
	assert_int_equal(nf_kevent_from(&f.c, NOV_28 * S, &e), 0);
	assert_int_equal(e.type, NF_KEV_WARNING);
	assert_string_equal(e.reason, "MemoryMigrationFailed");
	nf_kevent_done(&e);
	unmake(&f);
}

static void no_event(void **state)
{
	(void)state;
	fixture f;
	nf_kevent e;
	make(&f, NF_RES_OK, "web-0", NULL); /* no namespace: not a known pod */
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), -ENODATA);
	f.reg.pod_namespace = "shop";
	f.c.reg = NULL; /* a kubelet cgroup that nothing registered: only a uid */
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), -ENODATA);
	f.c.reg = &f.reg;
	f.rec->result = NF_RES_SUPERSEDED; /* its successor tells */
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), -ECANCELED);
	f.rec->result = NF_RES_OK;
	f.rec->moved_bytes = f.rec->kernel_moved_bytes = 0; /* checked, nothing moved */
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), -ECANCELED);
	f.rec->assisted_bytes = MiB; /* the assist moved it all */
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), 0);
	nf_kevent_done(&e);
	f.rec->state = NF_REC_RUNNING;
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), -ECANCELED);
	f.c.pod_uid = ""; /* a uid is optional in regarding */
	f.rec->state = NF_REC_DONE;
	assert_int_equal(nf_kevent_from(&f.c, 0, &e), 0);
	nf_kev_reporter rep = {.controller = NF_KEV_CONTROLLER, .instance = "i"};
	char *body = nf_kev_body(&e, "web-0.1", &rep);
	assert_null(strstr(body, "\"uid\""));
	free(body);
	nf_kevent_done(&e);
	unmake(&f);
}

/* A note over the API's 1 KiB is cut on a character boundary, marked. */
static void note_limit(void **state)
{
	(void)state;
	fixture f;
	nf_kevent e;
	nf_reason why[NF_REASONS_MAX];
	char name[200] = "";
	make(&f, NF_RES_PARTIAL, "db-0", "shop");
	for (size_t i = 0; i < NF_REASONS_MAX; i++) {
		why[i] = (nf_reason){.why = NF_WHY_PINNED, .bytes = MiB};
		memset(why[i].text, 0, sizeof(why[i].text));
		for (size_t j = 0; j + 2 < sizeof(why[i].text) - 1; j += 2)
			memcpy(why[i].text + j, "\xc3\xa9", 2); /* é, two bytes */
	}
	for (size_t j = 0; j + 3 < sizeof(name); j += 3) /* a name that is not UTF-8, then */
		memcpy(name + j, "\xff\xe2\x82", 3);
	f.reg.name = name;
	f.c.name = name;
	f.rec->residual_bytes = MiB;
	f.rec->reasons = why;
	f.rec->n_reasons = NF_REASONS_MAX;
	assert_int_equal(nf_kevent_from(&f.c, NOV_28 * S, &e), 0);
	f.rec->reasons = NULL;
	f.rec->n_reasons = 0;
	size_t n = strlen(e.note);
	assert_true(n <= NF_KEV_NOTE_MAX);
	assert_true(n >= NF_KEV_NOTE_MAX - 4);
	assert_true(nf_utf8_valid(e.note));
	assert_string_equal(e.note + n - 3, "\xe2\x80\xa6"); /* … */
	nf_kevent_done(&e);
	unmake(&f);

	assert_int_equal(nf_utf8_prefix("abc", 10), 3);
	assert_int_equal(nf_utf8_prefix("abc", 2), 2);
	assert_int_equal(nf_utf8_prefix("a\xc3\xa9z", 2), 1); /* not inside é */
	assert_int_equal(nf_utf8_prefix("a\xc3\xa9z", 3), 3);
	assert_int_equal(nf_utf8_prefix("\xe2\x80\xa6", 2), 0);
	assert_int_equal(nf_utf8_prefix("\xf0\x9f\x98\x80x", 4), 4);
}

static void names(void **state)
{
	(void)state;
	char *n = nf_kev_name("web-0", 0x187abcdef);
	assert_string_equal(n, "web-0.187abcdef");
	free(n);
	/* a pod name near the limit: cut to fit, never ending in '.' or '-' */
	char pod[254];
	for (size_t cut = 225; cut < 253; cut++) {
		memset(pod, 'a', sizeof(pod));
		pod[cut - 2] = '-';
		pod[cut - 1] = '.';
		pod[cut] = '-';
		pod[253] = '\0';
		n = nf_kev_name(pod, NOV_28 * S);
		size_t len = strlen(n), head = len - strlen(".18ec2d27b6554000");
		assert_true(len <= NF_KEV_NAME_MAX);
		assert_string_equal(n + head, ".18ec2d27b6554000");
		assert_true(n[head - 1] == 'a'); /* what the cut left ends alphanumeric */
		free(n);
	}
}

static void bodies(void **state)
{
	(void)state;
	char t[32];
	nf_kev_time(NOV_28 * S, t);
	assert_string_equal(t, "2026-11-28T10:00:00.000000Z");
	nf_kev_time(NOV_28 * S + 999999999, t);
	assert_string_equal(t, "2026-11-28T10:00:00.999999Z");
	nf_rfc3339(NOV_28 * S + 999999999, 3, t, sizeof(t)); /* a record's started_at */
	assert_string_equal(t, "2026-11-28T10:00:00.999Z");
	char *p = nf_kev_series_patch(3, NOV_28 * S + 5000);
	assert_string_equal(p, "{\"series\":{\"count\":3,\"lastObservedTime\":"
			       "\"2026-11-28T10:00:00.000005Z\"}}\n");
	free(p);
}

static void backoff(void **state)
{
	(void)state;
	assert_int_equal(nf_kev_backoff_ms(1, 0), 1000);
	assert_int_equal(nf_kev_backoff_ms(2, 0), 2000);
	assert_int_equal(nf_kev_backoff_ms(4, 0), 8000);
	assert_int_equal(nf_kev_backoff_ms(6, 0), 30000); /* 32 s, capped */
	assert_int_equal(nf_kev_backoff_ms(1000, 0), 30000);
	assert_int_equal(nf_kev_backoff_ms(4, 1), 1000); /* Retry-After wins */
	assert_int_equal(nf_kev_backoff_ms(1, 90), 90000);
	assert_int_equal(nf_kev_backoff_ms(1, 86400), 120000); /* capped */
}

static nf_kevent ev(const char *pod, const char *uid, nf_kev_type type, const char *reason)
{
	return (nf_kevent){.type = type,
			   .reason = reason,
			   .pod = (char *)pod,
			   .ns = "shop",
			   .uid = (char *)uid,
			   .note = "n"};
}

static nf_kev_verdict plan(nf_kev_filter *f, nf_kevent e, uint64_t t, uint32_t *count)
{
	nf_kev_plan p;
	assert_int_equal(nf_kev_filter_plan(f, &e, t, &p), 0);
	if (count)
		*count = p.count;
	return p.verdict;
}

/* client-go's spam filter: 25 at once per object, then one per 5 minutes. */
static void rate(void **state)
{
	(void)state;
	nf_kev_filter *f;
	uint32_t count;
	assert_int_equal(nf_kev_filter_new(&f), 0);
	nf_kevent a = ev("a", "u1", NF_KEV_NORMAL, "MemoryFollowed");
	nf_kevent b = ev("b", "u2", NF_KEV_NORMAL, "MemoryFollowed");
	uint64_t t = 1000 * S;
	for (int i = 0; i < NF_KEV_BURST; i++)
		assert_int_equal(plan(f, b, t + i, NULL), NF_KEV_CREATE); /* never created */
	assert_int_equal(plan(f, b, t + 100, NULL), NF_KEV_LIMITED);
	assert_int_equal(plan(f, a, t + 100, NULL), NF_KEV_CREATE);	 /* another object */
	assert_int_equal(plan(f, b, t + 150 * S, NULL), NF_KEV_LIMITED); /* half a token */
	assert_int_equal(plan(f, b, t + 301 * S, NULL), NF_KEV_CREATE);	 /* one refilled */
	assert_int_equal(plan(f, b, t + 302 * S, NULL), NF_KEV_LIMITED);
	/* a series counts what the limit kept from the server */
	assert_int_equal(nf_kev_filter_created(f, &a, "a.1", t + 100), 0);
	for (int i = 1; i < NF_KEV_BURST; i++)
		assert_int_equal(plan(f, a, t + 200 + i, NULL), NF_KEV_SERIES);
	assert_int_equal(plan(f, a, t + 300, NULL), NF_KEV_LIMITED);
	assert_int_equal(plan(f, a, t + 400, NULL), NF_KEV_LIMITED);
	assert_int_equal(plan(f, a, t + 301 * S, &count), NF_KEV_SERIES);
	assert_int_equal(count, NF_KEV_BURST + 3);
	nf_kev_filter_free(f);
}

/* Repeats of the same (object, reason, type) within 10 minutes: a series. */
static void series(void **state)
{
	(void)state;
	nf_kev_filter *f;
	nf_kev_plan p;
	uint32_t count;
	uint64_t t = 5 * S;
	assert_int_equal(nf_kev_filter_new(&f), 0);
	nf_kevent n = ev("web-0", "u1", NF_KEV_NORMAL, "MemoryFollowed");
	nf_kevent w = ev("web-0", "u1", NF_KEV_WARNING, "MemoryLeftBehind");
	nf_kevent again = ev("web-0", "u2", NF_KEV_NORMAL, "MemoryFollowed"); /* recreated pod */
	assert_int_equal(plan(f, n, t, NULL), NF_KEV_CREATE);
	assert_int_equal(nf_kev_filter_created(f, &n, "web-0.a", t), 0);
	assert_int_equal(nf_kev_filter_plan(f, &n, t + 60 * S, &p), 0);
	assert_int_equal(p.verdict, NF_KEV_SERIES);
	assert_string_equal(p.name, "web-0.a");
	assert_int_equal(p.count, 2);
	assert_int_equal(plan(f, w, t + 61 * S, NULL), NF_KEV_CREATE); /* another reason */
	assert_int_equal(nf_kev_filter_created(f, &w, "web-0.b", t + 61 * S), 0);
	assert_int_equal(nf_kev_filter_plan(f, &w, t + 62 * S, &p), 0);
	assert_int_equal(p.verdict, NF_KEV_SERIES);
	assert_string_equal(p.name, "web-0.b");
	assert_int_equal(plan(f, again, t + 63 * S, NULL), NF_KEV_CREATE);
	/* within 10 minutes of the last repeat, not of the first */
	assert_int_equal(plan(f, n, t + 600 * S, &count), NF_KEV_SERIES);
	assert_int_equal(count, 3);
	assert_int_equal(plan(f, n, t + 1201 * S, NULL), NF_KEV_CREATE);
	/* the series' Event expired (404): the next one creates */
	assert_int_equal(nf_kev_filter_created(f, &n, "web-0.c", t + 1202 * S), 0);
	nf_kev_filter_forget(f, &n);
	assert_int_equal(plan(f, n, t + 1203 * S, NULL), NF_KEV_CREATE);
	nf_kev_filter_free(f);
}

/* The filter remembers NF_KEV_OBJECTS objects; the least recent goes. */
static void bounded(void **state)
{
	(void)state;
	nf_kev_filter *f;
	char pod[32];
	assert_int_equal(nf_kev_filter_new(&f), 0);
	nf_kevent first = ev("first", "u", NF_KEV_NORMAL, "MemoryFollowed");
	assert_int_equal(nf_kev_filter_created(f, &first, "first.1", S), 0);
	for (int i = 0; i < NF_KEV_OBJECTS; i++) {
		snprintf(pod, sizeof(pod), "p%d", i);
		nf_kevent e = ev(pod, "u", NF_KEV_NORMAL, "MemoryFollowed");
		assert_int_equal(plan(f, e, 2 * S + i, NULL), NF_KEV_CREATE);
	}
	assert_int_equal(plan(f, first, 3 * S, NULL), NF_KEV_CREATE); /* forgotten */
	nf_kev_filter_free(f);
}

/* A real certificate (P-256, self-signed), as openssl wrote it. */
static const char cert[] = "-----BEGIN CERTIFICATE-----\n"
			   "MIIBbDCCAROgAwIBAgIUftsJpObCme5EdZRL+yZ3hBATvnIwCgYIKoZIzj0EAwIw\n"
			   "DDEKMAgGA1UEAwwBdDAeFw0yNjEyMDUyMDQ2NDlaFw0yNjEyMDYyMDQ2NDlaMAwx\n"
			   "CjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQGlt6aSUYRWTdH\n"
			   "DeugjbzEHdnvsrEfPv0T3Z0A3xF9AGHm/kfAembLOHc0geH3jiXwlU5uY1hTKJS2\n"
			   "2vCI3g3no1MwUTAdBgNVHQ4EFgQU0neiqX64GOxLHiROq2axML2+dagwHwYDVR0j\n"
			   "BBgwFoAU0neiqX64GOxLHiROq2axML2+dagwDwYDVR0TAQH/BAUwAwEB/zAKBggq\n"
			   "hkjOPQQDAgNHADBEAiB4BTaJByDJDSFd5Cf6mJkiq8db79OZqKq2wN6hiUS2YQIg\n"
			   "VMdYbW7rShJ16A8p0UtrSA1HFKHSDuGF23qelCJjdGw=\n"
			   "-----END CERTIFICATE-----\n";

/* The ca.crt's form, checked at the start (--kube-events on refuses garbage). */
static void ca_form(void **state)
{
	(void)state;
	char two[2 * sizeof(cert) + 2], cut[sizeof(cert)], bad[sizeof(cert)];
	snprintf(two, sizeof(two), "%s\n%s", cert, cert);
	assert_int_equal(nf_kev_ca_check(cert), 0);
	assert_int_equal(nf_kev_ca_check(two), 0);
	/* nothing, or not a certificate */
	assert_int_equal(nf_kev_ca_check(""), -EINVAL);
	assert_int_equal(nf_kev_ca_check("\n \n"), -EINVAL);
	assert_int_equal(nf_kev_ca_check("eyJhbGciOiJSUzI1NiJ9.garbage\n"), -EINVAL);
	assert_int_equal(nf_kev_ca_check("-----BEGIN PRIVATE KEY-----\nAAAA\n"
					 "-----END PRIVATE KEY-----\n"),
			 -EINVAL);
	/* a certificate and something else */
	snprintf(two, sizeof(two), "%sgarbage\n", cert);
	assert_int_equal(nf_kev_ca_check(two), -EINVAL);
	/* cut short: no END line, or a body shorter than its DER length says */
	snprintf(cut, sizeof(cut), "%.*s", (int)(strstr(cert, "-----END") - cert), cert);
	assert_int_equal(nf_kev_ca_check(cut), -EINVAL);
	const char *second = strchr(cert, '\n') + 1;
	snprintf(cut, sizeof(cut), "%.*s%s", (int)(second - cert), cert, strstr(cert, "-----END"));
	assert_int_equal(nf_kev_ca_check(cut), -EINVAL);
	/* a byte that is not base64 */
	snprintf(bad, sizeof(bad), "%s", cert);
	bad[40] = '*';
	assert_int_equal(nf_kev_ca_check(bad), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(normal),	  cmocka_unit_test(warning), cmocka_unit_test(no_event),
	    cmocka_unit_test(note_limit), cmocka_unit_test(names),   cmocka_unit_test(bodies),
	    cmocka_unit_test(backoff),	  cmocka_unit_test(rate),    cmocka_unit_test(series),
	    cmocka_unit_test(bounded),	  cmocka_unit_test(ca_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
