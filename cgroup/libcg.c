#include "libcg.h"

#include <errno.h>
#include <libcgroup.h>
#include <stdarg.h>
#include <stddef.h>

int nf_libcg_errno(int ecg)
{
	static const struct {
		int ecg, err;
	} map[] = {
	    {ECGROUPNOTCOMPILED, EOPNOTSUPP},
	    {ECGROUPNOTMOUNTED, ENOENT},
	    {ECGROUPNOTEXIST, ENOENT},
	    {ECGROUPNOTCREATED, EIO},
	    {ECGROUPSUBSYSNOTMOUNTED, ENOENT},
	    {ECGROUPNOTOWNER, EPERM},
	    {ECGROUPMULTIMOUNTED, EINVAL},
	    {ECGROUPNOTALLOWED, EPERM},
	    {ECGMAXVALUESEXCEEDED, E2BIG},
	    {ECGCONTROLLEREXISTS, EEXIST},
	    {ECGVALUEEXISTS, EEXIST},
	    {ECGINVAL, EINVAL},
	    {ECGCONTROLLERCREATEFAILED, EIO},
	    {ECGFAIL, EIO},
	    {ECGROUPNOTINITIALIZED, EINVAL},
	    {ECGROUPVALUENOTEXIST, ENOENT},
	    {ECGROUPNOTEQUAL, EINVAL},
	    {ECGCONTROLLERNOTEQUAL, EINVAL},
	    {ECGROUPPARSEFAIL, EBADMSG},
	    {ECGROUPNORULES, ENOENT},
	    {ECGMOUNTFAIL, EIO},
	    {ECGEOF, ENODATA},
	    {ECGCONFIGPARSEFAIL, EBADMSG},
	    {ECGNAMESPACEPATHS, EINVAL},
	    {ECGNAMESPACECONTROLLER, EINVAL},
	    {ECGMOUNTNAMESPACE, EINVAL},
	    {ECGROUPUNSUPP, EOPNOTSUPP},
	    {ECGCANTSETVALUE, EIO},
	    {ECGNONEMPTY, ENOTEMPTY},
	};
	if (ecg == 0)
		return 0;
	if (ecg == ECGOTHER) {
		int e = cgroup_get_last_errno();
		return e > 0 ? -e : -EIO;
	}
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].ecg == ecg)
			return -map[i].err;
	return -EIO;
}

static void quiet(void *userdata, int level, const char *fmt, va_list ap)
{
	(void)userdata, (void)level, (void)fmt, (void)ap;
}

int nf_libcg_init(void)
{
	cgroup_set_logger(quiet, 0, NULL);
	return nf_libcg_errno(cgroup_init());
}

int nf_libcg_mount(const char *controller, char **ret)
{
	return nf_libcg_errno(cgroup_get_subsys_mount_point(controller, ret));
}
