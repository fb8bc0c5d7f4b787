/* Driver for the mover (plugin/lib/mover.c) and its benchmarks: moves the
 * pages of PIDs with move_pages batches or one migrate_pages call per
 * process, and prints one line of JSON. --percall instead times move_pages
 * calls that move nothing (each page's target is the node it is on), to
 * measure what a call costs by itself. */
#include "../../plugin/lib/mover.h"
#include "../../cgroup/residency.h"
#include "../../cgroup/util.h"

#include <getopt.h>
#include <numaif.h>
#include <string.h>
#include <sys/syscall.h>

#define MiB (1024.0 * 1024.0)

typedef struct {
	nf_move_opts o;
	bool migrate_pages; /* --method migrate_pages */
	bool percall;
	bool sweep;	/* migrate_pages what the mover left as too sparse */
	unsigned calls; /* --percall */
	pid_t *pids;
	size_t n;
} args;

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: movetool [OPTIONS] PID...\n"
	    "  --from LIST --to LIST  pages on the i-th node of FROM go to the i-th of TO\n"
	    "                         (--to alone: from every other node)\n"
	    "  --map A:B[,C:D...]     pages on node A go to node B\n"
	    "  --threads N  --batch PAGES  --call-ms MS  --max-rate BYTES[KMG]  --deadline-ms MS\n"
	    "  --all        MPOL_MF_MOVE_ALL (shared pages)\n"
	    "  --sweep      migrate_pages what the mover left as too sparse to address\n"
	    "  --method move_pages|migrate_pages\n"
	    "  --percall [--calls N]  time move_pages calls that move nothing (first PID)\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	uint64_t v;
	if (nf_parse_u64(s, NULL, &v) < 0) {
		fprintf(stderr, "movetool: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

static uint64_t bytes(const char *s)
{
	size_t len = strlen(s);
	const char *units = "KMG", *u = len ? strchr(units, s[len - 1]) : NULL;
	if (!u || !*u)
		return number(s);
	_cleanup_free_ char *digits = strndup(s, len - 1);
	return number(digits) << (10 * (u - units + 1));
}

static void parse_map(nf_move_opts *o, char *s)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		char *colon = strchr(tok, ':');
		if (!colon)
			usage();
		*colon = '\0';
		uint64_t a = number(tok), b = number(colon + 1);
		if (a >= NF_MAX_NODES || b >= NF_MAX_NODES)
			usage();
		o->dest[a] = b;
	}
}

static void map_sets(nf_move_opts *o, const char *from, const char *to)
{
	nf_nodeset f = {0}, t;
	if (nf_nodeset_parse(to, &t) < 0 || (from && nf_nodeset_parse(from, &f) < 0))
		usage();
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		if (from && nf_nodeset_has(&f, n))
			o->dest[n] = nf_nodeset_remap(n, &f, &t);
		else if (!from && !nf_nodeset_has(&t, n))
			o->dest[n] = nf_nodeset_remap(0, &t, &t); /* the first node of TO */
	}
}

static void parse(int argc, char **argv, args *a)
{
	static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
					     {"to", required_argument, NULL, 't'},
					     {"map", required_argument, NULL, 'M'},
					     {"threads", required_argument, NULL, 'j'},
					     {"batch", required_argument, NULL, 'b'},
					     {"call-ms", required_argument, NULL, 'C'},
					     {"max-rate", required_argument, NULL, 'r'},
					     {"deadline-ms", required_argument, NULL, 'd'},
					     {"method", required_argument, NULL, 'm'},
					     {"all", no_argument, NULL, 'A'},
					     {"percall", no_argument, NULL, 'P'},
					     {"sweep", no_argument, NULL, 'S'},
					     {"calls", required_argument, NULL, 'c'},
					     {NULL, 0, NULL, 0}};
	const char *from = NULL, *to = NULL;
	int c;
	nf_move_opts_init(&a->o);
	a->calls = 200;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = optarg;
			break;
		case 't':
			to = optarg;
			break;
		case 'M':
			parse_map(&a->o, optarg);
			break;
		case 'j':
			a->o.threads = number(optarg);
			break;
		case 'b':
			a->o.batch_pages = number(optarg);
			break;
		case 'C':
			a->o.call_ns = number(optarg) * 1000000;
			break;
		case 'r':
			a->o.max_rate = bytes(optarg);
			break;
		case 'd':
			a->o.deadline_ns = nf_now_ns() + number(optarg) * 1000000;
			break;
		case 'm':
			if (strcmp(optarg, "move_pages") && strcmp(optarg, "migrate_pages"))
				usage();
			a->migrate_pages = strcmp(optarg, "migrate_pages") == 0;
			break;
		case 'A':
			a->o.move_all = true;
			break;
		case 'P':
			a->percall = true;
			break;
		case 'S':
			a->sweep = true;
			break;
		case 'c':
			a->calls = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (to)
		map_sets(&a->o, from, to);
	a->n = argc - optind;
	if (!a->n)
		usage();
	a->pids = calloc(a->n, sizeof(*a->pids));
	for (size_t i = 0; a->pids && i < a->n; i++)
		a->pids[i] = number(argv[optind + i]);
}

