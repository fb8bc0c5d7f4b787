/* The NRI plugin's wire (plugin/nri/wire.c: the multiplexer and ttRPC's framing),
 * its messages (plugin/nri/ttrpc.c) and its decisions (plugin/nri/policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../plugin/nri/policy.h"
#include "../../plugin/nri/ttrpc.h"
#include "../../plugin/nri/wire.h"
#include "../../plugin/lib/json.h"
#include "ttrpc/request.pb-c.h"

#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* N bytes of a recognisable pattern, for payloads. */
static uint8_t *pattern(size_t n, uint8_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
	return p;
}

static void put_msg(nf_bytes *out, uint32_t conn, uint32_t stream, const uint8_t *p, size_t n,
		    size_t max)
{
	nf_ttrpc_hdr h = {.length = n, .stream = stream, .type = NF_TTRPC_REQUEST};
	assert_int_equal(nf_wire_put(out, conn, &h, p, max), 0);
}

static void roundtrip_small(void **state)
{
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	put_msg(&out, NF_MUX_PLUGIN, 3, (const uint8_t *)"hello", 5, 0);
	/* one frame: the mux header, the ttRPC header, the payload */
	assert_int_equal(out.len, NF_MUX_HDR + NF_TTRPC_HDR + 5);
	assert_int_equal(be32(out.p), NF_MUX_PLUGIN);
	assert_int_equal(be32(out.p + 4), NF_TTRPC_HDR + 5);
	assert_int_equal(be32(out.p + 8), 5);  /* ttRPC length */
	assert_int_equal(be32(out.p + 12), 3); /* stream */
	assert_int_equal(out.p[16], NF_TTRPC_REQUEST);
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	assert_int_equal(nf_wire_next(&r, &m), 1);
	assert_int_equal(m.conn, NF_MUX_PLUGIN);
	assert_int_equal(m.h.stream, 3);
	assert_int_equal(m.h.length, 5);
	assert_memory_equal(m.payload, "hello", 5);
	assert_int_equal(nf_wire_next(&r, &m), 0);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
}

/* A message larger than a frame goes out in frames of at most 4096 bytes
 * (the runtime's buffer), and comes back whole. */
static void split_large(void **state)
{
	size_t n = 9000;
	uint8_t *p = pattern(n, 1);
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	put_msg(&out, NF_MUX_RUNTIME, 1, p, n, 0);
	size_t frames = 0, carried = 0;
	for (size_t off = 0; off < out.len; frames++) {
		uint32_t len = be32(out.p + off + 4);
		assert_int_equal(be32(out.p + off), NF_MUX_RUNTIME);
		assert_true(len <= NF_NRI_FRAME_MAX);
		assert_true(len > 0);
		carried += len;
		off += NF_MUX_HDR + len;
	}
	assert_int_equal(carried, NF_TTRPC_HDR + n);
	assert_int_equal(frames, 3); /* 4096 + 4096 + 818 */
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	assert_int_equal(nf_wire_next(&r, &m), 1);
	assert_int_equal(m.h.length, n);
	assert_memory_equal(m.payload, p, n);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
	free(p);
}

/* Small frame limits cut the ttRPC header itself across frames. */
static void split_header(void **state)
{
	uint8_t *p = pattern(40, 9);
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	put_msg(&out, NF_MUX_PLUGIN, 5, p, 40, 3);
	assert_int_equal(out.len, (NF_TTRPC_HDR + 40 + 2) / 3 * NF_MUX_HDR + NF_TTRPC_HDR + 40);
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	assert_int_equal(nf_wire_next(&r, &m), 1);
	assert_int_equal(m.h.stream, 5);
	assert_memory_equal(m.payload, p, 40);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
	free(p);
}

/* Fed a byte at a time, a message appears only once it is complete. */
static void byte_by_byte(void **state)
{
	uint8_t *p = pattern(5000, 3);
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	put_msg(&out, NF_MUX_PLUGIN, 7, p, 5000, 0);
	for (size_t i = 0; i < out.len; i++) {
		assert_int_equal(nf_wire_feed(&r, out.p + i, 1), 0);
		assert_int_equal(nf_wire_next(&r, &m), i + 1 == out.len);
	}
	assert_memory_equal(m.payload, p, 5000);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
	free(p);
}

