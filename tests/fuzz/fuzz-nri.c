/* libFuzzer harness for the NRI plugin's wire: the bytes of a trunk, fed in
 * chunks the first byte sizes, through the multiplexer and ttRPC's framing
 * (plugin/nri/wire.c); every message is unpacked as the plugin would (ttRPC's
 * Request or Response, then the NRI message its method names), the update
 * decision runs on UpdateContainer's, and each message written back out
 * must read back the same. Built and run by `make check` and `make fuzz`. */
#include "../../plugin/nri/policy.h"
#include "../../plugin/nri/ttrpc.h"
#include "../../plugin/nri/wire.h"
#include "../../plugin/lib/json.h"
#include "ttrpc/request.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* The NRI request payload METHOD carries, unpacked and freed. */
static void nri_payload(const char *method, const ProtobufCBinaryData *p)
{
	nf_nodeset all = {{3}}, old, new, u;
	if (strcmp(method, "UpdateContainer") == 0) {
		Nri__Pkg__Api__V1alpha1__UpdateContainerRequest *q =
		    nri__pkg__api__v1alpha1__update_container_request__unpack(NULL, p->len,
									      p->data);
		if (q && q->container) {
			nf_nri_cgroup_facts f = {.known = true};
			free(nf_nri_cgroup_path(
			    q->container->linux ? q->container->linux->cgroups_path : NULL));
			if (nf_nri_repin_decide(true, q->container, q->linux_resources, &all, &f,
						&old, &new, &u) == NF_REPIN_ADJUST &&
			    (nf_nodeset_empty(&u) || nf_nodeset_equal(&old, &new)))
				__builtin_trap();
			json_object_put(nf_nri_registration(q->container, q->pod, "running"));
		}
		nri__pkg__api__v1alpha1__update_container_request__free_unpacked(q, NULL);
	} else if (strcmp(method, "Synchronize") == 0) {
		Nri__Pkg__Api__V1alpha1__SynchronizeRequest *q =
		    nri__pkg__api__v1alpha1__synchronize_request__unpack(NULL, p->len, p->data);
		for (size_t i = 0; q && i < q->n_containers; i++)
			json_object_put(nf_nri_registration(q->containers[i], NULL, "running"));
		nri__pkg__api__v1alpha1__synchronize_request__free_unpacked(q, NULL);
	} else if (strcmp(method, "StateChange") == 0) {
		Nri__Pkg__Api__V1alpha1__StateChangeEvent *q =
		    nri__pkg__api__v1alpha1__state_change_event__unpack(NULL, p->len, p->data);
		if (q && q->container)
			json_object_put(nf_nri_registration(q->container, q->pod, "created"));
		nri__pkg__api__v1alpha1__state_change_event__free_unpacked(q, NULL);
	} else if (strcmp(method, "Configure") == 0) {
		Nri__Pkg__Api__V1alpha1__ConfigureRequest *q =
		    nri__pkg__api__v1alpha1__configure_request__unpack(NULL, p->len, p->data);
		nri__pkg__api__v1alpha1__configure_request__free_unpacked(q, NULL);
	}
}

static void message(const nf_ttrpc_msg *m)
{
	if (m->h.type == NF_TTRPC_REQUEST) {
		Ttrpc__Request *q = ttrpc__request__unpack(NULL, m->h.length, m->payload);
		if (q)
			nri_payload(q->method, &q->payload);
		ttrpc__request__free_unpacked(q, NULL);
	} else if (m->h.type == NF_TTRPC_RESPONSE) {
		Ttrpc__Response *r = ttrpc__response__unpack(NULL, m->h.length, m->payload);
		ttrpc__response__free_unpacked(r, NULL);
	}
	/* written out in frames of any size, it reads back the same */
	nf_bytes out = {0};
	nf_wire_reader back = {0};
	nf_ttrpc_msg m2;
	size_t max = 1 + m->h.length % 5000;
	if (nf_wire_put(&out, m->conn, &m->h, m->payload, max) == 0 &&
	    nf_wire_feed(&back, out.p, out.len) == 0) {
		if (nf_wire_next(&back, &m2) != 1 || m2.conn != m->conn ||
		    m2.h.length != m->h.length || m2.h.stream != m->h.stream ||
		    memcmp(m2.payload, m->payload, m->h.length) != 0)
			__builtin_trap();
	}
	nf_wire_reader_done(&back);
	nf_bytes_done(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = 1 + data[0] % 64;
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	int e = 0;
	for (size_t off = 1; off < size && e >= 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (nf_wire_feed(&r, data + off, n) < 0)
			break;
		while ((e = nf_wire_next(&r, &m)) > 0)
			message(&m);
	}
	nf_wire_reader_done(&r);
	return 0;
}
