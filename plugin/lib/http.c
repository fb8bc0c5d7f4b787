#include "http.h"
#include "../../cgroup/util.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <string.h>

/* No answer the agent, dockerd or the API server gives us comes near this:
 * the agent's largest is a page of 1000 records. */
#define REPLY_MAX (4 * 1024 * 1024)

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	nf_http_reply *r = userdata;
	size_t add = size * n;
	if (r->len + add > REPLY_MAX) {
		r->too_big = true;
		return 0;
	}
	char *d = realloc(r->body, r->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + r->len, p, add);
	r->len += add;
	d[r->len] = '\0';
	r->body = d;
	return add;
}

typedef struct {
	CURL *c;
	const nf_http_peer *p;
	nf_http_reply *r;
	bool stopped;
} stream;

/* A 2xx body goes to the peer's on_data; an error's is collected. */
static size_t pass(char *p, size_t size, size_t n, void *userdata)
{
	stream *s = userdata;
	long status = 0;
	curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300)
		return collect(p, size, n, s->r);
	if (s->p->on_data(p, size * n, s->p->on_data_data))
		return size * n;
	s->stopped = true;
	return 0;
}

static int translate(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

/* Called about once a second while nothing moves, often while data does. */
static int progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		    curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load((const _Atomic bool *)userdata) ? 1 : 0;
}

int nf_http(const nf_http_peer *p, const char *method, const char *path, const char *body,
	    nf_http_reply *ret)
{
	_cleanup_free_ char *url = NULL, *auth = NULL, *type = NULL;
	struct curl_slist *hdr = NULL;
	nf_http_reply r = {0};
	CURL *c = curl_easy_init();
	*ret = (nf_http_reply){0};
	if (!c || asprintf(&url, "%s%s", p->url ? p->url : "http://localhost", path) < 0 ||
	    (p->token && asprintf(&auth, "Authorization: Bearer %s", p->token) < 0) ||
	    (body && asprintf(&type, "Content-Type: %s",
			      p->content_type ? p->content_type : "application/json") < 0)) {
		curl_easy_cleanup(c);
		return -ENOMEM;
	}
	if (auth)
		hdr = curl_slist_append(hdr, auth);
	if (body)
		hdr = curl_slist_append(hdr, type);
	if (!p->url)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, p->socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* That CA only: Debian's libcurl also trusts its built-in CA path
	 * (/etc/ssl/certs) unless told not to, and the token would go to any
	 * server with a certificate from a CA in the image's store. */
	if (p->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	if (p->abort) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)p->abort);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, p->connect_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->total_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r.error);
	stream st = {.c = c, .p = p, .r = &r};
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, p->on_data ? pass : collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, p->on_data ? (void *)&st : (void *)&r);
	CURLcode cr = curl_easy_perform(c);
	if (st.stopped && cr == CURLE_WRITE_ERROR)
		cr = CURLE_OK;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_off_t after = 0;
	if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
		r.retry_after_s = after;
	long oserr = 0;
	/* curl says "localhost port 80" even for a unix socket: say what connect(2) said */
	if (cr == CURLE_COULDNT_CONNECT && !p->url &&
	    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK && oserr)
		snprintf(r.error, sizeof(r.error), "%s", strerror(oserr));
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (r.too_big)
		snprintf(r.error, sizeof(r.error), "the answer is larger than %d MiB",
			 REPLY_MAX >> 20);
	if (cr != CURLE_OK && !r.error[0])
		snprintf(r.error, sizeof(r.error), "%s", curl_easy_strerror(cr));
	*ret = r;
	if (cr != CURLE_OK) {
		free(TAKE_PTR(ret->body));
		ret->len = 0;
	}
	return r.too_big ? -EFBIG : translate(cr);
}

int nf_http_setup(bool tls)
{
	return curl_global_init(tls ? CURL_GLOBAL_DEFAULT : CURL_GLOBAL_NOTHING) == CURLE_OK
		   ? 0
		   : -ENOMEM;
}

void nf_http_teardown(void)
{
	curl_global_cleanup();
}

void nf_http_reply_done(nf_http_reply *r)
{
	free(TAKE_PTR(r->body));
}

char *nf_http_escape(const char *s)
{
	CURL *c = curl_easy_init();
	char *e = c ? curl_easy_escape(c, s, 0) : NULL, *r = e ? strdup(e) : NULL;
	curl_free(e);
	curl_easy_cleanup(c);
	return r;
}
