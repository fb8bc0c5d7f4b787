/* Test workload with a latency probe: allocates and touches memory shaped as
 * real services' is (one heap, many small mappings, threads that keep writing,
 * idle threads, memory shared with child processes, a mapped file, hugetlb),
 * says when it is ready, and runs a thread that does mmap + touch + munmap every
 * millisecond. mmap and munmap take the mm's mmap_lock for writing, so an
 * iteration waits for whoever holds it (a migrate_pages walk holds it for
 * reading throughout). On SIGUSR1 it writes "worst_us=W median_us=M samples=N"
 * about the iterations since the last report to the -o file and starts over.
 * No libnuma: links statically. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 20)

#define PAGE 4096

/* N mappings of LEN / N bytes each, STRIDE apart (a one-page hole between
 * two keeps the kernel from merging them into one VMA). */
typedef struct {
	char *base;
	size_t len, n, stride;
} region;

/* The I-th page of R. */
static char *page_at(const region *r, size_t i)
{
	size_t per = r->len / r->n / PAGE;
	return r->base + i / per * r->stride + i % per * PAGE;
}

/* Pages [FIRST, FIRST + N) of a region, one writer's share. */
typedef struct {
	const region *r;
	size_t first, n;
} share;

static atomic_bool report_asked;
/* pages the writer threads wrote: the workload's own throughput */
static atomic_ulong written;

static unsigned long number(const char *s)
{
	char *e;
	errno = 0;
	unsigned long v = strtoul(s, &e, 10);
	if (errno || e == s || *e) {
		fprintf(stderr, "probe: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&report_asked, true);
}

/* Writes one page in each 4 KiB of a region, forever, pausing 10 ms per pass
 * so that the touching competes with the move without starving it of CPU. */
static void *toucher(void *arg)
{
	const share *s = arg;
	for (unsigned v = 1;; v++) {
		for (size_t i = 0; i < s->n; i++) {
			*page_at(s->r, s->first + i) = (char)v;
			if (i % 256 == 255)
				atomic_fetch_add_explicit(&written, 256, memory_order_relaxed);
		}
		sleep_us(10000);
	}
	return NULL;
}

static void *idler(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Spins without touching the region: a CPU-bound thread keeps NUMA balancing
 * scanning the mm (task_numa_work runs on its ticks). */
static void *spinner(void *arg)
{
	(void)arg;
	for (volatile unsigned long i = 0;; i++)
		;
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t now_real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* when the worst iteration since the last report began (CLOCK_REALTIME, ms) */
static uint64_t worst_at_ms;

static void report(const char *out, uint32_t *s, size_t n, uint64_t us)
{
	char tmp[4096];
	uint32_t worst = 0, median = 0;
	if (n) {
		qsort(s, n, sizeof(*s), cmp_u32);
		worst = s[n - 1];
		median = s[n / 2];
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(
	    f,
	    "worst_us=%u median_us=%u samples=%zu written=%lu elapsed_us=%llu worst_at_ms=%llu\n",
	    worst, median, n, atomic_exchange(&written, 0), (unsigned long long)us,
	    (unsigned long long)worst_at_ms);
	if (fclose(f) == 0)
		rename(tmp, out);
}

/* -M: the probe only sleeps, and measures how late it wakes */
static bool sleep_only;

static void *probe(void *arg)
{
	const char *out = arg;
	uint32_t *samples = calloc(MAX_SAMPLES, sizeof(*samples));
	size_t n = 0;
	uint64_t since = now_us(), worst = 0;
	if (!samples)
		abort();
	for (;;) {
		uint64_t t0 = now_us();
		sleep_us(1000);
		if (!sleep_only)
			t0 = now_us();
		char *p = sleep_only ? MAP_FAILED
				     : mmap(NULL, 65536, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			for (size_t off = 0; off < 65536; off += 4096)
				p[off] = 1;
			munmap(p, 65536);
		}
		uint64_t dt = now_us() - t0;
		if (dt > worst) {
			worst = dt;
			worst_at_ms = now_real_ms() - dt / 1000;
		}
		if (n < MAX_SAMPLES)
			samples[n++] = dt > UINT32_MAX ? UINT32_MAX : dt;
		if (atomic_exchange(&report_asked, false)) {
			if (out)
				report(out, samples, n, now_us() - since);
			n = 0;
			worst = 0;
			since = now_us();
		}
	}
	return NULL;
}

/* Anonymous memory; FLAGS: MAP_PRIVATE or MAP_SHARED, and others. */
static char *map(size_t len, int flags)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED) {
		perror("probe: mmap");
		exit(1);
	}
	return p;
}

/* LEN bytes in N mappings, each touched page by page. */
static region private_region(size_t len, size_t n, int huge)
{
	region r = {.len = len / n / PAGE * PAGE * n, .n = n};
	r.stride = r.len / n + (n > 1 ? PAGE : 0);
	r.base = map(r.stride * n, MAP_PRIVATE);
	for (size_t i = 1; n > 1 && i <= n; i++) /* the holes */
		munmap(r.base + i * r.stride - PAGE, PAGE);
	if (huge && madvise(r.base, r.len, MADV_HUGEPAGE) < 0)
		perror("probe: madvise");
	for (size_t i = 0; i < r.len / PAGE; i++)
		*page_at(&r, i) = 1 + i % 251;
	return r;
}

static void touch(volatile char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		p[off] = p[off] + 1;
}

/* Children that map the shared memory too and wait, in this cgroup: each
 * touches every page, then stops itself to say so (as PostgreSQL's backends
 * map its shared buffers). */
static void share_with_children(char *p, size_t len, unsigned long children)
{
	for (unsigned long i = 0; i < children; i++) {
		pid_t c = fork();
		if (c == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* killing the probe ends them */
			touch(p, len);
			kill(getpid(), SIGSTOP);
			for (;;)
				pause();
		}
		int st;
		if (c < 0 || waitpid(c, &st, WUNTRACED) != c) {
			perror("probe: fork");
			exit(1);
		}
		kill(c, SIGCONT);
	}
}

/* A file's page cache, mapped and read page by page. read(2) fills the
 * cache first: faults one page at a time over 9p (the VM) take minutes. */
static void map_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	static char buf[1 << 20];
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror("probe: file");
		exit(1);
	}
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	char *p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("probe: mmap file");
		exit(1);
	}
	close(fd);
	volatile char sum = 0;
	for (off_t off = 0; off < st.st_size; off += PAGE)
		sum += p[off];
}

