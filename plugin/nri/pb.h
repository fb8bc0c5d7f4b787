/* Short names for the NRI 0.6.1 messages that protoc-c generates from
 * proto/api.proto (package nri.pkg.api.v1alpha1). Whoever includes this
 * builds with -Ulinux: GNU C predefines `linux`, a member name in the API. */
#ifndef NF_NRI_PB_H
#define NF_NRI_PB_H

#include "api.pb-c.h"

typedef Nri__Pkg__Api__V1alpha1__Container nf_pb_container;
typedef Nri__Pkg__Api__V1alpha1__PodSandbox nf_pb_pod;
typedef Nri__Pkg__Api__V1alpha1__LinuxResources nf_pb_resources;
typedef Nri__Pkg__Api__V1alpha1__LinuxCPU nf_pb_cpu;
typedef Nri__Pkg__Api__V1alpha1__ContainerUpdate nf_pb_update;

#define NF_NRI_SERVICE_RUNTIME "nri.pkg.api.v1alpha1.Runtime"
#define NF_NRI_SERVICE_PLUGIN  "nri.pkg.api.v1alpha1.Plugin"

/* NRI's events (api.proto's Event) and the subscription bit of each. */
enum {
	NF_EV_RUN_POD_SANDBOX = 1,
	NF_EV_CREATE_CONTAINER = 4,
	NF_EV_START_CONTAINER = 6,
	NF_EV_POST_START_CONTAINER = 7,
	NF_EV_UPDATE_CONTAINER = 8,
	NF_EV_POST_UPDATE_CONTAINER = 9,
	NF_EV_STOP_CONTAINER = 10,
	NF_EV_REMOVE_CONTAINER = 11,
};
#define NF_EV_BIT(e) (1 << ((e)-1))

#endif
