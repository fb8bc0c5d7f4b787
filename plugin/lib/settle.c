#include "settle.h"
#include "journal.h"
#include "../../cgroup/util.h"

#include <string.h>
#include <time.h>

int nf_cgroup_numa_stat(const nf_cgroup *cg, nf_residency *ret)
{
	nf_residency res;
	nf_residency_source src;
	if (cg->h->version != NF_CG_V2)
		return -ENODATA;
	int r = nf_cgroup_residency(cg, NULL, 0, &res, &src);
	if (r < 0)
		return r;
	if (src != NF_SRC_NUMA_STAT)
		return -ENODATA;
	*ret = res;
	return 0;
}

int nf_kernel_migrates(const nf_cgroup *cg, bool *ret)
{
	_cleanup_free_ char *path = NULL, *v = NULL;
	if (cg->h->version == NF_CG_V2) {
		*ret = true;
		return 0;
	}
	if (asprintf(&path, "%s/cpuset.memory_migrate", cg->path) < 0)
		return -ENOMEM;
	int r = nf_read_line(path, &v);
	if (r < 0)
		return r;
	*ret = strcmp(v, "1") == 0;
	return 0;
}

/* A fingerprint of where the cgroup's memory is: memory.numa_stat's text
 * (it includes the LRU counts that page isolation changes), or the tasks'
 * numa_maps bytes per node. Also the anonymous bytes outside TO. */
static uint32_t placement(const nf_cgroup *cg, const nf_nodeset *to, unsigned nnodes,
			  uint64_t *ret_outside)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	nf_residency res = {0};
	nf_residency_source src;
	size_t n = 0;
	uint32_t crc;
	if (cg->h->version == NF_CG_V2 && asprintf(&path, "%s/memory.numa_stat", cg->path) > 0 &&
	    nf_read_file(path, &text, NULL) == 0 && nf_numa_stat_parse(text, &res) == 0) {
		crc = nf_crc32(text, strlen(text));
	} else {
		if (nf_cgroup_tasks(cg, false, &pids, &n) == 0)
			nf_cgroup_residency(cg, pids, n, &res, &src);
		crc = nf_crc32(&res, sizeof(res));
	}
	*ret_outside = 0;
	for (unsigned k = 0; k < nnodes; k++)
		*ret_outside += nf_nodeset_has(to, k) ? 0 : res.anon[k];
	return crc;
}

/* A quiet 1 s means the kernel left something: 200 ms ended, in the VM,
 * before the kernel had moved anything (it first isolates the pages and
 * drains every CPU's LRU cache). At most 60 s in all. */
bool nf_settled(uint64_t outside, unsigned quiet, uint64_t waited_ns)
{
	return outside == 0 || quiet >= 10 || waited_ns >= 60 * UINT64_C(1000000000);
}

/* Racing the kernel would only split the work and blur what each moved. */
void nf_settle(const nf_cgroup *cg, const nf_nodeset *to, unsigned nnodes,
	       const _Atomic bool *cancel)
{
	uint64_t out;
	bool migrates;
	if (nf_kernel_migrates(cg, &migrates) < 0 || !migrates)
		return;
	uint32_t prev = placement(cg, to, nnodes, &out);
	uint64_t t0 = nf_now_ns();
	for (unsigned quiet = 0; !nf_settled(out, quiet, nf_now_ns() - t0) && !*cancel;) {
		nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);
		uint32_t cur = placement(cg, to, nnodes, &out);
		quiet = cur == prev ? quiet + 1 : 0;
		prev = cur;
	}
}
