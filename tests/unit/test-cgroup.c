#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../cgroup/cgroup.h"
#include "../../cgroup/libcg.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <string.h>
#include <sys/stat.h>

/* The machine's own hierarchy, found through libcgroup. */
static void detect(void **state)
{
	nf_hierarchy h;
	char path[4096];
	(void)state;
	int r = nf_hierarchy_detect(&h);
	if (r == -ENOENT)
		skip(); /* no cpuset controller mounted here */
	assert_int_equal(r, 0);
	snprintf(path, sizeof(path), "%s/%s", h.mount,
		 h.version == NF_CG_V1 ? "cpuset.effective_mems" : "cpuset.mems.effective");
	assert_int_equal(access(path, F_OK), 0);
	if (h.memory) { /* v1 only, and a memory hierarchy */
		assert_int_equal(h.version, NF_CG_V1);
		snprintf(path, sizeof(path), "%s/memory.numa_stat", h.memory);
		assert_int_equal(access(path, F_OK), 0);
	}
	nf_hierarchy_done(&h);
}

/* libcgroup's ECG* codes become -errno at its edge. */
static void libcg_errno(void **state)
{
	(void)state;
	assert_int_equal(nf_libcg_errno(0), 0);
	assert_int_equal(nf_libcg_errno(ECGROUPNOTEXIST), -ENOENT);
	assert_int_equal(nf_libcg_errno(ECGROUPNOTMOUNTED), -ENOENT);
	assert_int_equal(nf_libcg_errno(ECGNONEMPTY), -ENOTEMPTY);
	assert_int_equal(nf_libcg_errno(ECGEOF), -ENODATA);
	assert_int_equal(nf_libcg_errno(12345), -EIO);
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

/* The growable array (cgroup/util.h): doubles from its minimum, keeps what it
 * holds, refuses a size that cannot be counted. */
static void grow(void **state)
{
	int *v = NULL;
	size_t cap = 0;
	(void)state;
	assert_int_equal(nf_grow(&v, &cap, 1, sizeof(*v), 4), 0);
	assert_int_equal(cap, 4);
	for (int i = 0; i < 4; i++)
		v[i] = i;
	assert_int_equal(nf_grow(&v, &cap, 4, sizeof(*v), 4), 0); /* fits: unchanged */
	assert_int_equal(cap, 4);
	assert_int_equal(nf_grow(&v, &cap, 5, sizeof(*v), 4), 0);
	assert_int_equal(cap, 8);
	assert_int_equal(nf_grow(&v, &cap, 33, sizeof(*v), 4), 0);
	assert_int_equal(cap, 64);
	assert_int_equal(v[3], 3);
	assert_int_equal(nf_grow(&v, &cap, SIZE_MAX / 2, sizeof(*v), 4), -ENOMEM);
	assert_int_equal(cap, 64);
	free(v);
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

/* The settings files' lines (numafollowd.conf, hook.conf): the docs promise
 * '#' comments, at the end of a line too. */
static void conf_lines(void **state)
{
	(void)state;
	struct {
		const char *line;
		int kind;
		const char *name, *value;
	} cases[] = {
	    {"workers = 2\n", 1, "workers", "2"},
	    {"workers = 2 # c\n", 1, "workers", "2"},
	    {"  workers\t=\t2\t# two workers # still\n", 1, "workers", "2"},
	    {"socket = /run/x#y.sock # the #y stays\n", 1, "socket", "/run/x#y.sock"},
	    {"kube-events = # nothing\n", 1, "kube-events", ""},
	    {"# workers = 2\n", 0, NULL, NULL},
	    {"   # indented comment\n", 0, NULL, NULL},
	    {"\n", 0, NULL, NULL},
	    {"workers 2 # = not a setting\n", -EINVAL, NULL, NULL},
	    {"workers 2\n", -EINVAL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[128], *name = NULL, *value = NULL;
		snprintf(buf, sizeof(buf), "%s", cases[i].line);
		assert_int_equal(nf_conf_line(buf, &name, &value), cases[i].kind);
		if (cases[i].kind == 1) {
			assert_string_equal(name, cases[i].name);
			assert_string_equal(value, cases[i].value);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(proc_cgroup),    cmocka_unit_test(detect),
	    cmocka_unit_test(libcg_errno),    cmocka_unit_test(normalize),
	    cmocka_unit_test(open_and_tasks), cmocka_unit_test(grow),
	    cmocka_unit_test(conf_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
