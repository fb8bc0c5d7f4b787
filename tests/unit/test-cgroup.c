#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../cgroup/cgroup.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static int find(const char *text, nf_hierarchy *h)
{
	_cleanup_fclose_ FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	return nf_mountinfo_find_cpuset(f, h);
}

static void mountinfo_v2(void **state)
{
	nf_hierarchy h;
	(void)state;
	assert_int_equal(find("24 1 0:22 / /proc rw - proc proc rw\n"
			      "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 "
			      "rw,nsdelegate,memory_recursiveprot\n",
			      &h),
			 0);
	assert_int_equal(h.version, NF_CG_V2);
	assert_string_equal(h.mount, "/sys/fs/cgroup");
	assert_false(h.hybrid);
	assert_null(h.memory);
	nf_hierarchy_done(&h);
}

/* Host shape of a docker-era hybrid machine (seen on this project's CI host). */
static const char hybrid[] =
    "31 25 0:27 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
    "32 31 0:28 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    "33 31 0:29 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd\n"
    "36 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw shared:15 - cgroup cgroup rw,cpu,cpuacct\n"
    "37 31 0:33 / /sys/fs/cgroup/cpuset rw shared:16 - cgroup cgroup rw,cpuset\n"
    "38 31 0:34 / /sys/fs/cgroup/memory rw shared:17 - cgroup cgroup rw,memory\n";

static void mountinfo_hybrid(void **state)
{
	nf_hierarchy h;
	(void)state;
	assert_int_equal(find(hybrid, &h), 0);
	assert_int_equal(h.version, NF_CG_V1);
	assert_string_equal(h.mount, "/sys/fs/cgroup/cpuset");
	assert_string_equal(h.memory, "/sys/fs/cgroup/memory"); /* v1 residency */
	assert_true(h.hybrid);
	nf_hierarchy_done(&h);
}

static void mountinfo_v1_shared(void **state)
{
	nf_hierarchy h;
	(void)state;
	/* cpuset co-mounted with cpu; a later bind of a sub-cgroup is ignored;
	 * \040 is a space in the mount point. */
	assert_int_equal(find("40 31 0:40 /docker/abc /mnt/sub rw - cgroup cgroup rw,cpuset\n"
			      "41 31 0:40 / /cg\\040set rw master:3 - cgroup none rw,cpu,cpuset\n",
			      &h),
			 0);
	assert_int_equal(h.version, NF_CG_V1);
	assert_string_equal(h.mount, "/cg set");
	assert_null(h.memory);
	nf_hierarchy_done(&h);
	/* cpuset co-mounted with memory: one hierarchy for both */
	assert_int_equal(find("42 31 0:41 / /cg rw - cgroup none rw,cpuset,memory\n", &h), 0);
	assert_string_equal(h.memory, "/cg");
	nf_hierarchy_done(&h);
}

/* An empty mount source leaves two spaces in a row. */
static void mountinfo_empty_source(void **state)
{
	nf_hierarchy h;
	(void)state;
	assert_int_equal(find("30 24 0:26 / /sys/fs/cgroup rw - cgroup2  rw,nsdelegate\n", &h), 0);
	assert_int_equal(h.version, NF_CG_V2);
	assert_string_equal(h.mount, "/sys/fs/cgroup");
	nf_hierarchy_done(&h);
}

static void mountinfo_none(void **state)
{
	nf_hierarchy h;
	(void)state;
	assert_int_equal(find("", &h), -ENOENT);
	assert_int_equal(find("garbage\n1 2 3\n", &h), -ENOENT);
	/* "cpusetx" is not "cpuset" */
	assert_int_equal(find("1 1 0:1 / /x rw - cgroup c rw,cpusetx\n", &h), -ENOENT);
}

static void normalize(void **state)
{
	static const struct {
		const char *arg, *rel;
	} ok[] = {
	    {"/sys/fs/cgroup", "/"},
	    {"/sys/fs/cgroup/", "/"},
	    {"/sys/fs/cgroup/a/b", "/a/b"},
	    {"a//b/./c/", "/a/b/c"},
	    {"/kubepods.slice/x.scope", "/kubepods.slice/x.scope"},
	    {"/sys/fs/cgroupX/a", "/sys/fs/cgroupX/a"}, /* not under the mount: relative */
	    {"", "/"},
	    {"...", "/..."},
	};
	static const char *const escape[] = {"..", "/..", "a/../../etc", "/sys/fs/cgroup/../x",
					     "a/.."};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(ok); i++) {
		_cleanup_free_ char *rel = NULL;
		assert_int_equal(nf_cgroup_normalize("/sys/fs/cgroup", ok[i].arg, &rel), 0);
		assert_string_equal(rel, ok[i].rel);
	}
	for (size_t i = 0; i < NF_ARRAY_SIZE(escape); i++) {
		char *rel = NULL;
		assert_int_equal(nf_cgroup_normalize("/sys/fs/cgroup", escape[i], &rel), -EXDEV);
		assert_null(rel);
	}
}

