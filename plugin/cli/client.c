/* The commands that ask the agent (numafollowd) over HTTP: status, ps,
 * history (--follow: its event stream), migrate --via-agent and move
 * --via-agent; containers by name (names.c). */
#include "cli.h"
#include "names.h"
#include "sse.h"
#include "../lib/http.h"
#include "../lib/nf.h"
#include "../lib/record.h"
#include "../../cgroup/util.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* ---- requests ---- */

/* An answer's HTTP status as a failure: 403 (a refused peer or token) and 5xx
 * are the system's, the other 4xx (an unknown id, say) the user's. */
static int status_error(long status, json_object *body, nf_cli_error *e)
{
	json_object *v;
	const char *msg = body && json_object_object_get_ex(body, "error", &v)
			      ? json_object_get_string(v)
			      : "no message";
	if (status == 403 || status >= 500)
		return nf_cli_system(e, status == 403 ? -EACCES : -EIO,
				     "the agent answered %ld: %s", status, msg);
	return nf_cli_usage(e, status == 404 ? -ENOENT : -EINVAL, "the agent answered %ld: %s",
			    status, msg);
}

/* The bearer token, or NULL without --token-file. */
static int read_token(const nf_cli_args *a, char **ret, nf_cli_error *e)
{
	char *token = NULL;
	int r = a->token_file ? nf_read_line(a->token_file, &token) : 0;
	if (r < 0)
		return nf_cli_usage(e, r, "token file '%s': %s", a->token_file, strerror(-r));
	*ret = token;
	return 0;
}

/* METHOD PATH with BODY (or NULL) on the agent; the parsed JSON answer in *RET. */
static int request_body(const nf_cli_args *a, const char *method, const char *path,
			const char *body, json_object **ret, nf_cli_error *e)
{
	_cleanup_free_ char *token = NULL;
	_cleanup_json_ json_object *o = NULL;
	nf_http_reply reply;
	int r = read_token(a, &token, e);
	if (r < 0)
		return r;
	nf_http_peer p = {.socket = a->socket,
			  .url = a->url,
			  .token = token,
			  .connect_ms = 2000,
			  .total_ms = 30000};
	r = nf_http(&p, method, path, body, &reply);
	if (r == -ENOMEM)
		return r;
	if (r == -EFBIG)
		return nf_cli_system(e, r, "the answer of the agent at '%s': %s",
				     a->url ? a->url : a->socket, reply.error);
	if (r < 0)
		return nf_cli_system(e, r,
				     "cannot reach the agent at '%s': %s (is numafollowd running?)",
				     a->url ? a->url : a->socket, reply.error);
	o = reply.body ? json_tokener_parse(reply.body) : NULL;
	nf_http_reply_done(&reply);
	if (reply.status >= 300)
		return status_error(reply.status, o, e);
	if (!o)
		return nf_cli_system(e, -EBADMSG, "the agent's answer is not JSON");
	*ret = TAKE_PTR(o);
	return 0;
}

static int request(const nf_cli_args *a, const char *method, const char *path, json_object **ret,
		   nf_cli_error *e)
{
	return request_body(a, method, path, NULL, ret, e);
}

int nf_cli_get(const nf_cli_args *a, const char *path, json_object **ret, nf_cli_error *e)
{
	return request(a, "GET", path, ret, e);
}

/* The id of the container the user named in A->arg (names.h): a cgroup
 * path goes as it is; ALLOW_GONE: an unknown name too (the history of a
 * container gone), in *RET_KNOWN false. */
