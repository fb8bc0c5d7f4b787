/* The NRI plugin's decisions (policy.h). */
#include "policy.h"
#include "../lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CRI's annotations that name a container's pod (BRIEF.md section 4),
 * with the field of the NRI messages that says the same. */
static bool add_missing(json_object *ann, const char *key, const char *value)
{
	if (!value || !*value || json_object_object_get_ex(ann, key, NULL))
		return true;
	return nf_json_add(ann, key, json_object_new_string(value));
}

static json_object *annotations(const nf_pb_container *c, const nf_pb_pod *pod)
{
	json_object *ann = json_object_new_object();
	for (size_t i = 0; ann && i < c->n_annotations; i++) {
		const char *k = c->annotations[i]->key, *v = c->annotations[i]->value;
		if (k && v && !nf_json_add(ann, k, json_object_new_string(v)))
			return json_object_put(ann), NULL;
	}
	bool ok = ann && add_missing(ann, "io.kubernetes.cri.container-name", c->name);
	if (ok && pod)
		ok = add_missing(ann, "io.kubernetes.cri.sandbox-id", pod->id) &&
		     add_missing(ann, "io.kubernetes.cri.sandbox-name", pod->name) &&
		     add_missing(ann, "io.kubernetes.cri.sandbox-namespace", pod->namespace_) &&
		     add_missing(ann, "io.kubernetes.cri.sandbox-uid", pod->uid);
	if (!ok)
		return json_object_put(ann), NULL;
	return ann;
}

