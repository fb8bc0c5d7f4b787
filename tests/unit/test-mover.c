/* The mover's pure parts (plugin/lib/mover.c), apart from move_pages(2):
 * reading smaps and maps, pairing numa_maps with them, slicing ranges, sizing
 * calls by time and counting what a call's statuses say. The file is included
 * for its static functions; tests/vm/t-mover.sh and t-shapes.sh move pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/lib/mover.c"

static void spans(void **state)
{
	(void)state;
	/* maps: headers only; smaps: headers and AnonHugePages */
	char maps[] = "00400000-00401000 r--p 00000000 fe:00 12 /bin/x\n"
		      "7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n";
	char smaps[] = "7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n"
		       "Size:               4096 kB\n"
		       "AnonHugePages:      2048 kB\n"
		       "VmFlags: rd wr mr mw me ac\n"
		       "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n"
		       "AnonHugePages:         0 kB\n";
	char bad[] = "7f00-zz rw-p\n";
	vma_span *v = NULL;
	size_t n = 0;
	assert_int_equal(parse_smaps(maps, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_true(v[1].start == 0x7f0000000000 && v[1].end == 0x7f0000400000);
	assert_int_equal(v[1].thp_kb, 0);
	free(v);
	assert_int_equal(parse_smaps(smaps, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].thp_kb, 2048);
	free(v);
	assert_int_equal(parse_smaps(bad, &v, &n), -EBADMSG);
}

static void numa_lines(void **state)
{
	(void)state;
	nf_move_opts o;
	nf_move_opts_init(&o);
	o.dest[0] = 1;
	vma_pages v;
	const char *l = "7f0000000000 default anon=512 dirty=512 N0=500 N1=12 kernelpagesize_kB=4";
	assert_int_equal(parse_numa_line(&o, l, l + strlen(l), &v), 0);
	assert_int_equal(v.src_pages, 500);
	assert_int_equal(v.all_pages, 512);
	assert_int_equal(v.dest, 1);
	assert_false(v.shared || v.huge);
	/* mapped by several processes: flagged, so its pages are asked where they are */
	l = "7f0000000000 default anon=8 mapmax=4 N0=8 kernelpagesize_kB=4";
	assert_int_equal(parse_numa_line(&o, l, l + strlen(l), &v), 0);
	assert_true(v.shared);
	l = "7f0000000000 default file=/x huge anon=2 N0=2 kernelpagesize_kB=2048";
	assert_int_equal(parse_numa_line(&o, l, l + strlen(l), &v), 0);
	assert_true(v.huge);
	assert_int_equal(v.page_kb, 2048);
	l = "7f0000000000 default N999=1";
	assert_int_equal(parse_numa_line(&o, l, l + strlen(l), &v), -ERANGE);
}

static mover *new_mover(const nf_move_opts *o)
{
	mover *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->o = o;
	m->slice_pages = SLICE_PAGES;
	m->call_ns = NF_MOVE_CALL_NS;
	m->n_tasks = 1;
	m->tasks = calloc(1, sizeof(*m->tasks));
	assert_non_null(m->tasks);
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void free_mover(mover *m)
{
	free(m->tasks);
	free(m->ranges);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* The stack's numa_maps line pairs with the smaps spans after it: the stack,
 * not the vsyscall page (which once made a range at the top of the address
 * space, whose slices wrapped around to 0). */
static void pairing(void **state)
{
	(void)state;
	nf_move_opts o;
	nf_move_opts_init(&o);
	o.dest[0] = 1;
	mover *m = new_mover(&o);
	vma_span s[] = {{0x7ffd00000000, 0x7ffd00021000, 0},
			{UINT64_C(0xffffffffff600000), UINT64_C(0xffffffffff601000), 0}};
	vma_pages v = {
	    .start = 0x7ffd00000000, .page_kb = 4, .src_pages = 3, .all_pages = 3, .dest = 1};
	assert_int_equal(plan_pieces(m, 0, s, 2, v.start, UINT64_MAX, &v), 0);
	assert_int_equal(m->n_ranges, 1);
	assert_true(m->ranges[0].end == 0x7ffd00021000);
	free_mover(m);
}

static void slices(void **state)
{
	(void)state;
	nf_move_opts o;
	nf_move_opts_init(&o);
	mover *m = new_mover(&o);
	/* a range ending at the top of a 64-bit space: slices stop there */
	range r = {.start = UINT64_MAX - 8 * PAGE + 1, .step = 4 * PAGE, .mode = R_DENSE};
	r.end = r.hi = UINT64_MAX;
	r.cur = r.start;
	assert_int_equal(add_range(m, &r), 0);
	const range *got;
	uint64_t s, e, covered = 0;
	unsigned n = 0;
	while (take_slice(m, &got, &s, &e) && n < 10) {
		assert_true(s < e && e <= UINT64_MAX && s >= r.start);
		covered += e - s;
		n++;
	}
	assert_int_equal(n, 2);
	assert_true(covered == r.end - r.start);
	free_mover(m);
}

static worker *new_worker(mover *m)
{
	worker *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->m = m;
	assert_int_equal(grow(w), 0);
	return w;
}

static void free_worker(worker *w)
{
	free(w->addr);
	free(w->nodes);
	free(w->status);
	free(w->weight);
	free(w->heads);
	free(w->hid);
	free(w->hid_weight);
	free(w);
}

/* Calls grow towards the target time at most 4x at a time, shrink at once,
 * stay within their bounds, and a fixed batch is left alone. */
static void pacing(void **state)
{
	(void)state;
	nf_move_opts o;
	nf_move_opts_init(&o);
	mover *m = new_mover(&o);
	worker *w = new_worker(m);
	assert_int_equal(w->limit, NF_MOVE_BATCH_FIRST);
	/* 256 units in 1 ms: 3.9 us a unit; 50 ms would be 12800, but 4x at most */
	pace(w, 1000000, 256);
	assert_int_equal(w->limit, 1024);
	pace(w, 4000000, 1024);
	assert_int_equal(w->limit, 4096);
	pace(w, 16000000, 4096);
	assert_int_equal(w->limit, 12800);
	/* a call of a task's last 32 pages, a third of it the fixed cost: the
	 * next size barely moves (a per-call average would have halved it) */
	pace(w, 1000000, 32);
	assert_true(w->limit > 11000);
	/* pages turn 10x dearer (threads writing them): the next call shrinks */
	pace(w, 500000000, w->limit);
	assert_true(w->limit < 3000);
	for (int i = 0; i < 20; i++)
		pace(w, 1000000000, 100);
	assert_int_equal(w->limit, NF_MOVE_BATCH_MIN);
	for (int i = 0; i < 20; i++)
		pace(w, 1000, 16384);
	assert_int_equal(w->limit, NF_MOVE_BATCH_MAX);
	free_worker(w);
	o.batch_pages = 512;
	w = new_worker(m);
	assert_int_equal(w->limit, 512);
	pace(w, 1000000000, 512);
	assert_int_equal(w->limit, 512);
	free_worker(w);
	free_mover(m);
}

/* What the statuses of one call count for. */
static void statuses(void **state)
{
	(void)state;
	nf_move_opts o;
	nf_move_opts_init(&o);
	mover *m = new_mover(&o);
	worker *w = new_worker(m);
	int st[] = {1, -EBUSY, 0, -ENOENT, -EFAULT, -EACCES, NOT_TRIED};
	w->n = NF_ARRAY_SIZE(st);
	for (size_t i = 0; i < w->n; i++) {
		w->addr[i] = (void *)(uintptr_t)((i + 1) * PAGE);
		w->nodes[i] = 1;
		w->weight[i] = PAGE;
		w->status[i] = st[i];
	}
	/* a first try keeps the busy page, the one still on node 0 and the
	 * untried one for the second; the absent one is looked at again */
	settle(w, true);
	assert_int_equal(w->res.moved_bytes, PAGE);
	assert_int_equal(w->n, 3);
	assert_int_equal(w->n_hid, 1);
	assert_int_equal(w->res.stayed_bytes[NF_MOVE_EACCES], PAGE);
	/* the second: a busy THP subpage is on node 1 now; the rest stayed busy */
	w->status[0] = 1, w->status[1] = -EBUSY, w->status[2] = 0;
	settle(w, false);
	assert_int_equal(w->res.moved_bytes, 2 * PAGE);
	assert_int_equal(w->res.stayed_bytes[NF_MOVE_EBUSY], 2 * PAGE);
	assert_int_equal(w->n, 0);
	free_worker(w);
	free_mover(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spans),  cmocka_unit_test(numa_lines), cmocka_unit_test(pairing),
	    cmocka_unit_test(slices), cmocka_unit_test(pacing),	    cmocka_unit_test(statuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
