/* The cgroup layer's hand-written code against libcgroup 2.0.2, case by case
 * (tests/bench/cgroup-scan.sh makes the tree and runs this as root):
 *   detect: finding the cpuset hierarchy (nf_hierarchy_detect; cgroup_init);
 *   walk:   listing every directory under BASE (the agent's start-up scan:
 *           opendir/readdir by d_type, against cgroup_walk_tree_*);
 *   tasks:  the processes of each container cgroup (nf_cgroup_tasks, against
 *           cgroup_get_procs and cgroup_get_task_*);
 *   pidcg:  each container process's cpuset cgroup (nf_pid_cgroup, against
 *           cgroup_get_current_controller_path).
 * Containers are BASE/pNNN/k0 (and "BASE/p000/k 9", a name with a space);
 * this program forks their processes (every 100th with a second thread) and
 * ends them. Prints the median of REPS runs of each, and every case where the
 * two disagree. */
#include "../../cgroup/cgroup.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <libcgroup.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define NCONT 1000

typedef struct {
	nf_hierarchy h;
	const char *base; /* inside the hierarchy, "/nf-cgbench" */
	char *rel[NCONT + 1];
	pid_t pid[NCONT + 1];
	size_t n;
	unsigned reps;
} bench;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

typedef void (*case_fn)(bench *b, size_t *mismatch);

/* Median wall time of REPS runs of FN, in ms; FN counts its disagreements. */
static void timed(bench *b, const char *name, case_fn fn)
{
	uint64_t t[64];
	size_t mismatch = 0;
	unsigned reps = b->reps < 64 ? b->reps : 64;
	for (unsigned i = 0; i < reps; i++) {
		uint64_t t0 = nf_now_ns();
		fn(b, &mismatch);
		t[i] = nf_now_ns() - t0;
	}
	qsort(t, reps, sizeof(*t), cmp_u64);
	printf("  %-44s %10.2f ms  (min %.2f, max %.2f)\n", name, t[reps / 2] / 1e6, t[0] / 1e6,
	       t[reps - 1] / 1e6);
	if (mismatch)
		printf("    disagreements with the hand-written code: %zu\n", mismatch / reps);
}

/* ---- detect ---- */

static void detect_nf(bench *b, size_t *mismatch)
{
	(void)b;
	for (int i = 0; i < 100; i++) {
		nf_hierarchy h;
		if (nf_hierarchy_detect(&h) < 0)
			(*mismatch)++;
		else
			nf_hierarchy_done(&h);
	}
}

/* ---- walk ---- */

/* As the agent's scan() lists a directory: by path, d_type only. */
static size_t walk_dir(const char *path)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	size_t n = 1;
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			n += walk_dir(sub);
		}
	return n;
}

static size_t n_dirs;

static void walk_nf(bench *b, size_t *mismatch)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s%s", b->h.mount, b->base);
	n_dirs = walk_dir(path);
	(void)mismatch;
}

static void walk_libcg(bench *b, size_t *mismatch)
{
	struct cgroup_file_info info;
	void *handle = NULL;
	int lvl, r = cgroup_walk_tree_begin("cpuset", b->base, 0, &handle, &info, &lvl);
	size_t n = 0;
	while (r == 0) {
		n += info.type == CGROUP_FILE_TYPE_DIR;
		r = cgroup_walk_tree_next(0, &handle, &info, lvl);
	}
	if (handle)
		cgroup_walk_tree_end(&handle);
	if (r != ECGEOF || n != n_dirs) {
		*mismatch += 1;
		if (r != ECGEOF)
			fprintf(stderr, "cgroup_walk_tree: %s\n", cgroup_strerror(r));
	}
}

/* ---- tasks ---- */

static void tasks_nf(bench *b, size_t *mismatch)
{
	for (size_t i = 0; i < b->n; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s%s", b->h.mount, b->rel[i]);
		nf_cgroup cg = {.h = &b->h, .path = path, .rel = b->rel[i]};
		pid_t *pids;
		size_t n;
		if (nf_cgroup_tasks(&cg, false, &pids, &n) < 0 || n != 1 || pids[0] != b->pid[i])
			(*mismatch)++;
		else
			free(pids);
	}
}

/* cgroup.procs, as nf_cgroup_tasks hands it on: sorted. */
static void tasks_libcg_procs(bench *b, size_t *mismatch)
{
	for (size_t i = 0; i < b->n; i++) {
		pid_t *pids = NULL;
		int n = 0;
		int r = cgroup_get_procs(b->rel[i], "cpuset", &pids, &n);
		if (r == 0 && n > 1)
			qsort(pids, n, sizeof(*pids), cmp_pid);
		if (r != 0 || n != 1 || pids[0] != b->pid[i])
			(*mismatch)++;
		free(pids);
	}
}

/* The iterator reads the "tasks" file: thread ids, and v1 only. */
static void tasks_libcg_iter(bench *b, size_t *mismatch)
{
	for (size_t i = 0; i < b->n; i++) {
		void *handle = NULL;
		pid_t pid;
		size_t n = 0;
		int r = cgroup_get_task_begin(b->rel[i], "cpuset", &handle, &pid);
		for (; r == 0; r = cgroup_get_task_next(&handle, &pid))
			n++;
		if (handle)
			cgroup_get_task_end(&handle);
		if (r != ECGEOF || n != 1)
			(*mismatch)++;
	}
}

