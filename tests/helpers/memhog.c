/* Test helper: allocate and touch memory, optionally with idle threads, say
 * when ready, then wait to be killed (or exit after a delay). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static unsigned long number(const char *s)
{
	char *e;
	errno = 0;
	unsigned long v = strtoul(s, &e, 10);
	if (errno || e == s || *e) {
		fprintf(stderr, "memhog: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long mib = 64, threads = 0, exit_ms = 0, delay_ms = 0;
	int leader_exits = 0;
	unsigned long shared_mib = 0;
	const char *ready = NULL;
	int c;

	while ((c = getopt(argc, argv, "m:t:r:x:s:d:Zh")) != -1) {
		switch (c) {
		case 'm':
			mib = number(optarg);
			break;
		case 't':
			threads = number(optarg);
			break;
		case 'r':
			ready = optarg;
			break;
		case 'x':
			exit_ms = number(optarg);
			break;
		case 'Z':
			leader_exits = 1;
			break;
		case 'd':
			delay_ms = number(optarg);
			break;
		case 's':
			shared_mib = number(optarg);
			break;
		default:
			fprintf(
			    stderr,
			    "usage: memhog [-m MIB] [-t THREADS] [-r READYFILE] "
			    "[-x EXIT_AFTER_MS] [-s SHARED_MIB] [-d DELAY_MS] [-Z]\n"
			    "  -s: also SHARED_MIB of shared anonymous memory, mapped by a child "
			    "too\n"
			    "  -d: wait DELAY_MS before touching any memory\n"
			    "  -Z: the main thread exits once ready; the other threads hold on\n");
			return 2;
		}
	}
	if (delay_ms) {
		struct timespec ts = {.tv_sec = delay_ms / 1000,
				      .tv_nsec = delay_ms % 1000 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (shared_mib) {
		size_t slen = shared_mib << 20;
		char *sp =
		    mmap(NULL, slen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sp == MAP_FAILED) {
			perror("memhog: mmap shared");
			return 1;
		}
		memset(sp, 7, slen);
		/* Before the private memory: a child forked later would share that too (COW). */
		pid_t child = fork();
		if (child == 0) {
			/* fork copies no page tables of shared mappings: fault them in so
			 * that every page has mapcount 2 */
			volatile char sum = 0;
			for (size_t off = 0; off < slen; off += 4096)
				sum += sp[off];
			kill(getpid(), SIGSTOP); /* tells the parent it is done */
			for (;;)
				pause();
		}
		int st;
		if (child < 0 || waitpid(child, &st, WUNTRACED) != child) {
			perror("memhog: fork");
			return 1;
		}
		kill(child, SIGCONT);
	}
	size_t len = mib << 20;
	char *p = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
		      : NULL;
	if (p == MAP_FAILED) {
		perror("memhog: mmap");
		return 1;
	}
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1 + (off >> 12) % 251;
	for (unsigned long i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL) != 0) {
			fprintf(stderr, "memhog: pthread_create failed\n");
			return 1;
		}
	}
	if (ready) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		FILE *f = fopen(tmp, "we");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
		    rename(tmp, ready) != 0) {
			perror("memhog: ready file");
			return 1;
		}
	}
	if (leader_exits && threads)
		pthread_exit(NULL); /* a zombie leader: /proc/PID/numa_maps reads empty */
	if (exit_ms) {
		struct timespec ts = {.tv_sec = exit_ms / 1000,
				      .tv_nsec = exit_ms % 1000 * 1000000};
		nanosleep(&ts, NULL);
		return 0;
	}
	for (;;)
		pause();
}