static int resolve(const nf_cli_args *a, bool allow_gone, char **ret, bool *ret_known,
		   nf_cli_error *e)
{
	_cleanup_json_ json_object *o = NULL;
	_cleanup_free_ char *msg = NULL;
	const char *id = a->arg;
	int r = 0;
	*ret_known = true;
	if (a->arg[0] != '/') {
		if ((r = request(a, "GET", "/v1/containers", &o, e)) < 0)
			return r;
		r = nf_cli_resolve(json_object_object_get(o, "containers"), a->arg, &id, &msg);
	}
	if (r == -ENOENT && allow_gone) {
		*ret_known = false;
		id = a->arg;
		r = 0;
	}
	if (r < 0)
		return r == -ENOMEM ? r : nf_cli_usage(e, r, "%s", msg);
	*ret = strdup(id);
	return *ret ? 0 : -ENOMEM;
}

/* ---- reading the answers ---- */

const char *nf_cli_str(json_object *o, const char *key)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
	return *s ? s : "-";
}

int64_t nf_cli_num(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* A migration record from the agent, read as the agent writes it. */
static int read_record(json_object *o, nf_record **ret, nf_cli_error *e)
{
	const char *why = NULL;
	int r = nf_record_parse(o, ret, &why);
	return r < 0 ? nf_cli_system(e, r, "the agent's migration record is malformed: %s",
				     why ? why : strerror(-r))
		     : 0;
}

/* One row of the history table. */
static void print_record(const nf_record *r)
{
	char from[NF_NODESET_STRLEN], to[NF_NODESET_STRLEN];
	nf_nodeset_format(&r->from, from, sizeof(from));
	nf_nodeset_format(&r->to, to, sizeof(to));
	printf("%5llu %-24s %-14.14s %-9s %-5s %-5s %-10s %10.1f %10.1f %9.1f %8llu\n",
	       (unsigned long long)r->id, *r->started_at ? r->started_at : "-", r->container,
	       nf_trigger_name(r->trigger), *from ? from : "-", *to ? to : "-", nf_record_status(r),
	       nf_mib(r->moved_bytes), nf_mib(r->kernel_moved_bytes), nf_mib(r->residual_bytes),
	       (unsigned long long)r->duration_ms);
}

static void print_history_header(void)
{
	printf("%5s %-24s %-14s %-9s %-5s %-5s %-10s %10s %10s %9s %8s\n", "ID", "STARTED",
	       "CONTAINER", "TRIGGER", "FROM", "TO", "RESULT", "MOVED MiB", "KERNEL MiB",
	       "LEFT MiB", "MS");
}

static int print_history(json_object *o, nf_cli_error *e)
{
	json_object *arr = json_object_object_get(o, "migrations");
	if (!json_object_is_type(arr, json_type_array))
		return nf_cli_system(e, -EBADMSG, "the agent's answer has no migrations");
	print_history_header();
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		nf_record *r;
		int err = read_record(json_object_array_get_idx(arr, i), &r, e);
		if (err < 0)
			return err;
		print_record(r);
		nf_record_unref(r);
	}
	if (json_object_array_length(arr) == 0)
		printf("(no migrations)\n");
	return 0;
}

static bool flag(json_object *o, const char *key)
{
	return json_object_get_boolean(json_object_object_get(o, key));
}

static void print_self_check(json_object *sc)
{
	json_object *w;
	printf("self-check: own mems %s%s, CAP_SYS_NICE %s, CAP_SYS_PTRACE %s\n",
	       nf_cli_str(sc, "own_mems"),
	       flag(sc, "own_mems_cover_all") ? " (all nodes)" : " (NOT all nodes)",
	       flag(sc, "cap_sys_nice") ? "yes" : "no", flag(sc, "cap_sys_ptrace") ? "yes" : "no");
	if (json_object_object_get_ex(sc, "warnings", &w))
		for (size_t i = 0; i < json_object_array_length(w); i++)
			printf("warning: %s\n",
			       json_object_get_string(json_object_array_get_idx(w, i)));
}

