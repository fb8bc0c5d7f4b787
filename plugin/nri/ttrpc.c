/* ttRPC's Request and Response with protobuf-c (ttrpc.h). */
#include "ttrpc.h"
#include "ttrpc/request.pb-c.h"

#include <errno.h>
#include <stdlib.h>

int nf_pb_pack(const ProtobufCMessage *msg, uint8_t **ret, size_t *ret_len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	if (n > NF_TTRPC_MAX)
		return -EMSGSIZE;
	uint8_t *p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	protobuf_c_message_pack(msg, p);
	*ret = p;
	*ret_len = n;
	return 0;
}

/* Appends MSG as a ttRPC message of TYPE on STREAM. */
static int put(nf_bytes *out, uint32_t conn, uint32_t stream, uint8_t type,
	       const ProtobufCMessage *msg)
{
	uint8_t *p;
	size_t n;
	int e = nf_pb_pack(msg, &p, &n);
	if (e < 0)
		return e;
	nf_ttrpc_hdr h = {.length = n, .stream = stream, .type = type};
	e = nf_wire_put(out, conn, &h, p, 0);
	free(p);
	return e;
}

int nf_ttrpc_put_request(nf_bytes *out, uint32_t conn, uint32_t stream, const char *service,
			 const char *method, const ProtobufCMessage *msg, int64_t timeout_ns)
{
	Ttrpc__Request q = TTRPC__REQUEST__INIT;
	uint8_t *p = NULL;
	size_t n = 0;
	int e = msg ? nf_pb_pack(msg, &p, &n) : 0;
	if (e < 0)
		return e;
	q.service = (char *)service;
	q.method = (char *)method;
	q.payload = (ProtobufCBinaryData){.len = n, .data = p};
	q.timeout_nano = timeout_ns;
	e = put(out, conn, stream, NF_TTRPC_REQUEST, &q.base);
	free(p);
	return e;
}

int nf_ttrpc_put_response(nf_bytes *out, uint32_t conn, uint32_t stream, int code, const char *text,
			  const ProtobufCMessage *msg)
{
	Ttrpc__Response rsp = TTRPC__RESPONSE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	uint8_t *p = NULL;
	size_t n = 0;
	int e = code == NF_GRPC_OK && msg ? nf_pb_pack(msg, &p, &n) : 0;
	if (e < 0)
		return e;
	st.code = code;
	st.message = (char *)(text ? text : "");
	rsp.status = &st;
	rsp.payload = (ProtobufCBinaryData){.len = n, .data = p};
	e = put(out, conn, stream, NF_TTRPC_RESPONSE, &rsp.base);
	free(p);
	return e;
}