static void touch(const char *dir, const char *name, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A directory tree shaped like cgroupfs, with a symlink that escapes it. */
static void open_and_tasks(void **state)
{
	char root[] = "/tmp/nf-unit-XXXXXX", path[4096];
	(void)state;
	assert_non_null(mkdtemp(root));
	nf_hierarchy h = {.version = NF_CG_V2, .mount = root};
	snprintf(path, sizeof(path), "%s/pod", root);
	assert_int_equal(mkdir(path, 0755), 0);
	touch(path, "cgroup.procs", "30\n10\n");
	touch(path, "cpuset.mems", "0-1\n");
	touch(path, "cpuset.mems.effective", "1\n");
	snprintf(path, sizeof(path), "%s/pod/ctr", root);
	assert_int_equal(mkdir(path, 0755), 0);
	touch(path, "cgroup.procs", "20\n10\n");
	snprintf(path, sizeof(path), "%s/bad", root);
	assert_int_equal(mkdir(path, 0755), 0);
	touch(path, "cgroup.procs", "12x\n");
	snprintf(path, sizeof(path), "%s/notcg", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/link", root);
	assert_int_equal(symlink("/tmp", path), 0);

	nf_cgroup cg;
	assert_int_equal(nf_cgroup_open(&h, "/pod", &cg), 0);
	assert_string_equal(cg.rel, "/pod");
	nf_nodeset mems, eff;
	assert_int_equal(nf_cgroup_read_mems(&cg, &mems, &eff), 0);
	assert_int_equal(nf_nodeset_count(&mems), 2);
	assert_true(nf_nodeset_has(&eff, 1) && nf_nodeset_count(&eff) == 1);
	pid_t *tasks;
	size_t n;
	assert_int_equal(nf_cgroup_tasks(&cg, true, &tasks, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(tasks[0], 10);
	assert_int_equal(tasks[1], 20);
	assert_int_equal(tasks[2], 30);
	free(tasks);
	assert_int_equal(nf_cgroup_tasks(&cg, false, &tasks, &n), 0);
	assert_int_equal(n, 2); /* 10 and 30: not the child's 20 */
	free(tasks);
	nf_cgroup_done(&cg);

	/* a malformed cgroup.procs is an error, and leaks no descriptor */
	int before = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(before);
	assert_int_equal(nf_cgroup_open(&h, "/bad", &cg), 0);
	assert_int_equal(nf_cgroup_tasks(&cg, true, &tasks, &n), -EBADMSG);
	nf_cgroup_done(&cg);
	int after = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(after);
	assert_int_equal(after, before);

	assert_int_equal(nf_cgroup_open(&h, "link", &cg), -EXDEV);
	assert_int_equal(nf_cgroup_open(&h, "pod/../..", &cg), -EXDEV);
	assert_int_equal(nf_cgroup_open(&h, "missing", &cg), -ENOENT);
	assert_int_equal(nf_cgroup_open(&h, "notcg", &cg), -ENOTDIR);

	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

/* /proc/PID/cgroup: the cpuset line, as each layout writes it. */
static void proc_cgroup(void **state)
{
	static const struct {
		const char *text;
		nf_cgroup_version v;
		const char *want; /* NULL: -ENOENT */
	} cases[] = {
	    {"0::/system.slice/docker-ab.scope\n", NF_CG_V2, "/system.slice/docker-ab.scope"},
	    /* crun on v2: the process sits in a "container" sub-cgroup */
	    {"0::/machine.slice/libpod-ab.scope/container\n", NF_CG_V2,
	     "/machine.slice/libpod-ab.scope/container"},
	    {"12:memory:/docker/ab\n5:cpuset,cpu:/docker/ab\n0::/\n", NF_CG_V1, "/docker/ab"},
	    {"12:memory:/docker/ab\n5:cpuset:/docker/ab\n0::/init.scope\n", NF_CG_V2,
	     "/init.scope"},
	    {"5:cpusetx:/a\n4:xcpuset:/b\n", NF_CG_V1, NULL},
	    {"1:name=systemd:/a\n", NF_CG_V2, NULL},
	    {"0::relative\n", NF_CG_V2, NULL},
	    {"0::/no-newline", NF_CG_V2, "/no-newline"},
	    {"", NF_CG_V2, NULL},
	    {"garbage", NF_CG_V1, NULL},
	};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		char *rel = NULL;
		int r = nf_proc_cgroup_parse(cases[i].text, cases[i].v, &rel);
		if (!cases[i].want) {
			assert_int_equal(r, -ENOENT);
			continue;
		}
		assert_int_equal(r, 0);
		assert_string_equal(rel, cases[i].want);
		free(rel);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(proc_cgroup),	cmocka_unit_test(mountinfo_v2),
	    cmocka_unit_test(mountinfo_hybrid), cmocka_unit_test(mountinfo_v1_shared),
	    cmocka_unit_test(mountinfo_none),	cmocka_unit_test(mountinfo_empty_source),
	    cmocka_unit_test(normalize),	cmocka_unit_test(open_and_tasks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