/* ---- pidcg ---- */

static void pidcg_nf(bench *b, size_t *mismatch)
{
	for (size_t i = 0; i < b->n; i++) {
		_cleanup_free_ char *rel = NULL;
		if (nf_pid_cgroup(b->pid[i], b->h.version, &rel) < 0 || strcmp(rel, b->rel[i]))
			(*mismatch)++;
	}
}

static void pidcg_libcg(bench *b, size_t *mismatch)
{
	for (size_t i = 0; i < b->n; i++) {
		char *rel = NULL;
		int r = cgroup_get_current_controller_path(b->pid[i], "cpuset", &rel);
		if (r != 0 || strcmp(rel, b->rel[i]))
			(*mismatch)++;
		free(rel);
	}
}

/* What libcgroup answers for one process, shown once. */
static void show_pidcg(bench *b, size_t i)
{
	char *rel = NULL;
	int r = cgroup_get_current_controller_path(b->pid[i], "cpuset", &rel);
	printf("    pid in '%s': libcgroup says %s%s%s\n", b->rel[i], r ? "" : "'",
	       r ? cgroup_strerror(r) : rel, r ? "" : "'");
	free(rel);
}

/* ---- the containers' processes ---- */

static void *idle(void *p)
{
	(void)p;
	pause();
	return NULL;
}

/* Forks a process into REL's cgroup.procs (with a second thread if asked). */
static pid_t spawn(const bench *b, const char *rel, bool thread)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char path[PATH_MAX], buf[16];
		snprintf(path, sizeof(path), "%s%s/cgroup.procs", b->h.mount, rel);
		FILE *f = fopen(path, "we");
		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0)
			_exit(1);
		pthread_t t;
		if (thread && pthread_create(&t, NULL, idle, NULL) != 0)
			_exit(1);
		snprintf(buf, sizeof(buf), "ok");
		if (write(fds[1], buf, 2) != 2)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	char c[2];
	ssize_t n = pid > 0 ? read(fds[0], c, 2) : -1;
	close(fds[0]);
	return n == 2 ? pid : -1;
}

static void stop(bench *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->pid[i] > 0) {
			kill(b->pid[i], SIGKILL);
			waitpid(b->pid[i], NULL, 0);
		}
}

int main(int argc, char **argv)
{
	static bench b;
	if (argc != 3) {
		fprintf(stderr, "usage: cgroup-scan BASE REPS (tests/bench/cgroup-scan.sh)\n");
		return 2;
	}
	b.base = argv[1];
	b.reps = strtoul(argv[2], NULL, 10);
	if (b.reps == 0 || nf_hierarchy_detect(&b.h) < 0) { /* cgroup_init() too */
		fprintf(stderr, "cgroup-scan: no cpuset hierarchy, or libcgroup cannot init\n");
		return 1;
	}
	for (size_t i = 0; i <= NCONT; i++) {
		if (asprintf(&b.rel[i], i < NCONT ? "%s/p%03zu/k0" : "%s/p000/k 9", b.base, i) < 0)
			return 1;
		if ((b.pid[i] = spawn(&b, b.rel[i], i % 100 == 1)) < 0) {
			fprintf(stderr, "cgroup-scan: cannot start a process in '%s'\n", b.rel[i]);
			stop(&b);
			return 1;
		}
		b.n++;
	}
	printf("cgroup-scan: %s hierarchy at %s, median of %u runs\n", nf_hierarchy_name(&b.h),
	       b.h.mount, b.reps);
	/* libcgroup's since a9a9aad: the mountinfo parser it replaced is gone */
	printf("(c) hierarchy detection, 100 calls\n");
	timed(&b, "nf_hierarchy_detect (cgroup_init + mount points)", detect_nf);
	printf("(a) start-up walk of %s\n", b.base);
	timed(&b, "hand-written (opendir/readdir, d_type)", walk_nf);
	printf("    %zu directories\n", n_dirs);
	timed(&b, "libcgroup (cgroup_walk_tree_*)", walk_libcg);
	b.n = NCONT; /* the name with a space is shown apart */
	printf("(b) reconcile of %zu containers: tasks of each\n", b.n);
	timed(&b, "hand-written (nf_cgroup_tasks)", tasks_nf);
	timed(&b, "libcgroup (cgroup_get_procs)", tasks_libcg_procs);
	timed(&b, "libcgroup (cgroup_get_task_begin/next)", tasks_libcg_iter);
	printf("(b) reconcile of %zu containers: each process's cpuset cgroup\n", b.n);
	timed(&b, "hand-written (nf_pid_cgroup)", pidcg_nf);
	timed(&b, "libcgroup (get_current_controller_path)", pidcg_libcg);
	show_pidcg(&b, 0);
	show_pidcg(&b, NCONT);
	b.n = NCONT + 1;
	stop(&b);
	for (size_t i = 0; i <= NCONT; i++)
		free(b.rel[i]);
	nf_hierarchy_done(&b.h);
	return 0;
}