static void print_status(json_object *o)
{
	json_object *sc, *m;
	printf("numafollowd %s, up %llds, cgroup %s at %s (root %s)\n", nf_cli_str(o, "version"),
	       (long long)nf_cli_num(o, "uptime_s"), nf_cli_str(o, "hierarchy"),
	       nf_cli_str(o, "mount"), nf_cli_str(o, "cgroup_root"));
	printf("containers %lld, cgroups watched %lld, workers %lld, queued %lld\n",
	       (long long)nf_cli_num(o, "containers"), (long long)nf_cli_num(o, "cgroups_watched"),
	       (long long)nf_cli_num(o, "workers"), (long long)nf_cli_num(o, "queued"));
	if (json_object_object_get_ex(o, "migrations", &m)) {
		printf("migrations:");
		json_object_object_foreach(m, k, v)
		    printf(" %s %lld", k, (long long)json_object_get_int64(v));
		printf("\n");
	}
	printf("history %s\n", flag(o, "history_persistent")
				   ? "persistent"
				   : "in memory only (the journal could not be opened)");
	if (json_object_object_get_ex(o, "self_check", &sc) && sc)
		print_self_check(sc);
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

static void print_container(json_object *c)
{
	json_object *pod;
	char mem[256], name[128], id[15];
	snprintf(id, sizeof(id), "%s", nf_cli_str(c, "id"));
	memory_cell(json_object_object_get(c, "memory"), mem, sizeof(mem));
	if (json_object_object_get_ex(c, "pod", &pod) && pod &&
	    strcmp(nf_cli_str(pod, "name"), "-") != 0)
		snprintf(name, sizeof(name), "%s/%s", nf_cli_str(pod, "name"),
			 nf_cli_str(c, "name"));
	else
		snprintf(name, sizeof(name), "%s", nf_cli_str(c, "name"));
	printf("%-14s %-10s %-20s %-6s %-6s %5lld  %-24s %9.1f  %s\n", id, nf_cli_str(c, "runtime"),
	       name, nf_cli_str(c, "mems"), nf_cli_str(c, "mems_effective"),
	       (long long)nf_cli_num(c, "tasks"), mem, nf_mib(nf_cli_num(c, "residual_bytes")),
	       nf_cli_str(c, "state"));
}

static void print_ps(json_object *o)
{
	json_object *arr = json_object_object_get(o, "containers");
	printf("%-14s %-10s %-20s %-6s %-6s %5s  %-24s %9s  %s\n", "ID", "RUNTIME", "NAME", "MEMS",
	       "EFF", "TASKS", "MEMORY MiB (node:MiB)", "LEFT MiB", "STATE");
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		print_container(json_object_array_get_idx(arr, i));
	if (json_object_array_length(arr) == 0)
		printf("(no containers)\n");
}

/* ---- commands ---- */

/* POST .../migrate or .../move (with --to), then poll the record until it
 * has a result. */
static int migrate(const nf_cli_args *a, json_object **ret, nf_record **ret_rec, nf_cli_error *e)
{
	_cleanup_free_ char *name = NULL, *id = NULL, *path = NULL, *body = NULL;
	_cleanup_json_ json_object *o = NULL;
	nf_record *rec = NULL;
	bool known, move = strcmp(a->cmd, "move") == 0;
	int r = resolve(a, false, &name, &known, e);
	if (r < 0)
		return r;
	json_object *to = move ? json_object_new_string(a->to) : NULL;
	if (move &&
	    (!to || !(body = nf_cli_format("{\"to\": %s}", json_object_to_json_string(to)))))
		r = -ENOMEM;
	json_object_put(to);
	if (r < 0 || !(id = nf_http_escape(name)) ||
	    !(path = nf_cli_format("/v1/containers/%s/%s", id, move ? "move" : "migrate")))
		return -ENOMEM;
	if ((r = request_body(a, "POST", path, body, &o, e)) < 0 ||
	    (r = read_record(o, &rec, e)) < 0)
		return r;
	if (!a->json)
		fprintf(stderr, "%s %llu queued for %s\n", move ? "move" : "migration",
			(unsigned long long)rec->id, name);
	free(path);
	if (!(path = nf_cli_format("/v1/migrations/%llu", (unsigned long long)rec->id)))
		r = -ENOMEM;
	while (r == 0 && rec->state != NF_REC_DONE) {
		json_object_put(TAKE_PTR(o));
		nf_record_unref(TAKE_PTR(rec));
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);
		if ((r = request(a, "GET", path, &o, e)) == 0)
			r = read_record(o, &rec, e);
	}
	if (r == 0) {
		*ret = TAKE_PTR(o);
		*ret_rec = TAKE_PTR(rec);
	}
	nf_record_unref(rec);
	return r;
}

