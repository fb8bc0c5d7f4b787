/* Test workload with a latency probe: allocates and touches memory, says when
 * it is ready, and runs a thread that does mmap + touch + munmap every
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 20)

typedef struct {
	char *base;
	size_t len;
} region;

static atomic_bool report_asked;

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
	region *r = arg;
	for (unsigned v = 1;; v++) {
		for (size_t off = 0; off < r->len; off += 4096)
			r->base[off] = (char)v;
		sleep_us(10000);
	}
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

static void report(const char *out, uint32_t *s, size_t n)
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
	fprintf(f, "worst_us=%u median_us=%u samples=%zu\n", worst, median, n);
	if (fclose(f) == 0)
		rename(tmp, out);
}

static void *probe(void *arg)
{
	const char *out = arg;
	uint32_t *samples = calloc(MAX_SAMPLES, sizeof(*samples));
	size_t n = 0;
	if (!samples)
		abort();
	for (;;) {
		sleep_us(1000);
		uint64_t t0 = now_us();
		char *p =
		    mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			for (size_t off = 0; off < 65536; off += 4096)
				p[off] = 1;
			munmap(p, 65536);
		}
		uint64_t dt = now_us() - t0;
		if (n < MAX_SAMPLES)
			samples[n++] = dt > UINT32_MAX ? UINT32_MAX : dt;
		if (atomic_exchange(&report_asked, false)) {
			if (out)
				report(out, samples, n);
			n = 0;
		}
	}
	return NULL;
}

static char *map(size_t len, int extra)
{
	char *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	if (p == MAP_FAILED) {
		perror("probe: mmap");
		exit(1);
	}
	return p;
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
	fprintf(stderr,
		"usage: probe [-m MIB] [-t THREADS] [-H] [-S GIB:MIB] [-r READYFILE] [-o OUTFILE]\n"
		"             [-x EXIT_AFTER_MS] [-P] [-b]\n"
		"  -m  private anonymous memory to allocate and touch (default 64)\n"
		"  -t  threads that keep writing to it\n"
		"  -H  madvise(MADV_HUGEPAGE) before touching (transparent huge pages)\n"
		"  -S  also a sparse mapping: GIB of virtual space, MIB of it touched, spread\n"
		"  -o  where SIGUSR1 writes the probe's worst_us, median_us, samples\n"
		"  -P  no probe thread\n"
		"  -b  a thread that spins without touching memory\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long mib = 64, threads = 0, exit_ms = 0, sparse_gib = 0, sparse_mib = 0;
	const char *ready = NULL, *out = NULL;
	int huge = 0, no_probe = 0, spin = 0, c;
	while ((c = getopt(argc, argv, "m:t:HS:r:o:x:Pbh")) != -1) {
		switch (c) {
		case 'm':
			mib = number(optarg);
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
		case 'b':
			spin = 1;
			break;
		default:
			usage();
		}
	}
	signal(SIGUSR1, on_usr1);
	region r = {.len = mib << 20};
	if (r.len) {
		r.base = map(r.len, 0);
		if (huge && madvise(r.base, r.len, MADV_HUGEPAGE) < 0)
			perror("probe: madvise");
		for (size_t off = 0; off < r.len; off += 4096)
			r.base[off] = 1 + (off >> 12) % 251;
	}
	if (sparse_gib) {
		size_t vlen = sparse_gib << 30, pages = (sparse_mib << 20) / 4096;
		char *s = map(vlen, MAP_NORESERVE);
		size_t stride = pages ? vlen / pages / 4096 * 4096 : vlen;
		for (size_t i = 0; i < pages; i++)
			s[i * stride] = 1;
	}
	for (unsigned long i = 0; i < threads && r.len; i++) {
		pthread_t t;
		region *part = malloc(sizeof(*part));
		if (!part)
			return 1;
		part->len = r.len / threads / 4096 * 4096;
		part->base = r.base + i * part->len;
		if (pthread_create(&t, NULL, toucher, part) != 0)
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
