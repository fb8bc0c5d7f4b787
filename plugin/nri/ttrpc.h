/* ttRPC's messages over the wire (wire.h): the protobuf Request and Response
 * (ttrpc/request.proto, its status a google.rpc.Status), packed and unpacked
 * with protobuf-c. gRPC's status codes: the runtime reads them as Go errors. */
#ifndef NF_NRI_TTRPC_H
#define NF_NRI_TTRPC_H

#include "wire.h"

#include <protobuf-c/protobuf-c.h>

enum {
	NF_GRPC_OK = 0,
	NF_GRPC_INVALID_ARGUMENT = 3,
	NF_GRPC_NOT_FOUND = 5,
	NF_GRPC_UNIMPLEMENTED = 12,
	NF_GRPC_INTERNAL = 13,
};

/* MSG packed into a fresh buffer; -ENOMEM, -EMSGSIZE over NF_TTRPC_MAX. */
int nf_pb_pack(const ProtobufCMessage *msg, uint8_t **ret, size_t *ret_len);

/* Appends to OUT, on connection CONN and stream STREAM, a Request for
 * SERVICE/METHOD carrying MSG, with the caller's TIMEOUT_NS (0: none). */
int nf_ttrpc_put_request(nf_bytes *out, uint32_t conn, uint32_t stream, const char *service,
			 const char *method, const ProtobufCMessage *msg, int64_t timeout_ns);
/* Appends the Response on STREAM: MSG (NULL: none) when CODE is NF_GRPC_OK,
 * else the status CODE with TEXT. */
int nf_ttrpc_put_response(nf_bytes *out, uint32_t conn, uint32_t stream, int code, const char *text,
			  const ProtobufCMessage *msg);

#endif