/* ---- history --follow: the event stream ---- */

typedef struct {
	const nf_cli_args *a;
	const char *id; /* only this container's records, or NULL */
	nf_cli_error *e;
	int r;
	bool headed; /* the table's header is out: the agent answered */
	bool closed; /* stdout went away (a reader such as head(1) exited) */
} follower;

/* A migration-end: its record, printed as it ends; a lost event: said. */
static bool on_event(const char *type, const char *data, void *userdata)
{
	follower *f = userdata;
	_cleanup_json_ json_object *o = NULL;
	nf_record *rec = NULL;
	if (strcmp(type, "lost") == 0) {
		fprintf(stderr, "numafollow: fell behind the agent: %s events lost\n",
			json_object_get_string(
			    json_object_object_get(o = json_tokener_parse(data), "dropped")));
		return true;
	}
	if (strcmp(type, "migration-end") != 0)
		return true;
	if (!(o = json_tokener_parse(data)) || (f->r = read_record(o, &rec, f->e)) < 0)
		return f->r =
			   f->r < 0 ? f->r : nf_cli_system(f->e, -EBADMSG, "an event is not JSON"),
		       false;
	if (!f->id || strcmp(rec->container, f->id) == 0 || strcmp(rec->cgroup, f->id) == 0) {
		if (f->a->json)
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		else
			print_record(rec);
		f->closed = fflush(stdout) == EOF || ferror(stdout);
	}
	nf_record_unref(rec);
	return !f->closed;
}

/* Whether stdout's reader has gone (a pipe's, say head(1)'s): noticed
 * between records, at the stream's pings, not only at the next write. */