static void ready_file(const char *ready)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
	    rename(tmp, ready) != 0) {
		perror("probe: ready file");
		exit(1);
	}
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: probe [-m MIB] [-n MAPPINGS] [-t THREADS] [-i THREADS] [-H] [-S GIB:MIB]\n"
	    "             [-s MIB] [-c CHILDREN] [-f FILE] [-g MIB] [-r READYFILE] [-o OUTFILE]\n"
	    "             [-x EXIT_AFTER_MS] [-P] [-M] [-b]\n"
	    "  -m  private anonymous memory to allocate and touch (default 64)\n"
	    "  -n  in that many separate mappings (default 1)\n"
	    "  -t  threads that keep writing to it\n"
	    "  -i  threads that only wait\n"
	    "  -s  shared anonymous memory (shmem), mapped by -c child processes too\n"
	    "  -c  children that map the shared memory (default 1 with -s)\n"
	    "  -f  a file to map and read (its page cache)\n"
	    "  -g  hugetlb memory (MAP_HUGETLB, 2 MiB pages)\n"
	    "  -H  madvise(MADV_HUGEPAGE) before touching (transparent huge pages)\n"
	    "  -S  also a sparse mapping: GIB of virtual space, MIB of it touched, spread\n"
	    "  -o  where SIGUSR1 writes the probe's worst_us, median_us, samples\n"
	    "  -P  no probe thread\n"
	    "  -M  the probe thread does not map memory: it times its sleeps of 1 ms\n"
	    "  -b  a thread that spins without touching memory\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long mib = 64, threads = 0, exit_ms = 0, sparse_gib = 0, sparse_mib = 0;
	unsigned long n = 1, idle = 0, shared_mib = 0, children = 1, hugetlb_mib = 0;
	const char *ready = NULL, *out = NULL, *file = NULL;
	int huge = 0, no_probe = 0, spin = 0, c;
	while ((c = getopt(argc, argv, "m:n:t:i:s:c:f:g:HS:r:o:x:PMbh")) != -1) {
		switch (c) {
		case 'm':
			mib = number(optarg);
			break;
		case 'n':
			n = number(optarg);
			break;
		case 'i':
			idle = number(optarg);
			break;
		case 's':
			shared_mib = number(optarg);
			break;
		case 'c':
			children = number(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'g':
			hugetlb_mib = number(optarg);
			break;
		case 't':
			threads = number(optarg);
			break;
		case 'H':
			huge = 1;
			break;
		case 'S': {
			char *colon = strchr(optarg, ':');
			if (!colon)
				usage();
			*colon = '\0';
			sparse_gib = number(optarg);
			sparse_mib = number(colon + 1);
			break;
		}
		case 'r':
			ready = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'x':
			exit_ms = number(optarg);
			break;
		case 'P':
			no_probe = 1;
			break;
		case 'M':
			sleep_only = true;
			break;
		case 'b':
			spin = 1;
			break;
		default:
			usage();
		}
	}
	if (!n || (mib && (mib << 20) / n < PAGE)) {
		fprintf(stderr, "probe: -n needs at least a page per mapping\n");
		return 2;
	}
	signal(SIGUSR1, on_usr1);
	/* Before the private memory: children forked later share no copy of it. */
	if (shared_mib) {
		char *sp = map(shared_mib << 20, MAP_SHARED);
		touch(sp, shared_mib << 20);
		share_with_children(sp, shared_mib << 20, children);
	}
	region r = {0};
	if (mib)
		r = private_region(mib << 20, n, huge);
	if (file)
		map_file(file);
	if (hugetlb_mib) {
		char *hp = mmap(NULL, hugetlb_mib << 20, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (hp == MAP_FAILED) {
			perror("probe: mmap hugetlb");
			return 1;
		}
		touch(hp, hugetlb_mib << 20);
	}
	if (sparse_gib) {
		size_t vlen = sparse_gib << 30, pages = (sparse_mib << 20) / 4096;
		char *s = map(vlen, MAP_PRIVATE | MAP_NORESERVE);
		size_t stride = pages ? vlen / pages / 4096 * 4096 : vlen;
		for (size_t i = 0; i < pages; i++)
			s[i * stride] = 1;
	}
	for (unsigned long i = 0; i < threads && r.len; i++) {
		pthread_t t;
		share *part = malloc(sizeof(*part));
		if (!part)
			return 1;
		*part = (share){.r = &r, .n = r.len / PAGE / threads};
		part->first = i * part->n;
		if (pthread_create(&t, NULL, toucher, part) != 0)
			return 1;
	}
	for (unsigned long i = 0; i < idle; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, idler, NULL) != 0)
			return 1;
	}
	pthread_t p;
	if (spin && pthread_create(&p, NULL, spinner, NULL) != 0)
		return 1;
	if (!no_probe && pthread_create(&p, NULL, probe, (void *)out) != 0)
		return 1;
	if (ready)
		ready_file(ready);
	if (exit_ms) {
		sleep_us(exit_ms * 1000);
		return 0;
	}
	for (;;)
		pause();
}