/* Two connections' frames interleaved on the trunk, and frames of ids nobody
 * opened (0, 5), which are dropped. */
static void interleaved(void **state)
{
	uint8_t *a = pattern(6000, 1), *b = pattern(7000, 2);
	nf_bytes ma = {0}, mb = {0}, trunk = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	put_msg(&ma, NF_MUX_PLUGIN, 1, a, 6000, 1000);
	put_msg(&mb, NF_MUX_RUNTIME, 2, b, 7000, 1500);
	put_msg(&trunk, 5, 9, a, 100, 0);
	size_t ia = 0, ib = 0;
	while (ia < ma.len || ib < mb.len) { /* a frame of each in turn */
		if (ia < ma.len) {
			size_t n = NF_MUX_HDR + be32(ma.p + ia + 4);
			nf_bytes_put(&trunk, ma.p + ia, n);
			ia += n;
		}
		if (ib < mb.len) {
			size_t n = NF_MUX_HDR + be32(mb.p + ib + 4);
			nf_bytes_put(&trunk, mb.p + ib, n);
			ib += n;
		}
	}
	size_t at = trunk.len; /* a frame for id 0, which nri_wire_put refuses to make */
	put_msg(&trunk, 6, 9, a, 10, 0);
	memset(trunk.p + at, 0, 4);
	assert_int_equal(nf_wire_feed(&r, trunk.p, trunk.len), 0);
	bool seen_a = false, seen_b = false;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nf_wire_next(&r, &m), 1);
		if (m.conn == NF_MUX_PLUGIN) {
			assert_int_equal(m.h.length, 6000);
			assert_memory_equal(m.payload, a, 6000);
			seen_a = true;
		} else {
			assert_int_equal(m.conn, NF_MUX_RUNTIME);
			assert_int_equal(m.h.length, 7000);
			assert_memory_equal(m.payload, b, 7000);
			seen_b = true;
		}
	}
	assert_true(seen_a && seen_b);
	assert_int_equal(nf_wire_next(&r, &m), 0);
	assert_int_equal(r.dropped, 2 * NF_TTRPC_HDR + 110);
	nf_wire_reader_done(&r);
	nf_bytes_done(&ma), nf_bytes_done(&mb), nf_bytes_done(&trunk);
	free(a), free(b);
}

/* Several messages in one read come out one by one, in order. */
static void back_to_back(void **state)
{
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	for (uint32_t s = 1; s <= 9; s += 2)
		put_msg(&out, NF_MUX_PLUGIN, s, (const uint8_t *)"abcdefgh", s, 0);
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	for (uint32_t s = 1; s <= 9; s += 2) {
		assert_int_equal(nf_wire_next(&r, &m), 1);
		assert_int_equal(m.h.stream, s);
		assert_int_equal(m.h.length, s);
		assert_memory_equal(m.payload, "abcdefgh", s);
	}
	assert_int_equal(nf_wire_next(&r, &m), 0);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
}

static void oversized(void **state)
{
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	nf_bytes out = {0};
	uint8_t frame[NF_MUX_HDR] = {0, 0, 0, 1, 0x01, 0, 0, 1}; /* 16 MiB + 1 */
	uint8_t msg[NF_MUX_HDR + NF_TTRPC_HDR] = {0,	0, 0, 1, 0, 0, 0, 10, 0,
						  0x40, 0, 1, 0, 0, 0, 1, 1,  0}; /* 4 MiB + 1 */
	nf_ttrpc_hdr big = {.length = NF_TTRPC_MAX + 1, .stream = 1};
	(void)state;
	assert_int_equal(nf_wire_feed(&r, frame, sizeof(frame)), 0);
	assert_int_equal(nf_wire_next(&r, &m), -EMSGSIZE);
	nf_wire_reader_done(&r);
	assert_int_equal(nf_wire_feed(&r, msg, sizeof(msg)), 0);
	assert_int_equal(nf_wire_next(&r, &m), -EMSGSIZE);
	nf_wire_reader_done(&r);
	assert_int_equal(nf_wire_put(&out, 1, &big, "", 0), -EMSGSIZE);
	big.length = 0;
	assert_int_equal(nf_wire_put(&out, 0, &big, NULL, 0), -EINVAL); /* id 0 is reserved */
	nf_bytes_done(&out);
}

