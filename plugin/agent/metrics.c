/* GET /metrics: the Prometheus text exposition format, version 0.0.4. */
#include "metrics.h"
#include "../lib/nf.h"
#include "../../cgroup/util.h"

#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

/* A label value: well-formed UTF-8 (a cgroup's name may not be, and one bad
 * byte would fail the whole scrape), backslash, double quote and newline
 * escaped. */
static void label(FILE *f, const char *raw)
{
	_cleanup_free_ char *clean = nf_utf8_valid(raw) ? NULL : nf_utf8_clean(raw);
	const char *s = clean ? clean : raw;
	fputc('"', f);
	for (;;) {
		size_t n = strcspn(s, "\\\"\n");
		fwrite(s, 1, n, f);
		s += n;
		if (!*s)
			break;
		fputc('\\', f);
		fputc(*s == '\n' ? 'n' : *s, f);
		s++;
	}
	fputc('"', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void series(FILE *f, const char *name, const nf_container *c)
{
	fprintf(f, "%s{container=", name);
	label(f, c->id);
	fputs(",cgroup=", f);
	label(f, c->cgroup);
}

/* One family's series of every container: one pass each, so that a family's
 * lines stay together as the format wants. */
typedef struct {
	FILE *f;
	int what;
} family;

static void per_container(const nf_container *c, void *userdata)
{
	const family *fam = userdata;
	FILE *f = fam->f;
	for (unsigned n = 0; fam->what == 0 && c->anon && n < c->nnodes; n++) {
		uint64_t b = c->anon[n] + c->file[n];
		if (b) {
			series(f, "numafollow_container_memory_bytes", c);
			fprintf(f, ",node=\"%u\"} %llu\n", n, (unsigned long long)b);
		}
	}
	if (fam->what == 1) {
		series(f, "numafollow_container_residual_bytes", c);
		fprintf(f, "} %llu\n", (unsigned long long)c->outside);
	} else if (fam->what == 2) {
		series(f, "numafollow_container_tasks", c);
		fprintf(f, "} %zu\n", c->tasks);
	}
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	head(f, name, "counter", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void histogram(FILE *f, const nf_agent_stats *a)
{
	uint64_t cum = 0;
	const char *name = "numafollow_migration_duration_seconds";
	head(f, name, "histogram", "Wall time of migrations, verification included.");
	for (unsigned b = 0; b < NF_DURATION_BUCKETS; b++) {
		cum += a->duration_bucket[b];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, nf_duration_bounds[b],
			(unsigned long long)cum);
	}
	cum += a->duration_bucket[NF_DURATION_BUCKETS];
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
		(unsigned long long)cum, name, a->duration_sum, name, (unsigned long long)cum);
}

static void kube_events(FILE *f, nf_kevents *k)
{
	nf_kevents_stats s;
	nf_kevents_stats_get(k, &s);
	head(f, "numafollow_kube_events_enabled", "gauge",
	     "1 when the agent sends Kubernetes Events about pods' migrations.");
	fprintf(f, "numafollow_kube_events_enabled %d\n", s.enabled);
	head(f, "numafollow_kube_events_sent_total", "counter",
	     "Kubernetes Events the API server took: created, or a series patched for a repeat.");
	fprintf(f, "numafollow_kube_events_sent_total{kind=\"create\"} %llu\n",
		(unsigned long long)s.created);
	fprintf(f, "numafollow_kube_events_sent_total{kind=\"series\"} %llu\n",
		(unsigned long long)s.patched);
	head(f, "numafollow_kube_events_failed_total", "counter",
	     "Kubernetes Events given up, by reason (after retries where they help).");
	for (int r = 0; r < NF_KEV_FAIL_COUNT; r++)
		fprintf(f, "numafollow_kube_events_failed_total{reason=\"%s\"} %llu\n",
			nf_kev_fail_name(r), (unsigned long long)s.failed[r]);
	counter(f, "numafollow_kube_events_retries_total",
		"Requests to the API server tried again (connection errors, 5xx, 429).", s.retries);
	counter(f, "numafollow_kube_events_dropped_total",
		"Kubernetes Events dropped because the queue was full.", s.dropped);
	counter(f, "numafollow_kube_events_rate_limited_total",
		"Kubernetes Events not sent: over the rate of their pod (a burst of 25, then one "
		"per 5 minutes).",
		s.rate_limited);
	head(f, "numafollow_kube_events_queued", "gauge", "Kubernetes Events waiting to be sent.");
	fprintf(f, "numafollow_kube_events_queued %zu\n", s.queued);
}

char *nf_metrics(nf_agent *a, nf_kevents *k)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	nf_agent_stats st, *s = &st;
	if (!f)
		return NULL;
	__fsetlocking(f, FSETLOCKING_BYCALLER); /* one thread writes it */
	nf_agent_stats_get(a, &st);
	head(f, "numafollow_info", "gauge", "Version and cgroup hierarchy of the agent.");
	fprintf(f, "numafollow_info{version=\"%s\",hierarchy=\"%s\"} 1\n", NF_VERSION,
		nf_hierarchy_name(s->h));
	head(f, "numafollow_cgroups_watched", "gauge", "Cgroup directories watched.");
	fprintf(f, "numafollow_cgroups_watched %zu\n", s->cgroups_watched);
	head(f, "numafollow_container_memory_bytes", "gauge",
	     "Memory of a container on a NUMA node at the last sample.");
	nf_agent_each_container(a, per_container, &(family){f, 0});
	head(f, "numafollow_container_residual_bytes", "gauge",
	     "Memory of a container outside its effective mems at the last sample.");
	nf_agent_each_container(a, per_container, &(family){f, 1});
	head(f, "numafollow_container_tasks", "gauge", "Processes in a container's cgroup.");
	nf_agent_each_container(a, per_container, &(family){f, 2});
	head(f, "numafollow_migrations_total", "counter", "Finished migrations by result.");
	for (int r = 0; r < NF_RES_COUNT; r++)
		fprintf(f, "numafollow_migrations_total{result=\"%s\"} %llu\n", nf_result_name(r),
			(unsigned long long)s->results[r]);
	counter(f, "numafollow_moved_bytes_total", "Bytes the agent moved.", s->moved_total);
	counter(f, "numafollow_kernel_moved_bytes_total",
		"Bytes the kernel moved on cpuset.mems writes (cgroup v2), as the agent saw them.",
		s->kernel_moved_total);
	counter(f, "numafollow_residual_bytes_total",
		"Bytes left outside the target at the end of migrations.", s->residual_total);
	histogram(f, s);
	counter(f, "numafollow_watch_events_total", "inotify events read.", s->events);
	counter(f, "numafollow_watch_overflows_total", "inotify queue overflows.", s->overflows);
	counter(f, "numafollow_reconciles_total", "Periodic reconciles run.", s->reconciles);
	counter(f, "numafollow_gentle_moved_bytes_total",
		"Bytes the agent moved with move_pages (the rest: migrate_pages).",
		s->gentle_total);
	counter(f, "numafollow_assists_total",
		"Kernel migrations (others' v2 cpuset.mems writes) the agent moved memory beside.",
		s->assists);
	counter(f, "numafollow_assist_moved_bytes_total",
		"Bytes the agent moved inside others' v2 cpuset.mems writes.", s->assist_total);
	head(f, "numafollow_residue_bytes_total", "counter",
	     "Bytes left outside the target at the end of migrations, by reason.");
	for (int w = 0; w < NF_WHY_COUNT; w++)
		fprintf(f, "numafollow_residue_bytes_total{reason=\"%s\"} %llu\n", nf_why_name(w),
			(unsigned long long)s->residue_total[w]);
	head(f, "numafollow_history_persistent", "gauge",
	     "1 while the history journal is written, 0 when it cannot be (a full disk).");
	fprintf(f, "numafollow_history_persistent %d\n", s->history_persistent);
	counter(f, "numafollow_history_write_errors_total",
		"Records the history journal failed to append.", s->history_write_errors);
	counter(
	    f, "numafollow_read_errors_total",
	    "Reads of a cgroup's files or its tasks' numa_maps that failed (not for a cgroup or "
	    "task gone).",
	    s->read_errors);
	counter(f, "numafollow_drift_repairs_total",
		"Migrations started because a reconcile found memory outside the mems.",
		s->drift_repairs);
	kube_events(f, k);
	fclose(f);
	return buf;
}