/* Bytes of PIDS on nodes with a destination, from numa_maps. */
static uint64_t on_sources(const args *a)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < a->n; i++) {
		nf_task_maps m;
		pid_t tid;
		if (nf_task_thread(a->pids[i], &tid) < 0 ||
		    nf_task_numa_maps(a->pids[i], tid, NULL, &m) < 0)
			continue;
		for (unsigned n = 0; n < NF_MAX_NODES; n++)
			if (a->o.dest[n] >= 0 && a->o.dest[n] != (int)n)
				sum += nf_residency_node(&m.res, n);
	}
	return sum;
}

/* One migrate_pages call per source node and process, as the engine does. */
static int migrate(const args *a, nf_move_result *res)
{
	unsigned long maxnode = NF_MAX_NODES + 1;
	for (size_t i = 0; i < a->n; i++) {
		pid_t tid;
		if (nf_task_thread(a->pids[i], &tid) < 0) {
			res->tasks_exited++;
			continue;
		}
		for (unsigned n = 0; n < NF_MAX_NODES; n++) {
			uint64_t f[NF_MAX_NODES / 64 + 1] = {0}, t[NF_MAX_NODES / 64 + 1] = {0};
			int d = a->o.dest[n];
			if (d < 0 || d == (int)n)
				continue;
			f[n / 64] |= UINT64_C(1) << (n % 64);
			t[d / 64] |= UINT64_C(1) << (d % 64);
			res->calls++;
			long r = syscall(SYS_migrate_pages, tid, maxnode, f, t);
			if (r < 0 && errno == ESRCH) {
				res->tasks_exited++;
				break;
			}
			if (r < 0)
				return -errno;
			res->stayed_bytes[NF_MOVE_OTHER] += (uint64_t)r * 4096;
		}
	}
	return 0;
}

static void print_result(const args *a, const nf_move_result *r, uint64_t before, uint64_t after)
{
	double s = r->duration_ns / 1e9, moved = before > after ? (before - after) / MiB : 0;
	printf("{\"method\":\"%s\",\"pids\":%zu,\"threads\":%u,\"batch_pages\":%zu,",
	       a->migrate_pages ? "migrate_pages" : "move_pages", a->n, r->threads, r->batch_pages);
	printf("\"ms\":%.1f,\"scan_ms\":%.1f,\"moved_mib\":%.1f,\"mib_s\":%.1f,", s * 1e3,
	       r->scan_ns / 1e6, r->moved_bytes / MiB, s > 0 ? r->moved_bytes / MiB / s : 0);
	printf("\"verified_moved_mib\":%.1f,\"left_on_sources_mib\":%.1f,", moved, after / MiB);
	printf("\"calls\":%llu,\"addresses\":%llu,\"query_calls\":%llu,\"call_ms_max\":%.1f,"
	       "\"stayed_mib\":{",
	       (unsigned long long)r->calls, (unsigned long long)r->addresses,
	       (unsigned long long)r->query_calls, r->call_ns_max / 1e6);
	for (unsigned c = 0; c < NF_MOVE_ERR_COUNT; c++)
		printf("%s\"%s\":%.2f", c ? "," : "", nf_move_err_name(c),
		       r->stayed_bytes[c] / MiB);
	printf("},\"sparse_mib\":%.1f,\"left_mib\":%.1f,\"tasks_exited\":%zu,",
	       r->sparse_bytes / MiB, r->left_bytes / MiB, r->tasks_exited);
	printf("\"deadline_hit\":%s,\"cancelled\":%s,\"error\":\"%s\"}\n",
	       r->deadline_hit ? "true" : "false", r->cancelled ? "true" : "false",
	       r->error ? strerror(-r->error) : "");
}

