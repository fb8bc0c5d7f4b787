#include "client.h"
#include "../lib/nf.h"
#include "../lib/http.h"
#include "../../cgroup/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

int nf_cli_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("numafollow: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

void nf_cli_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The HTTP status as an exit code, with the agent's error message. */
static int status_code(long status, json_object *body)
{
	json_object *e;
	if (status < 300)
		return 0;
	const char *msg = body && json_object_object_get_ex(body, "error", &e)
			      ? json_object_get_string(e)
			      : "no message";
	return nf_cli_fail(status == 403 || status >= 500 ? NF_EXIT_SYSTEM : NF_EXIT_USAGE,
			   "the agent answered %ld: %s", status, msg);
}

/* METHOD PATH on the agent; the parsed JSON body in *RET. Returns an exit code. */
static int request(const nf_client_args *a, const char *method, const char *path, json_object **ret)
{
	_cleanup_free_ char *token = NULL;
	nf_http_reply r;
	if (a->token_file) {
		int e = nf_read_line(a->token_file, &token);
		if (e < 0)
			return nf_cli_fail(NF_EXIT_USAGE, "token file '%s': %s", a->token_file,
					   strerror(-e));
	}
	nf_http_peer p = {.socket = a->socket,
			  .url = a->url,
			  .token = token,
			  .connect_ms = 2000,
			  .total_ms = 30000};
	int e = nf_http(&p, method, path, NULL, &r);
	if (e == -ENOMEM)
		return nf_cli_fail(NF_EXIT_SYSTEM, "out of memory");
	if (e < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM,
				   "cannot reach the agent at '%s': %s (is numafollowd running?)",
				   a->url ? a->url : a->socket, r.error);
	json_object *o = r.body ? json_tokener_parse(r.body) : NULL;
	nf_http_reply_done(&r);
	int code = status_code(r.status, o);
	if (code || !o) {
		json_object_put(o);
		return code ? code : nf_cli_fail(NF_EXIT_SYSTEM, "the agent's answer is not JSON");
	}
	*ret = o;
	return 0;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
	return *s ? s : "-";
}

static int64_t num(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void print_status(json_object *o)
{
	json_object *sc, *m, *w;
	printf("numafollowd %s, up %llds, cgroup %s at %s (root %s)\n", str(o, "version"),
	       (long long)num(o, "uptime_s"), str(o, "hierarchy"), str(o, "mount"),
	       str(o, "cgroup_root"));
	printf("containers %lld, cgroups watched %lld, workers %lld, queued %lld\n",
	       (long long)num(o, "containers"), (long long)num(o, "cgroups_watched"),
	       (long long)num(o, "workers"), (long long)num(o, "queued"));
	if (json_object_object_get_ex(o, "migrations", &m)) {
		printf("migrations:");
		json_object_object_foreach(m, k, v)
		    printf(" %s %lld", k, (long long)json_object_get_int64(v));
		printf("\n");
	}
	printf("history %s\n",
	       json_object_get_boolean(json_object_object_get(o, "history_persistent"))
		   ? "persistent"
		   : "in memory only (the journal could not be opened)");
	if (!json_object_object_get_ex(o, "self_check", &sc) || !sc)
		return;
	printf(
	    "self-check: own mems %s%s, CAP_SYS_NICE %s, CAP_SYS_PTRACE %s\n", str(sc, "own_mems"),
	    json_object_get_boolean(json_object_object_get(sc, "own_mems_cover_all"))
		? " (all nodes)"
		: " (NOT all nodes)",
	    json_object_get_boolean(json_object_object_get(sc, "cap_sys_nice")) ? "yes" : "no",
	    json_object_get_boolean(json_object_object_get(sc, "cap_sys_ptrace")) ? "yes" : "no");
	if (json_object_object_get_ex(sc, "warnings", &w))
		for (size_t i = 0; i < json_object_array_length(w); i++)
			printf("warning: %s\n",
			       json_object_get_string(json_object_array_get_idx(w, i)));
}

/* "0:128.0 1:0.5" (MiB per node). */
static void memory_cell(json_object *mem, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	json_object_object_foreach(mem, node, v)
	{
		int n = snprintf(buf + off, len - off, "%s%s:%.1f", off ? " " : "", node,
				 nf_mib(json_object_get_int64(v)));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
	if (!off)
		snprintf(buf, len, "-");
}

static void print_ps(json_object *o)
{
	json_object *arr = json_object_object_get(o, "containers");
	printf("%-14s %-10s %-20s %-6s %-6s %5s  %-24s %9s  %s\n", "ID", "RUNTIME", "NAME", "MEMS",
	       "EFF", "TASKS", "MEMORY MiB (node:MiB)", "LEFT MiB", "STATE");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i), *pod;
		char mem[256], name[128], id[15];
		snprintf(id, sizeof(id), "%s", str(c, "id"));
		memory_cell(json_object_object_get(c, "memory"), mem, sizeof(mem));
		if (json_object_object_get_ex(c, "pod", &pod) && pod &&
		    strcmp(str(pod, "name"), "-") != 0)
			snprintf(name, sizeof(name), "%s/%s", str(pod, "name"), str(c, "name"));
		else
			snprintf(name, sizeof(name), "%s", str(c, "name"));
		printf("%-14s %-10s %-20s %-6s %-6s %5lld  %-24s %9.1f  %s\n", id,
		       str(c, "runtime"), name, str(c, "mems"), str(c, "mems_effective"),
		       (long long)num(c, "tasks"), mem, nf_mib(num(c, "residual_bytes")),
		       str(c, "state"));
	}
	if (json_object_array_length(arr) == 0)
		printf("(no containers)\n");
}

static void print_history(json_object *o)
{
	json_object *arr = json_object_object_get(o, "migrations");
	printf("%5s %-24s %-14s %-9s %-5s %-5s %-10s %10s %10s %9s %8s\n", "ID", "STARTED",
	       "CONTAINER", "TRIGGER", "FROM", "TO", "RESULT", "MOVED MiB", "KERNEL MiB",
	       "LEFT MiB", "MS");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		char id[15];
		snprintf(id, sizeof(id), "%s", str(m, "container"));
		printf("%5lld %-24s %-14s %-9s %-5s %-5s %-10s %10.1f %10.1f %9.1f %8lld\n",
		       (long long)num(m, "id"), str(m, "started_at"), id, str(m, "trigger"),
		       str(m, "from"), str(m, "to"), str(m, "result"),
		       nf_mib(num(m, "moved_bytes")), nf_mib(num(m, "kernel_moved_bytes")),
		       nf_mib(num(m, "residual_bytes")), (long long)num(m, "duration_ms"));
	}
	if (json_object_array_length(arr) == 0)
		printf("(no migrations)\n");
}

