#include "identity.h"
#include "util.h"

#include <string.h>

typedef struct {
	const char *prefix, *suffix, *runtime;
	bool skip;
} pattern;

/* Order matters: the conmon patterns come before the ones they extend. */
static const pattern patterns[] = {
    {"crio-conmon-", ".scope", "crio", true},
    {"libpod-conmon-", ".scope", "podman", true},
    {"docker-", ".scope", "docker", false},
    {"libpod-", ".scope", "podman", false},
    {"cri-containerd-", ".scope", "containerd", false},
    {"crio-", ".scope", "crio", false},
    {"libpod-", "", "podman", false}, /* podman's cgroupfs manager: /libpod_parent/libpod-ID */
};

/* The n-th component from the end of REL, as [ret, ret + len). */
static bool component(const char *rel, unsigned n, const char **ret, size_t *len)
{
	const char *end = rel + strlen(rel);
	for (;;) {
		while (end > rel && end[-1] == '/')
			end--;
		const char *start = end;
		while (start > rel && start[-1] != '/')
			start--;
		if (start == end)
			return false;
		if (n-- == 0) {
			*ret = start;
			*len = end - start;
			return true;
		}
		end = start;
	}
}

static bool copy(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

static bool is_hex_id(const char *s, size_t len)
{
	return len >= 12 && strspn(s, "0123456789abcdef") >= len;
}

static bool match_scope(const char *c, size_t len, nf_identity *id)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(patterns); i++) {
		const pattern *p = &patterns[i];
		size_t pl = strlen(p->prefix), sl = strlen(p->suffix);
		if (len <= pl + sl || strncmp(c, p->prefix, pl) != 0 ||
		    strncmp(c + len - sl, p->suffix, sl) != 0)
			continue;
		strcpy(id->runtime, p->runtime);
		id->skip = p->skip;
		return copy(id->id, sizeof(id->id), c + pl, len - pl - sl);
	}
	return false;
}

/* kubelet: "pod<uid>" (cgroupfs driver) or "kubepods[-<qos>]-pod<uid with _>.slice"
 * (systemd driver). */
static bool pod_component(const char *c, size_t len, const char **uid, size_t *ulen)
{
	if (len > 3 && strncmp(c, "pod", 3) == 0) {
		*uid = c + 3;
		*ulen = len - 3;
	} else if (len > 15 && strncmp(c, "kubepods-", 9) == 0 &&
		   strncmp(c + len - 6, ".slice", 6) == 0) {
		const char *p = memmem(c, len - 6, "-pod", 4);
		if (!p)
			return false;
		*uid = p + 4;
		*ulen = c + len - 6 - *uid;
	} else {
		return false;
	}
	/* a UUID: 36 characters of hex and dashes (or underscores) */
	return *ulen == 36 && strspn(*uid, "0123456789abcdef-_") >= 36;
}

static void match_pod(const char *rel, nf_identity *id)
{
	const char *c, *uid;
	size_t len, ulen;
	for (unsigned n = 0; component(rel, n, &c, &len); n++) {
		if (!pod_component(c, len, &uid, &ulen))
			continue;
		copy(id->pod_uid, sizeof(id->pod_uid), uid, ulen);
		for (char *u = id->pod_uid; *u; u++)
			*u = *u == '_' ? '-' : *u;
		return;
	}
}

int nf_identify(const char *rel, nf_identity *ret)
{
	nf_identity id = {0};
	const char *c, *parent;
	size_t len, plen;
	bool have = component(rel, 0, &c, &len);
	bool has_parent = component(rel, 1, &parent, &plen);

	/* crun on cgroup v2 runs the container in a "container" sub-cgroup. */
	if (have && has_parent && len == 9 && strncmp(c, "container", 9) == 0) {
		c = parent;
		len = plen;
		has_parent = component(rel, 2, &parent, &plen);
	}
	if (have && !match_scope(c, len, &id)) {
		if (has_parent && plen == 6 && strncmp(parent, "docker", 6) == 0 &&
		    is_hex_id(c, len) && copy(id.id, sizeof(id.id), c, len))
			strcpy(id.runtime, "docker");
	}
	match_pod(rel, &id);
	/* cgroupfs driver: /kubepods/<qos>/pod<uid>/<id> */
	if (!id.id[0] && id.pod_uid[0] && have && is_hex_id(c, len))
		copy(id.id, sizeof(id.id), c, len);
	if (!id.id[0] && !copy(id.id, sizeof(id.id), rel, strlen(rel)))
		return -ENAMETOOLONG;
	*ret = id;
	return 0;
}
