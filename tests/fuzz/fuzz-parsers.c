/* libFuzzer harness for every parser of untrusted text: the first byte picks
 * the parser, the rest is its input. Built and run by `make fuzz`. */
#include "../../cgroup/cgroup.h"
#include "../../cgroup/identity.h"
#include "../../cgroup/residency.h"
#include "../../cgroup/util.h"
#include "../../oci-hook/oci.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	_cleanup_free_ char *s = strndup((const char *)data + 1, size - 1);
	if (!s)
		return 0;
	nf_nodeset set, to = {{2}};
	nf_residency res = {0};
	nf_task_maps maps;
	nf_identity id;
	char buf[NF_NODESET_STRLEN];

	switch (data[0] % 9) {
	case 0:
		if (nf_nodeset_parse(s, &set) == 0)
			nf_nodeset_format(&set, buf, sizeof(buf));
		break;
	case 1:
		nf_numa_stat_parse(s, &res);
		break;
	case 2:
		nf_numa_maps_parse(s, &to, &maps);
		break;
	case 3: /* was mountinfo, which libcgroup reads now (cgroup/libcg.c) */
		nf_numa_stat_v1_parse(s, &res);
		break;
	case 4: {
		_cleanup_free_ char *rel = NULL;
		if (nf_cgroup_normalize("/sys/fs/cgroup", s, &rel) < 0)
			break;
		for (const char *c = rel; *c;) { /* no ".." component may get through */
			c += *c == '/';
			size_t n = strcspn(c, "/");
			if (n == 2 && c[0] == '.' && c[1] == '.')
				__builtin_trap();
			c += n;
		}
		break;
	}
	case 5:
		nf_identify(s, &id);
		break;
	case 6: {
		char *rel = NULL;
		if (nf_proc_cgroup_parse(s, data[0] & 8 ? NF_CG_V1 : NF_CG_V2, &rel) == 0 &&
		    rel[0] != '/')
			__builtin_trap(); /* a path, always absolute */
		free(rel);
		break;
	}
	case 7: { /* the raw bytes: a NUL inside must not confuse the length */
		nf_oci_state st;
		_cleanup_free_ char *msg = NULL, *check_msg = NULL;
		int r = nf_oci_state_parse((const char *)data + 1, size - 1, &st, &msg);
		if ((r < 0) != (msg != NULL) ||
		    (r < 0 && r != -EINVAL && r != -EFBIG && r != -ENOMEM))
			__builtin_trap(); /* a reason exactly with a -errno */
		if (r == 0) {
			r = nf_oci_state_check(
			    &st, data[0] & 16 ? NF_STAGE_PRESTART : NF_STAGE_POSTSTOP, &check_msg);
			if ((r < 0) != (check_msg != NULL))
				__builtin_trap();
			nf_oci_state_done(&st);
		}
		break;
	}
	case 8: {
		nf_oci_config c;
		_cleanup_free_ char *msg = NULL;
		int r = nf_oci_config_parse((const char *)data + 1, size - 1, &c, &msg);
		if ((r < 0) != (msg != NULL) || (r < 0 && r != -EINVAL && r != -ENOMEM))
			__builtin_trap(); /* a reason exactly with a -errno */
		if (r == 0)
			nf_oci_config_done(&c);
		break;
	}
	}
	return 0;
}
