#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/lib/journal.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct {
	char seen[64][64];
	int n;
} seen_t;

static void collect(const char *rec, void *ud)
{
	seen_t *s = ud;
	if (s->n < 64)
		snprintf(s->seen[s->n++], 64, "%s", rec);
}

static char dir[] = "/tmp/nf-journal-XXXXXX";

static void append_file(const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/history.journal", dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void crc(void **state)
{
	(void)state;
	assert_int_equal(nf_crc32("123456789", 9), 0xcbf43926u); /* the standard check value */
}

static void roundtrip_and_torn_tail(void **state)
{
	nf_journal j;
	seen_t s = {0};
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(nf_journal_append(&j, "{\"id\":1}"), 0);
	assert_int_equal(nf_journal_append(&j, "{\"id\":2}"), 0);
	assert_int_equal(nf_journal_append(&j, "bad\nrecord"), -EINVAL);
	nf_journal_close(&j);

	/* a crash mid-write: half a record, then garbage after a flipped byte */
	append_file("1234abcd {\"id\":3");
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.seen[0], "{\"id\":1}");
	assert_string_equal(s.seen[1], "{\"id\":2}");
	/* the torn tail is gone: appending continues a clean file */
	assert_int_equal(nf_journal_append(&j, "{\"id\":4}"), 0);
	nf_journal_close(&j);
	s.n = 0;
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.seen[2], "{\"id\":4}");
	nf_journal_close(&j);

	/* a record whose CRC does not match is skipped, not the end of history */
	append_file("00000000 {\"id\":5}\n");
	append_file("ffffffff torn by an older version\n");
	assert_int_equal(nf_journal_open(dir, 1 << 20, NULL, NULL, &j), 0);
	assert_int_equal(nf_journal_append(&j, "{\"id\":6}"), 0);
	nf_journal_close(&j);
	s.n = 0;
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.seen[3], "{\"id\":6}");
	nf_journal_close(&j);
}

/* A full disk: the write comes back short (here RLIMIT_FSIZE cuts it, as
 * ENOSPC would); the journal cuts the torn part back, says so, and the next
 * record, once there is room, lands on a clean line. */
static void short_write(void **state)
{
	nf_journal j;
	seen_t s = {0};
	struct rlimit old, lim;
	(void)state;
	assert_int_equal(nf_journal_open(dir, 1 << 20, NULL, NULL, &j), 0);
	size_t size = j.size;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = (struct rlimit){.rlim_cur = size + 12, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(nf_journal_append(&j, "{\"id\":7,\"pad\":\"xxxxxxxxxxxx\"}"), -ENOSPC);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(j.size, size);
	struct stat st;
	assert_int_equal(fstat(j.fd, &st), 0);
	assert_int_equal((size_t)st.st_size, size); /* no torn line left */
	assert_int_equal(nf_journal_append(&j, "{\"id\":8}"), 0);
	nf_journal_close(&j);
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.seen[4], "{\"id\":8}");
	nf_journal_close(&j);
}

/* One journal per state dir: a second open is refused while the first lives. */
static void one_owner(void **state)
{
	nf_journal a, b;
	(void)state;
	assert_int_equal(nf_journal_open(dir, 1 << 20, NULL, NULL, &a), 0);
	assert_int_equal(nf_journal_open(dir, 1 << 20, NULL, NULL, &b), -EBUSY);
	nf_journal_close(&a);
	assert_int_equal(nf_journal_open(dir, 1 << 20, NULL, NULL, &b), 0);
	nf_journal_close(&b);
}

static void bounded(void **state)
{
	nf_journal j;
	seen_t s = {0};
	char rec[64];
	(void)state;
	assert_int_equal(nf_journal_open(dir, 400, NULL, NULL, &j), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(rec, sizeof(rec), "{\"n\":%d}", 1000 + i);
		assert_int_equal(nf_journal_append(&j, rec), 0);
		if (nf_journal_full(&j))
			assert_int_equal(nf_journal_compact(&j), 0);
		assert_true(j.size <= 400);
	}
	nf_journal_close(&j);
	assert_int_equal(nf_journal_open(dir, 400, collect, &s, &j), 0);
	assert_true(s.n > 5);
	assert_string_equal(s.seen[s.n - 1], "{\"n\":1099}"); /* the newest survive */
	nf_journal_close(&j);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A fresh directory below DIR, in BUF. */
static const char *subdir(char buf[128], const char *name)
{
	snprintf(buf, 128, "%s/%s", dir, name);
	assert_int_equal(mkdir(buf, 0700), 0);
	return buf;
}

/* Records appended while the compaction writes aside (the agent's lock
 * dropped) are in the compacted journal, after the newest half. */
static void compact_beside_appends(void **state)
{
	nf_journal j;
	nf_journal_compaction k;
	seen_t s = {0};
	char rec[64], d[128];
	(void)state;
	assert_int_equal(nf_journal_open(subdir(d, "beside"), 400, NULL, NULL, &j), 0);
	for (int i = 0; !nf_journal_full(&j); i++) {
		snprintf(rec, sizeof(rec), "{\"n\":%d}", 1000 + i);
		assert_int_equal(nf_journal_append(&j, rec), 0);
	}
	assert_int_equal(nf_journal_compact_begin(&j, &k), 0);
	assert_false(nf_journal_full(&j)); /* one at a time */
	assert_int_equal(nf_journal_compact_begin(&j, &(nf_journal_compaction){0}), -EBUSY);
	assert_int_equal(nf_journal_compact_write(&k), 0);
	assert_int_equal(nf_journal_append(&j, "{\"n\":2000}"), 0);
	assert_int_equal(nf_journal_compact_end(&j, &k, 0), 0);
	assert_true(j.size <= 400);
	assert_int_equal(nf_journal_append(&j, "{\"n\":2001}"), 0);
	nf_journal_close(&j);
	assert_int_equal(nf_journal_open(d, 400, collect, &s, &j), 0);
	assert_true(s.n > 3);
	assert_string_equal(s.seen[s.n - 2], "{\"n\":2000}");
	assert_string_equal(s.seen[s.n - 1], "{\"n\":2001}");
	nf_journal_close(&j);
}

/* A compaction that fails leaves the journal whole and asks again later. */
static void compact_fails(void **state)
{
	nf_journal j;
	nf_journal_compaction k;
	seen_t s = {0};
	char d[128];
	(void)state;
	assert_int_equal(nf_journal_open(subdir(d, "fails"), 400, NULL, NULL, &j), 0);
	int n = 0;
	for (; !nf_journal_full(&j); n++)
		assert_int_equal(nf_journal_append(&j, "{\"n\":1}"), 0);
	assert_int_equal(nf_journal_compact_begin(&j, &k), 0);
	assert_int_equal(nf_journal_compact_end(&j, &k, -ENOSPC), -ENOSPC);
	assert_false(nf_journal_full(&j));
	nf_journal_close(&j);
	assert_int_equal(nf_journal_open(d, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, n);
	nf_journal_close(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc),
	    cmocka_unit_test(roundtrip_and_torn_tail),
	    cmocka_unit_test(short_write),
	    cmocka_unit_test(one_owner),
	    cmocka_unit_test(compact_beside_appends),
	    cmocka_unit_test(compact_fails),
	    cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