/* A Request as the plugin sends it reads back as ttRPC's Request. */
static void request_message(void **state)
{
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest q =
	    NRI__PKG__API__V1ALPHA1__REGISTER_PLUGIN_REQUEST__INIT;
	(void)state;
	q.plugin_name = "numafollow";
	q.plugin_idx = "90";
	assert_int_equal(nf_ttrpc_put_request(&out, NF_MUX_RUNTIME, 1, NF_NRI_SERVICE_RUNTIME,
					      "RegisterPlugin", &q.base, 2000000000),
			 0);
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	assert_int_equal(nf_wire_next(&r, &m), 1);
	assert_int_equal(m.h.type, NF_TTRPC_REQUEST);
	Ttrpc__Request *t = ttrpc__request__unpack(NULL, m.h.length, m.payload);
	assert_non_null(t);
	assert_string_equal(t->service, "nri.pkg.api.v1alpha1.Runtime");
	assert_string_equal(t->method, "RegisterPlugin");
	assert_int_equal(t->timeout_nano, 2000000000);
	Nri__Pkg__Api__V1alpha1__RegisterPluginRequest *back =
	    nri__pkg__api__v1alpha1__register_plugin_request__unpack(NULL, t->payload.len,
								     t->payload.data);
	assert_non_null(back);
	assert_string_equal(back->plugin_name, "numafollow");
	assert_string_equal(back->plugin_idx, "90");
	nri__pkg__api__v1alpha1__register_plugin_request__free_unpacked(back, NULL);
	ttrpc__request__free_unpacked(t, NULL);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
}

/* An error Response carries google.rpc.Status{code, message} and no payload. */
static void error_response(void **state)
{
	nf_bytes out = {0};
	nf_wire_reader r = {0};
	nf_ttrpc_msg m;
	(void)state;
	assert_int_equal(nf_ttrpc_put_response(&out, NF_MUX_PLUGIN, 3, NF_GRPC_UNIMPLEMENTED,
					       "no such method", NULL),
			 0);
	assert_int_equal(nf_wire_feed(&r, out.p, out.len), 0);
	assert_int_equal(nf_wire_next(&r, &m), 1);
	assert_int_equal(m.h.type, NF_TTRPC_RESPONSE);
	assert_int_equal(m.h.stream, 3);
	Ttrpc__Response *rsp = ttrpc__response__unpack(NULL, m.h.length, m.payload);
	assert_non_null(rsp);
	assert_non_null(rsp->status);
	assert_int_equal(rsp->status->code, 12);
	assert_string_equal(rsp->status->message, "no such method");
	assert_int_equal(rsp->payload.len, 0);
	ttrpc__response__free_unpacked(rsp, NULL);
	nf_wire_reader_done(&r);
	nf_bytes_done(&out);
}

/* ---- decisions ---- */

typedef struct {
	nf_pb_container c;
	Nri__Pkg__Api__V1alpha1__LinuxContainer lc;
	nf_pb_resources res, q;
	nf_pb_cpu cpu, qcpu;
	Nri__Pkg__Api__V1alpha1__LinuxMemory mem;
	Nri__Pkg__Api__V1alpha1__OptionalInt64 limit, swap;
} fixture;

/* A running container with OLD mems (NULL: none in its spec), updated to NEW. */
static void fixture_init(fixture *f, const char *old, const char *new)
{
	memset(f, 0, sizeof(*f));
	nri__pkg__api__v1alpha1__container__init(&f->c);
	nri__pkg__api__v1alpha1__linux_container__init(&f->lc);
	nri__pkg__api__v1alpha1__linux_resources__init(&f->res);
	nri__pkg__api__v1alpha1__linux_resources__init(&f->q);
	nri__pkg__api__v1alpha1__linux_cpu__init(&f->cpu);
	nri__pkg__api__v1alpha1__linux_cpu__init(&f->qcpu);
	nri__pkg__api__v1alpha1__linux_memory__init(&f->mem);
	f->c.id = "c0ffee";
	f->c.state = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_RUNNING;
	f->c.linux = &f->lc;
	f->lc.resources = &f->res;
	f->res.cpu = &f->cpu;
	f->res.memory = &f->mem;
	f->cpu.mems = (char *)(old ? old : "");
	f->q.cpu = &f->qcpu;
	f->qcpu.mems = (char *)new;
}