static bool stdout_gone(void)
{
	struct pollfd p = {.fd = STDOUT_FILENO};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static bool feed(const char *p, size_t n, void *userdata)
{
	nf_sse *s = userdata;
	follower *f = s->userdata;
	if (!f->headed && !f->a->json) {
		print_history_header();
		f->closed = fflush(stdout) == EOF || ferror(stdout);
	}
	f->headed = true;
	f->closed |= stdout_gone();
	if (f->closed)
		return false;
	if (nf_sse_feed(s, p, n) || f->r < 0 || f->closed)
		return !f->closed && f->r == 0;
	f->r = nf_cli_system(f->e, -EBADMSG, "the event stream: a line too long, or out of memory");
	return false;
}

/* Prints records as they end, until the agent goes away (exit 3). */
static int follow(const nf_cli_args *a, nf_cli_error *e)
{
	_cleanup_free_ char *token = NULL, *id = NULL;
	nf_http_reply reply;
	bool known;
	int r = a->arg ? resolve(a, true, &id, &known, e) : 0;
	if (r < 0 || (r = read_token(a, &token, e)) < 0)
		return r;
	follower f = {.a = a, .id = id, .e = e};
	nf_sse s = {.on_event = on_event, .userdata = &f};
	nf_http_peer p = {.socket = a->socket,
			  .url = a->url,
			  .token = token,
			  .connect_ms = 2000,
			  .on_data = feed,
			  .on_data_data = &s};
	r = nf_http(&p, "GET", "/v1/events", NULL, &reply);
	nf_sse_done(&s);
	_cleanup_json_ json_object *o = reply.body ? json_tokener_parse(reply.body) : NULL;
	long status = reply.status;
	nf_http_reply_done(&reply);
	if (f.closed) /* the reader has all it wanted */
		r = 0;
	else if (f.r < 0)
		r = f.r;
	else if (r == -ENOMEM)
		;
	else if (r < 0)
		r = nf_cli_system(e, r, "following the agent at '%s': %s",
				  a->url ? a->url : a->socket, reply.error);
	else if (status >= 300)
		r = status_error(status, o, e);
	else
		r = nf_cli_system(e, -EPIPE, "the agent ended the event stream (it stopped)");
	return r;
}

/* The route that answers status, ps or history; NULL when out of memory. */
static char *query_path(const nf_cli_args *a)
{
	if (strcmp(a->cmd, "status") == 0)
		return strdup("/v1/status");
	if (strcmp(a->cmd, "ps") == 0)
		return strdup("/v1/containers");
	return strdup("/v1/migrations?limit=50");
}

static int query(const nf_cli_args *a, json_object **ret, nf_cli_error *e)
{
	_cleanup_free_ char *path = NULL, *id = NULL, *esc = NULL;
	bool known = true;
	int r;
	if (strcmp(a->cmd, "history") == 0 && a->arg) {
		if ((r = resolve(a, true, &id, &known, e)) < 0)
			return r;
		if (!(esc = nf_http_escape(id)))
			return -ENOMEM;
		path = nf_cli_format("/v1/migrations?limit=50&container=%s", esc);
	} else {
		path = query_path(a);
	}
	if (!path)
		return -ENOMEM;
	if ((r = request(a, "GET", path, ret, e)) < 0)
		return r;
	/* a name that is no container now and no record's either */
	json_object *m = json_object_object_get(*ret, "migrations");
	if (!known && json_object_array_length(m) == 0) {
		_cleanup_free_ char *msg = NULL;
		const char *unused;
		json_object_put(TAKE_PTR(*ret));
		json_object *all = NULL;
		if ((r = request(a, "GET", "/v1/containers", &all, e)) < 0)
			return r;
		r = nf_cli_resolve(json_object_object_get(all, "containers"), a->arg, &unused,
				   &msg);
		json_object_put(all);
		return r == -ENOMEM ? r : nf_cli_usage(e, -ENOENT, "%s (nor any record)", msg);
	}
	return 0;
}

static int print_answer(const nf_cli_args *a, json_object *o, const nf_record *rec, nf_cli_error *e)
{
	if (strcmp(a->cmd, "status") == 0) {
		print_status(o);
	} else if (strcmp(a->cmd, "ps") == 0) {
		print_ps(o);
	} else if (strcmp(a->cmd, "history") == 0) {
		return print_history(o, e);
	} else {
		print_history_header();
		print_record(rec);
	}
	return 0;
}

/* 0 or -errno, with the verdict in *RET_STATUS: a migration that did not end
 * ok is partial. */
static int ask(const nf_cli_args *a, nf_cli_error *e, int *ret_status)
{
	_cleanup_json_ json_object *o = NULL;
	nf_record *rec = NULL;
	bool migrating = strcmp(a->cmd, "migrate") == 0 || strcmp(a->cmd, "move") == 0;
	int r = migrating ? migrate(a, &o, &rec, e) : query(a, &o, e);
	if (r == 0)
		r = a->json ? nf_cli_print_json(o) : print_answer(a, o, rec, e);
	/* a migration that did not end ok is partial */
	if (r == 0)
		*ret_status = rec && rec->result != NF_RES_OK ? NF_EXIT_PARTIAL : 0;
	nf_record_unref(rec);
	return r;
}

int nf_cli_agent(const nf_cli_args *a)
{
	_cleanup_(nf_cli_error_done) nf_cli_error e = {0};
	int status = 0, r;
	nf_http_setup(true);
	r = a->follow ? follow(a, &e) : ask(a, &e, &status);
	nf_http_teardown();
	return r < 0 ? nf_cli_fail(&e, r) : status;
}