json_object *nf_nri_registration(const nf_pb_container *c, const nf_pb_pod *pod, const char *status)
{
	if (!c || !c->id || !*c->id || c->pid == 0 || c->pid > INT32_MAX)
		return NULL;
	json_object *o = json_object_new_object();
	bool ok = o && nf_json_add(o, "id", json_object_new_string(c->id)) &&
		  nf_json_add(o, "pid", json_object_new_int((int32_t)c->pid)) &&
		  (!status || nf_json_add(o, "status", json_object_new_string(status))) &&
		  nf_json_add(o, "annotations", annotations(c, pod));
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

static const char *const verdicts[NF_REPIN_COUNT] = {
    [NF_REPIN_ADJUST] = "re-pinned gently: old and new nodes now, narrowed after the move",
    [NF_REPIN_OFF] = "the re-pin setting is off",
    [NF_REPIN_NO_CHANGE] = "the update leaves the mems as they are",
    [NF_REPIN_WIDENS] = "the new mems include the old: the kernel moves nothing",
    [NF_REPIN_NOT_RUNNING] = "the container is not running: the runtime only updates its spec",
    [NF_REPIN_BAD_MEMS] = "a node list that does not parse",
    [NF_REPIN_SWAP] = "its spec has a swap limit other than its memory limit, which an "
		      "adjusted update would reset (NRI 0.6.1 forwards no swap)",
    [NF_REPIN_NO_CGROUP] = "its cgroup's memory.min, .low and .high could not be read: whether "
			   "kubelet's `unified` values would survive is unknown",
    [NF_REPIN_UNIFIED] = "its cgroup has memory.min, .low or .high set (kubelet's MemoryQoS, "
			 "through `unified`), which an adjusted update would drop",
};

const char *nf_repin_verdict_text(nf_repin_verdict v)
{
	return v < NF_REPIN_COUNT ? verdicts[v] : "?";
}

const char *nf_nri_spec_mems(const nf_pb_container *c)
{
	const char *m = c && c->linux && c->linux->resources && c->linux->resources->cpu
			    ? c->linux->resources->cpu->mems
			    : NULL;
	return m ? m : "";
}

/* A swap limit in the spec other than the memory limit: kubelet's LimitedSwap
 * or unlimited swap. containerd sets swap = limit itself otherwise, which is
 * also what an adjusted update ends with. */
static bool own_swap(const nf_pb_container *c)
{
	const Nri__Pkg__Api__V1alpha1__LinuxMemory *m =
	    c->linux && c->linux->resources ? c->linux->resources->memory : NULL;
	if (!m || !m->swap)
		return false;
	return !m->limit || m->limit->value != m->swap->value;
}

nf_repin_verdict nf_nri_repin_decide(bool enabled, const nf_pb_container *c,
				     const nf_pb_resources *q, const nf_nodeset *all,
				     const nf_nri_cgroup_facts *facts, nf_nodeset *ret_old,
				     nf_nodeset *ret_new, nf_nodeset *ret_union)
{
	const char *want = q && q->cpu && q->cpu->mems ? q->cpu->mems : "";
	const char *had = nf_nri_spec_mems(c);
	nf_nodeset old = *all, new, extra;
	if (!enabled)
		return NF_REPIN_OFF;
	if (!*want)
		return NF_REPIN_NO_CHANGE;
	if (nf_nodeset_parse(want, &new) < 0 || nf_nodeset_empty(&new) ||
	    (*had && nf_nodeset_parse(had, &old) < 0))
		return NF_REPIN_BAD_MEMS;
	nf_nodeset_minus(&old, &new, &extra);
	if (nf_nodeset_equal(&old, &new))
		return NF_REPIN_NO_CHANGE;
	if (nf_nodeset_empty(&extra))
		return NF_REPIN_WIDENS;
	if (c->state != NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING)
		return NF_REPIN_NOT_RUNNING;
	if (own_swap(c))
		return NF_REPIN_SWAP;
	if (!facts || !facts->known)
		return NF_REPIN_NO_CGROUP;
	if (facts->unified_memory)
		return NF_REPIN_UNIFIED;
	*ret_old = old;
	*ret_new = new;
	nf_nodeset_union(&old, &new, ret_union);
	return NF_REPIN_ADJUST;
}

/* "/a.slice/a-b.slice/a-b-c.slice" for "a-b-c.slice", as systemd nests
 * slices; "" for "-.slice", the root. */
static char *expand_slice(const char *slice)
{
	size_t n = strlen(slice);
	if (n < 6 || strcmp(slice + n - 6, ".slice") != 0)
		return NULL;
	if (strcmp(slice, "-.slice") == 0)
		return strdup("");
	char *out = malloc(n * (n / 2 + 2) + 2), *p = out;
	if (!out)
		return NULL;
	*p = '\0';
	for (size_t i = 0; i <= n - 6; i++)
		if (i == n - 6 || slice[i] == '-') {
			if (i == 0 || slice[i - 1] == '-') /* "a--b", "-a": not systemd's */
				return free(out), NULL;
			p += sprintf(p, "/%.*s.slice", (int)i, slice);
		}
	return out;
}

char *nf_nri_cgroup_path(const char *cgroups_path)
{
	char *out = NULL;
	if (!cgroups_path || !*cgroups_path)
		return NULL;
	if (cgroups_path[0] == '/')
		return strstr(cgroups_path, "/..") ? NULL : strdup(cgroups_path);
	const char *c1 = strchr(cgroups_path, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || strchr(c2 + 1, ':') || strchr(cgroups_path, '/'))
		return NULL;
	char *slice = strndup(cgroups_path, c1 - cgroups_path);
	char *parent = slice ? expand_slice(slice) : NULL;
	if (parent &&
	    asprintf(&out, "%s/%.*s-%s.scope", parent, (int)(c2 - c1 - 1), c1 + 1, c2 + 1) < 0)
		out = NULL;
	free(slice);
	free(parent);
	return out;
}

nf_pb_update *nf_nri_mems_update(const char *id, const nf_nodeset *set, bool ignore)
{
	char buf[NF_NODESET_STRLEN];
	nf_pb_update *u = calloc(1, sizeof(*u));
	Nri__Pkg__Api__V1alpha1__LinuxContainerUpdate *l = calloc(1, sizeof(*l));
	nf_pb_resources *r = calloc(1, sizeof(*r));
	nf_pb_cpu *cpu = calloc(1, sizeof(*cpu));
	if (u && l && r && cpu) {
		nri__pkg__api__v1alpha1__container_update__init(u);
		nri__pkg__api__v1alpha1__linux_container_update__init(l);
		nri__pkg__api__v1alpha1__linux_resources__init(r);
		nri__pkg__api__v1alpha1__linux_cpu__init(cpu);
		u->container_id = strdup(id);
		cpu->mems = strdup(nf_nodeset_format(set, buf, sizeof(buf)));
		u->linux = l, l->resources = r, r->cpu = cpu;
		u->ignore_failure = ignore;
		if (u->container_id && cpu->mems)
			return u;
		nf_nri_update_free(u);
		return NULL;
	}
	free(u), free(l), free(r), free(cpu);
	return NULL;
}

void nf_nri_update_free(nf_pb_update *u)
{
	if (!u)
		return;
	if (u->linux && u->linux->resources && u->linux->resources->cpu)
		free(u->linux->resources->cpu->mems);
	if (u->linux && u->linux->resources)
		free(u->linux->resources->cpu);
	if (u->linux)
		free(u->linux->resources);
	free(u->linux);
	free(u->container_id);
	free(u);
}