static nf_repin_verdict decide(fixture *f, bool on, const nf_nri_cgroup_facts *facts,
			       char ret_union[NF_NODESET_STRLEN])
{
	nf_nodeset all, old, new, u;
	nf_nri_cgroup_facts plain = {.known = true};
	nf_nodeset_parse("0-1", &all);
	nf_repin_verdict v =
	    nf_nri_repin_decide(on, &f->c, &f->q, &all, facts ? facts : &plain, &old, &new, &u);
	if (v == NF_REPIN_ADJUST)
		nf_nodeset_format(&u, ret_union, NF_NODESET_STRLEN);
	return v;
}

static void repin_decisions(void **state)
{
	static const struct {
		const char *old, *new;
		nf_repin_verdict v;
		const char *u;
	} cases[] = {
	    {"0", "1", NF_REPIN_ADJUST, "0-1"},	    /* a shift */
	    {"0-1", "1", NF_REPIN_ADJUST, "0-1"},   /* a narrowing */
	    {NULL, "1", NF_REPIN_ADJUST, "0-1"},    /* no mems in the spec: every node */
	    {"0-1", "0-1", NF_REPIN_NO_CHANGE, ""}, /* the same */
	    {"0", "", NF_REPIN_NO_CHANGE, ""},	    /* no mems in the update */
	    {"0", "0-1", NF_REPIN_WIDENS, ""},	    {"0", "x", NF_REPIN_BAD_MEMS, ""},
	    {"0", "1-0", NF_REPIN_BAD_MEMS, ""},
	};
	char u[NF_NODESET_STRLEN];
	fixture f;
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		fixture_init(&f, cases[i].old, cases[i].new);
		u[0] = '\0';
		assert_int_equal(decide(&f, true, NULL, u), cases[i].v);
		assert_string_equal(u, cases[i].u);
		assert_int_equal(decide(&f, false, NULL, u), NF_REPIN_OFF);
	}
	fixture_init(&f, "0", "1");
	f.c.state = NRI__PKG__API__V1ALPHA1__CONTAINER_STATE__CONTAINER_CREATED;
	assert_int_equal(decide(&f, true, NULL, u), NF_REPIN_NOT_RUNNING);
}

/* Where NRI 0.6.1 would drop what kubelet sent, no adjustment. */
static void repin_keeps_swap_and_unified(void **state)
{
	char u[NF_NODESET_STRLEN];
	fixture f;
	nf_nri_cgroup_facts qos = {.known = true, .unified_memory = true}, unknown = {0};
	(void)state;
	fixture_init(&f, "0", "1");
	nri__pkg__api__v1alpha1__optional_int64__init(&f.limit);
	nri__pkg__api__v1alpha1__optional_int64__init(&f.swap);
	f.limit.value = 512 << 20;
	f.swap.value = 512 << 20;
	f.mem.limit = &f.limit;
	f.mem.swap = &f.swap; /* swap = limit: containerd's own default */
	assert_int_equal(decide(&f, true, NULL, u), NF_REPIN_ADJUST);
	f.swap.value = 1024 << 20; /* kubelet's LimitedSwap */
	assert_int_equal(decide(&f, true, NULL, u), NF_REPIN_SWAP);
	f.swap.value = -1; /* unlimited */
	assert_int_equal(decide(&f, true, NULL, u), NF_REPIN_SWAP);
	f.mem.swap = NULL;
	assert_int_equal(decide(&f, true, &qos, u), NF_REPIN_UNIFIED);
	assert_int_equal(decide(&f, true, &unknown, u), NF_REPIN_NO_CGROUP); /* unknown: no */
	for (int v = 0; v < NF_REPIN_COUNT; v++)
		assert_true(strlen(nf_repin_verdict_text(v)) > 10);
}

