#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../cgroup/identity.h"
#include "../../cgroup/util.h"

#define CID  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID  "8d1b3e0a-5b1c-4a43-9d0e-2f4a1c9b7e21"
#define UID_ "8d1b3e0a_5b1c_4a43_9d0e_2f4a1c9b7e21"

static void layouts(void **state)
{
	static const struct {
		const char *rel, *runtime, *id, *pod;
		bool skip;
	} cases[] = {
	    /* docker, systemd and cgroupfs drivers */
	    {"/system.slice/docker-" CID ".scope", "docker", CID, "", false},
	    {"/docker/" CID, "docker", CID, "", false},
	    /* podman, and crun's /container sub-cgroup on v2 */
	    {"/machine.slice/libpod-" CID ".scope", "podman", CID, "", false},
	    {"/machine.slice/libpod-" CID ".scope/container", "podman", CID, "", false},
	    /* podman --cgroup-manager cgroupfs, as the VM test t-hook-podman.sh sees it */
	    {"/libpod_parent/libpod-" CID, "podman", CID, "", false},
	    {"/machine.slice/libpod-conmon-" CID ".scope", "podman", CID, "", true},
	    /* kubelet, systemd driver: burstable, besteffort, guaranteed */
	    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	     ".slice/cri-containerd-" CID ".scope",
	     "containerd", CID, UID, false},
	    {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	     ".slice/crio-" CID ".scope",
	     "crio", CID, UID, false},
	    {"/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" CID ".scope", "crio", CID, UID,
	     false},
	    {"/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" CID ".scope", "crio", CID,
	     UID, true},
	    /* kubelet, cgroupfs driver */
	    {"/kubepods/burstable/pod" UID "/" CID, "", CID, UID, false},
	    {"/kubepods/pod" UID "/" CID, "", CID, UID, false},
	    {"/kubepods/besteffort/pod" UID "/" CID, "", CID, UID, false},
	    /* a pod's own cgroup: the pod, no container */
	    {"/kubepods/burstable/pod" UID, "", "/kubepods/burstable/pod" UID, UID, false},
	    /* no pattern: the path is the id */
	    {"/user.slice/session-1.scope", "", "/user.slice/session-1.scope", "", false},
	    {"/", "", "/", "", false},
	    {"/docker/notanid", "", "/docker/notanid", "", false},
	    {"/x/docker-.scope", "", "/x/docker-.scope", "", false},
	    {"/kubepods/podshort/" CID, "", "/kubepods/podshort/" CID, "", false},
	};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		nf_identity id;
		print_message("%s\n", cases[i].rel);
		assert_int_equal(nf_identify(cases[i].rel, &id), 0);
		assert_string_equal(id.runtime, cases[i].runtime);
		assert_string_equal(id.id, cases[i].id);
		assert_string_equal(id.pod_uid, cases[i].pod);
		assert_int_equal(id.skip, cases[i].skip);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(layouts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
