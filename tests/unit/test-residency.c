#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "../../cgroup/residency.h"
#include "../../cgroup/util.h"

/* From a 2-node 6.1 VM: cat memory.numa_stat */
static const char numa_stat[] = "anon N0=4096 N1=268435456\n"
				"file N0=1052672 N1=0\n"
				"kernel_stack N0=16384 N1=0\n"
				"shmem N0=0 N1=0\n"
				"file_mapped N0=8192 N1=0\n";

static void numa_stat_ok(void **state)
{
	nf_residency r;
	(void)state;
	assert_int_equal(nf_numa_stat_parse(numa_stat, &r), 0);
	assert_int_equal(r.anon[0], 4096);
	assert_int_equal(r.anon[1], 268435456);
	assert_int_equal(r.file[0], 1052672);
	assert_int_equal(nf_residency_node(&r, 1), 268435456);
	assert_int_equal(nf_residency_node(&r, 0), 4096 + 1052672);
}

/* cgroup v1 memory.numa_stat (6.1's memcg_numa_stat_show): counts in pages. */
static const char v1_text[] = "total=65600 N0=64 N1=65536\n"
			      "file=64 N0=64 N1=0\n"
			      "anon=65536 N0=0 N1=65536\n"
			      "unevictable=0 N0=0 N1=0\n"
			      "hierarchical_total=65601 N0=65 N1=65536\n"
			      "hierarchical_file=64 N0=64 N1=0\n"
			      "hierarchical_anon=65537 N0=1 N1=65536\n"
			      "hierarchical_unevictable=0 N0=0 N1=0\n";

static void numa_stat_v1(void **state)
{
	nf_residency r;
	uint64_t page = sysconf(_SC_PAGESIZE);
	(void)state;
	assert_int_equal(nf_numa_stat_v1_parse(v1_text, &r), 0);
	assert_int_equal(r.anon[0], page); /* the hierarchical rows */
	assert_int_equal(r.anon[1], 65536 * page);
	assert_int_equal(r.file[0], 64 * page);
	assert_int_equal(r.file[1], 0);
	/* the v2 format, or no hierarchical rows, is not v1's */
	assert_true(nf_numa_stat_v1_parse(numa_stat, &r) < 0);
	assert_true(nf_numa_stat_v1_parse("anon=1 N0=1\n", &r) < 0);
	assert_true(nf_numa_stat_v1_parse("hierarchical_anon=1 N0=x\n", &r) < 0);
}

static void numa_stat_bad(void **state)
{
	static const char *const bad[] = {"anon N0=x\n", "anon 0=1\n", "anon N999=1\n",
					  "file N0=-1\n", "anon N0\n"};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(bad); i++) {
		nf_residency r;
		assert_true(nf_numa_stat_parse(bad[i], &r) < 0);
	}
}

/* Shapes seen in /proc/PID/numa_maps on 6.1. */
static const char numa_maps[] =
    "55d0c0a00000 default file=/usr/bin/memhog mapped=2 mapmax=1 N0=2 kernelpagesize_kB=4\n"
    "55d0c0c00000 default file=/usr/bin/memhog anon=1 dirty=1 N1=1 kernelpagesize_kB=4\n"
    "55d0c1000000 default heap anon=3 dirty=3 N0=1 N1=2 kernelpagesize_kB=4\n"
    "7f0000000000 default anon=65536 dirty=65536 active=0 N0=65536 kernelpagesize_kB=4\n"
    "7f1000000000 default file=/usr/lib/x86_64-linux-gnu/libc.so.6 mapped=40 mapmax=9 "
    "N0=40 kernelpagesize_kB=4\n"
    "7f2000000000 default file=/anon_hugepage\\040(deleted) huge anon=2 dirty=2 N1=2 "
    "kernelpagesize_kB=2048\n"
    "7ffd00000000 default stack anon=5 dirty=5 N0=5 kernelpagesize_kB=4\n"
    "7ffd10000000 default\n";

static void numa_maps_ok(void **state)
{
	nf_task_maps m;
	nf_nodeset to;
	(void)state;
	assert_int_equal(nf_nodeset_parse("1", &to), 0);
	assert_int_equal(nf_numa_maps_parse(numa_maps, &to, &m), 0);
	assert_int_equal(m.res.file[0], (2 + 40) * 4096);
	assert_int_equal(m.res.anon[0], (1 + 65536 + 5) * 4096);
	assert_int_equal(m.res.anon[1], (1 + 2) * 4096 + 2 * 2048 * 1024);
	assert_int_equal(m.stay[NF_STAY_FILE], 2 * 4096);
	assert_int_equal(m.stay[NF_STAY_SHARED], 40 * 4096);
	assert_int_equal(m.stay[NF_STAY_ANON], (1 + 65536 + 5) * 4096);
	assert_int_equal(m.stay[NF_STAY_HUGE], 0); /* on node 1, the target */
	assert_int_equal(nf_residency_outside(&m.res, &to), (2 + 40 + 1 + 65536 + 5) * 4096);
}

static void numa_maps_bad(void **state)
{
	static const char *const bad[] = {
	    "1000 default N0=x\n",
	    "1000 default N9999=1\n",
	    "1000 default anon=z N0=1\n",
	    "1000 default N0=1 kernelpagesize_kB=\n",
	    "default N0=1\n",					       /* no start */
	    "-1000 default N0=1\n",				       /* nor a sign */
	    "1000 default N0=1 kernelpagesize_kB=18014398509481985\n", /* bytes overflow */
	};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(bad); i++) {
		nf_task_maps m = {0}, zero = {0};
		/* a good line first: nothing of it may be set when a later one fails */
		char text[256];
		snprintf(text, sizeof(text), "2000 default anon=1 N0=1\n%s", bad[i]);
		assert_true(nf_numa_maps_parse(text, NULL, &m) < 0);
		assert_memory_equal(&m, &zero, sizeof(m));
	}
}

/* One line, as the mover reads it too: the start, the pages per node up to
 * the highest node named, and the tokens that say why pages may stay. */
static void numa_vma(void **state)
{
	static const char line[] = "7f0000200000 bind:0-3 file=/dev/shm/x huge dirty=2 mapmax=3 "
				   "N0=2 N3=5 kernelpagesize_kB=2048\n";
	nf_numa_vma v;
	(void)state;
	assert_int_equal(nf_numa_vma_parse(line, line + strlen(line) - 1, &v), 0);
	assert_int_equal(v.start, 0x7f0000200000);
	assert_int_equal(v.top, 4);
	assert_int_equal(v.pages[0], 2);
	assert_int_equal(v.pages[1] + v.pages[2], 0);
	assert_int_equal(v.pages[3], 5);
	assert_int_equal(v.page_kb, 2048);
	assert_int_equal(v.mapmax, 3);
	assert_true(v.file && v.huge);
	assert_int_equal(v.anon, 0);
	/* a line of a VMA with no page yet: nothing on any node */
	const char *e = "1000 default\n";
	assert_int_equal(nf_numa_vma_parse(e, e + strlen(e), &v), 0);
	assert_int_equal(v.top, 0);
	const char *l = "1000 default anon=1 N1=1\n";
	assert_int_equal(nf_numa_vma_parse(l, l + strlen(l), &v), 0);
	assert_int_equal(v.top, 2);
	assert_int_equal(v.page_kb, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(numa_stat_ok),  cmocka_unit_test(numa_stat_bad),
	    cmocka_unit_test(numa_stat_v1),  cmocka_unit_test(numa_maps_ok),
	    cmocka_unit_test(numa_maps_bad), cmocka_unit_test(numa_vma),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