/* POST .../migrate, then poll the record until it has a result. */
static int migrate(const nf_client_args *a, json_object **ret)
{
	_cleanup_free_ char *id = nf_http_escape(a->arg), *path = NULL;
	json_object *o = NULL;
	int code;
	if (!id || asprintf(&path, "/v1/containers/%s/migrate", id) < 0)
		return nf_cli_fail(NF_EXIT_SYSTEM, "out of memory");
	if ((code = request(a, "POST", path, &o)))
		return code;
	long long mid = num(o, "id");
	if (!a->json)
		fprintf(stderr, "migration %lld queued for %s\n", mid, a->arg);
	for (;;) {
		const char *res = str(o, "result");
		if (strcmp(res, "queued") != 0 && strcmp(res, "running") != 0)
			break;
		json_object_put(o);
		o = NULL;
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);
		free(path);
		if (asprintf(&path, "/v1/migrations/%lld", mid) < 0)
			return nf_cli_fail(NF_EXIT_SYSTEM, "out of memory");
		if ((code = request(a, "GET", path, &o)))
			return code;
	}
	*ret = o;
	return strcmp(str(o, "result"), "ok") == 0 ? 0 : NF_EXIT_PARTIAL;
}

int nf_client(const nf_client_args *a)
{
	json_object *o = NULL;
	_cleanup_free_ char *path = NULL, *id = NULL;
	int code;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(a->cmd, "migrate") == 0) {
		code = migrate(a, &o);
	} else {
		if (strcmp(a->cmd, "status") == 0)
			path = strdup("/v1/status");
		else if (strcmp(a->cmd, "ps") == 0)
			path = strdup("/v1/containers");
		else if (!a->arg)
			path = strdup("/v1/migrations?limit=50");
		else if ((id = nf_http_escape(a->arg)))
			asprintf(&path, "/v1/migrations?limit=50&container=%s", id);
		code =
		    path ? request(a, "GET", path, &o) : nf_cli_fail(NF_EXIT_SYSTEM, "out of memory");
	}
	if (o && a->json)
		nf_cli_print_json(o);
	else if (o && strcmp(a->cmd, "status") == 0)
		print_status(o);
	else if (o && strcmp(a->cmd, "ps") == 0)
		print_ps(o);
	else if (o && strcmp(a->cmd, "history") == 0)
		print_history(o);
	else if (o) {
		json_object *wrap = json_object_new_object(), *arr = json_object_new_array();
		json_object_array_add(arr, json_object_get(o));
		json_object_object_add(wrap, "migrations", arr);
		print_history(wrap);
		json_object_put(wrap);
	}
	json_object_put(o);
	curl_global_cleanup();
	return code;
}