static void registration_body(void **state)
{
	nf_pb_container c;
	nf_pb_pod pod;
	Nri__Pkg__Api__V1alpha1__Container__AnnotationsEntry e =
	    NRI__PKG__API__V1ALPHA1__CONTAINER__ANNOTATIONS_ENTRY__INIT;
	Nri__Pkg__Api__V1alpha1__Container__AnnotationsEntry *ents[] = {&e};
	(void)state;
	nri__pkg__api__v1alpha1__container__init(&c);
	nri__pkg__api__v1alpha1__pod_sandbox__init(&pod);
	c.id = "abc";
	c.name = "app";
	assert_null(nf_nri_registration(&c, &pod, "created")); /* no pid: no registration */
	c.pid = 4242;
	e.key = "io.kubernetes.cri.sandbox-name";
	e.value = "web-0"; /* the runtime's own annotation wins */
	c.annotations = ents;
	c.n_annotations = 1;
	pod.name = "other";
	pod.namespace_ = "shop";
	pod.uid = "1234-5678";
	pod.id = "sandbox1";
	_cleanup_json_ json_object *o = nf_nri_registration(&c, &pod, "created");
	assert_non_null(o);
	assert_string_equal(nf_json_string(o, "id"), "abc");
	assert_string_equal(nf_json_string(o, "status"), "created");
	json_object *pid, *ann;
	assert_true(json_object_object_get_ex(o, "pid", &pid));
	assert_int_equal(json_object_get_int(pid), 4242);
	assert_true(json_object_object_get_ex(o, "annotations", &ann));
	assert_string_equal(nf_json_string(ann, "io.kubernetes.cri.sandbox-name"), "web-0");
	assert_string_equal(nf_json_string(ann, "io.kubernetes.cri.sandbox-namespace"), "shop");
	assert_string_equal(nf_json_string(ann, "io.kubernetes.cri.sandbox-uid"), "1234-5678");
	assert_string_equal(nf_json_string(ann, "io.kubernetes.cri.container-name"), "app");
	assert_null(json_object_object_get_ex(o, "bundle", NULL) ? o : NULL);
}

/* The container's cgroup from its spec's cgroupsPath, either driver. */
static void cgroup_paths(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"/kubepods/burstable/pod1/abc", "/kubepods/burstable/pod1/abc"},
	    {"kubepods-burstable-pod1_2.slice:cri-containerd:abc",
	     "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/"
	     "cri-containerd-abc.scope"},
	    {"kubepods.slice:crio:abc", "/kubepods.slice/crio-abc.scope"},
	    {"-.slice:x:y", "/x-y.scope"},
	    {"system.slice:docker:abc", "/system.slice/docker-abc.scope"},
	    {"", NULL},
	    {"/a/../b", NULL},
	    {"a:b", NULL},
	    {"a.slice:b:c:d", NULL},
	    {"kube--pods.slice:x:y", NULL},
	    {"-kubepods.slice:x:y", NULL},
	    {"pods:x:y", NULL}, /* not a slice */
	};
	(void)state;
	for (size_t i = 0; i < NF_ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *p = nf_nri_cgroup_path(cases[i].in);
		if (cases[i].out)
			assert_string_equal(p, cases[i].out);
		else
			assert_null(p);
	}
}

/* UpdateContainers' update: the container's mems and nothing else. */
static void mems_update(void **state)
{
	nf_nodeset set;
	(void)state;
	nf_nodeset_parse("1", &set);
	nf_pb_update *u = nf_nri_mems_update("abc", &set, true);
	assert_non_null(u);
	uint8_t *p;
	size_t n;
	assert_int_equal(nf_pb_pack(&u->base, &p, &n), 0);
	nf_pb_update *back = nri__pkg__api__v1alpha1__container_update__unpack(NULL, n, p);
	assert_non_null(back);
	assert_string_equal(back->container_id, "abc");
	assert_true(back->ignore_failure);
	assert_string_equal(back->linux->resources->cpu->mems, "1");
	assert_null(back->linux->resources->memory);
	assert_null(back->linux->resources->cpu->shares);
	assert_int_equal(back->linux->resources->n_unified, 0);
	nri__pkg__api__v1alpha1__container_update__free_unpacked(back, NULL);
	free(p);
	nf_nri_update_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip_small),
	    cmocka_unit_test(split_large),
	    cmocka_unit_test(split_header),
	    cmocka_unit_test(byte_by_byte),
	    cmocka_unit_test(interleaved),
	    cmocka_unit_test(back_to_back),
	    cmocka_unit_test(oversized),
	    cmocka_unit_test(request_message),
	    cmocka_unit_test(error_response),
	    cmocka_unit_test(repin_decisions),
	    cmocka_unit_test(repin_keeps_swap_and_unified),
	    cmocka_unit_test(registration_body),
	    cmocka_unit_test(mems_update),
	    cmocka_unit_test(cgroup_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
