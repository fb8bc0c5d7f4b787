#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/lib/journal.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <string.h>

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

	/* a record whose CRC does not match ends the intact prefix */
	append_file("00000000 {\"id\":5}\n");
	s.n = 0;
	assert_int_equal(nf_journal_open(dir, 1 << 20, collect, &s, &j), 0);
	assert_int_equal(s.n, 3);
	nf_journal_close(&j);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc),
	    cmocka_unit_test(roundtrip_and_torn_tail),
	    cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
