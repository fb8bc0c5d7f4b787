/* NRI's wire, without I/O: the connection multiplexer of NRI 0.6.1
 * (pkg/net/multiplex) and ttRPC's framing (github.com/containerd/ttrpc
 * v1.2.3, channel.go). Bytes go in, messages come out; messages go in, bytes
 * come out. The plugin's loop (conn.c) does the reading and writing; the
 * fuzzer (tests/fuzz/fuzz-nri.c) and the unit tests drive this directly.
 *
 * One unix connection (the trunk) carries logical connections. Each mux frame
 * is an 8-byte header (connection id u32 BE, payload length u32 BE) and its
 * payload. Connection 1 carries the plugin's ttRPC server (the runtime calls
 * Configure, Synchronize, UpdateContainer... on it), connection 2 the
 * runtime's (the plugin calls RegisterPlugin and UpdateContainers). Frames do
 * not respect ttRPC message boundaries: each logical connection is a byte
 * stream, cut again into ttRPC messages of a 10-byte header (length u32 BE,
 * stream id u32 BE, type u8, flags u8) and a protobuf payload. */
#ifndef NF_NRI_WIRE_H
#define NF_NRI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_MUX_HDR   8
#define NF_MUX_MAX   (1u << 24) /* the multiplexer's maxPayloadSize */
#define NF_TTRPC_HDR 10
#define NF_TTRPC_MAX (4u << 20) /* ttRPC's messageLengthMax */
/* The runtime's ttRPC reads each logical connection through a 4 KiB bufio
 * reader, and the multiplexer's Read fails (ENOMEM) when a frame does not fit
 * the buffer it is handed: a 9,000-byte frame got no answer. So every frame
 * the plugin sends carries at most this much. */
#define NF_NRI_FRAME_MAX 4096
#define NF_MUX_PLUGIN	 1u /* the plugin's ttRPC server */
#define NF_MUX_RUNTIME	 2u /* the runtime's ttRPC server */
#define NF_MUX_CONNS	 3u /* ids below this are kept; frames for others are dropped */

enum { NF_TTRPC_REQUEST = 1, NF_TTRPC_RESPONSE = 2, NF_TTRPC_DATA = 3 };
enum { NF_TTRPC_REMOTE_CLOSED = 1, NF_TTRPC_REMOTE_OPEN = 2, NF_TTRPC_NO_DATA = 4 };

/* A growable byte buffer; OFF bytes at its start are consumed. */
typedef struct {
	uint8_t *p;
	size_t len, cap, off;
} nf_bytes;

int nf_bytes_put(nf_bytes *b, const void *data, size_t len);
void nf_bytes_done(nf_bytes *b);

typedef struct {
	uint32_t length, stream;
	uint8_t type, flags;
} nf_ttrpc_hdr;

/* One ttRPC message from logical connection CONN. PAYLOAD (H.length bytes)
 * belongs to the reader and lasts until its next call. */
typedef struct {
	uint32_t conn;
	nf_ttrpc_hdr h;
	const uint8_t *payload;
} nf_ttrpc_msg;

typedef struct {
	nf_bytes trunk;		       /* not yet cut into mux frames */
	nf_bytes stream[NF_MUX_CONNS]; /* per connection, not yet cut into messages */
	uint32_t next_conn;	       /* where nf_wire_next looks first */
	uint32_t handed_conn;	       /* the last message handed out, consumed at the */
	size_t handed_len;	       /* next call */
	uint64_t dropped;	       /* bytes of frames for connections nobody opened */
} nf_wire_reader;

/* Appends bytes read from the trunk. -ENOMEM. */
int nf_wire_feed(nf_wire_reader *r, const void *data, size_t len);
/* The next complete message: 1 and *RET, 0 when more bytes are needed,
 * -EMSGSIZE for a mux frame over NF_MUX_MAX or a message over NF_TTRPC_MAX
 * (the connection cannot be resynchronised after either), -ENOMEM. */
int nf_wire_next(nf_wire_reader *r, nf_ttrpc_msg *ret);
void nf_wire_reader_done(nf_wire_reader *r);

void nf_ttrpc_hdr_put(uint8_t out[NF_TTRPC_HDR], const nf_ttrpc_hdr *h);
void nf_ttrpc_hdr_get(const uint8_t in[NF_TTRPC_HDR], nf_ttrpc_hdr *ret);

/* Appends to OUT one ttRPC message (H, with H->length bytes of PAYLOAD) on
 * connection CONN, cut into mux frames of at most MAX payload bytes (0:
 * NF_NRI_FRAME_MAX). -EMSGSIZE over NF_TTRPC_MAX, -EINVAL, -ENOMEM. */
int nf_wire_put(nf_bytes *out, uint32_t conn, const nf_ttrpc_hdr *h, const void *payload,
		size_t max);

#endif