/* The largest VMA of PID that is private and writable. */
static int largest_vma(pid_t pid, uint64_t *ret_start, uint64_t *ret_end)
{
	char path[64];
	_cleanup_free_ char *text = NULL;
	uint64_t best = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	int r = nf_read_file(path, &text, NULL);
	if (r < 0)
		return r;
	for (char *line = text; *line; line += strcspn(line, "\n"), line += *line == '\n') {
		unsigned long long s, e;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) == 3 && perms[1] == 'w' &&
		    perms[3] == 'p' && e - s > best) {
			best = e - s;
			*ret_start = s;
			*ret_end = e;
		}
	}
	return best ? 0 : -ENOENT;
}

/* Calls of BATCH addresses over the largest VMA, each page "moved" to the node
 * it is on: the kernel still does lru_cache_disable() and a walk per page. */
static int percall(const args *a)
{
	size_t batch = a->o.batch_pages ? a->o.batch_pages : 4096;
	uint64_t s, e, pos, spent = 0, worst = 0;
	int r = largest_vma(a->pids[0], &s, &e);
	if (r < 0)
		return r;
	_cleanup_free_ void **addr = calloc(batch, sizeof(*addr));
	_cleanup_free_ int *nodes = calloc(batch, sizeof(*nodes));
	_cleanup_free_ int *st = calloc(batch, sizeof(*st));
	if (!addr || !nodes || !st)
		return -ENOMEM;
	pos = s;
	for (unsigned c = 0; c < a->calls; c++) {
		for (size_t i = 0; i < batch; i++, pos = pos + 4096 < e ? pos + 4096 : s)
			addr[i] = (void *)(uintptr_t)pos;
		if (syscall(SYS_move_pages, a->pids[0], batch, addr, NULL, st, 0) < 0)
			return -errno;
		for (size_t i = 0; i < batch; i++)
			nodes[i] = st[i] >= 0 ? st[i] : 0;
		uint64_t t0 = nf_now_ns();
		if (syscall(SYS_move_pages, a->pids[0], batch, addr, nodes, st, MPOL_MF_MOVE) < 0)
			return -errno;
		uint64_t dt = nf_now_ns() - t0;
		spent += dt;
		worst = dt > worst ? dt : worst;
	}
	printf("{\"method\":\"percall\",\"batch_pages\":%zu,\"calls\":%u,\"us_per_call\":%.1f,"
	       "\"ns_per_page\":%.1f,\"worst_call_us\":%.1f}\n",
	       batch, a->calls, spent / 1e3 / a->calls, (double)spent / a->calls / batch,
	       worst / 1e3);
	return 0;
}

static int run(args *a)
{
	nf_move_result res = {0};
	if (a->percall)
		return percall(a);
	uint64_t before = on_sources(a), t0 = nf_now_ns();
	int r = a->migrate_pages ? migrate(a, &res) : nf_move_pages(a->pids, a->n, &a->o, &res);
	if (r < 0)
		return r;
	if (!a->migrate_pages && a->sweep && res.sparse_bytes) {
		nf_move_result swept = {0};
		r = migrate(a, &swept);
		if (r < 0)
			return r;
		res.duration_ns = nf_now_ns() - t0;
	}
	if (a->migrate_pages) {
		res.duration_ns = nf_now_ns() - t0;
		res.tasks = a->n;
	}
	uint64_t after = on_sources(a);
	if (a->migrate_pages)
		res.moved_bytes = before > after ? before - after : 0;
	print_result(a, &res, before, after);
	return 0;
}

int main(int argc, char **argv)
{
	args a = {0};
	parse(argc, argv, &a);
	if (!a.pids)
		return 1;
	int r = run(&a);
	free(a.pids);
	if (r < 0) {
		fprintf(stderr, "movetool: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}
