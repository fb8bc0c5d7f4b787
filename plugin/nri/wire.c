/* NRI's multiplexer and ttRPC's framing, as bytes (wire.h). */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static size_t avail(const nf_bytes *b)
{
	return b->len - b->off;
}

static const uint8_t *head(const nf_bytes *b)
{
	return b->p + b->off;
}

/* Drops N consumed bytes; moves the rest to the front once most is consumed,
 * so that a long-lived buffer does not grow with what went through it. */
static void consume(nf_bytes *b, size_t n)
{
	b->off += n;
	if (b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off > b->len / 2) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
}

int nf_bytes_put(nf_bytes *b, const void *data, size_t len)
{
	if (len > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

void nf_bytes_done(nf_bytes *b)
{
	free(b->p);
	*b = (nf_bytes){0};
}

void nf_ttrpc_hdr_put(uint8_t out[NF_TTRPC_HDR], const nf_ttrpc_hdr *h)
{
	put_be32(out, h->length);
	put_be32(out + 4, h->stream);
	out[8] = h->type;
	out[9] = h->flags;
}

void nf_ttrpc_hdr_get(const uint8_t in[NF_TTRPC_HDR], nf_ttrpc_hdr *ret)
{
	*ret = (nf_ttrpc_hdr){
	    .length = get_be32(in), .stream = get_be32(in + 4), .type = in[8], .flags = in[9]};
}

int nf_wire_feed(nf_wire_reader *r, const void *data, size_t len)
{
	return nf_bytes_put(&r->trunk, data, len);
}

/* A whole message at the head of connection C's stream: 1, 0, or -EMSGSIZE. */
static int message_at(nf_wire_reader *r, uint32_t c, nf_ttrpc_msg *ret)
{
	nf_bytes *s = &r->stream[c];
	nf_ttrpc_hdr h;
	if (avail(s) < NF_TTRPC_HDR)
		return 0;
	nf_ttrpc_hdr_get(head(s), &h);
	if (h.length > NF_TTRPC_MAX)
		return -EMSGSIZE;
	if (avail(s) - NF_TTRPC_HDR < h.length)
		return 0;
	*ret = (nf_ttrpc_msg){.conn = c, .h = h, .payload = head(s) + NF_TTRPC_HDR};
	return 1;
}

/* Moves one whole mux frame from the trunk to its connection's stream: 1, 0
 * when the trunk holds none, -EMSGSIZE, -ENOMEM. */
static int demux(nf_wire_reader *r)
{
	if (avail(&r->trunk) < NF_MUX_HDR)
		return 0;
	uint32_t conn = get_be32(head(&r->trunk)), len = get_be32(head(&r->trunk) + 4);
	if (len > NF_MUX_MAX)
		return -EMSGSIZE;
	if (avail(&r->trunk) - NF_MUX_HDR < len)
		return 0;
	if (conn > 0 && conn < NF_MUX_CONNS) {
		int e = nf_bytes_put(&r->stream[conn], head(&r->trunk) + NF_MUX_HDR, len);
		if (e < 0)
			return e;
	} else {
		r->dropped += len; /* as the Go multiplexer drops frames of unopened ids */
	}
	consume(&r->trunk, NF_MUX_HDR + len);
	return 1;
}

int nf_wire_next(nf_wire_reader *r, nf_ttrpc_msg *ret)
{
	/* what the previous call handed out is consumed now */
	if (r->handed_conn) {
		consume(&r->stream[r->handed_conn], r->handed_len);
		r->handed_conn = 0;
	}
	for (;;) {
		for (uint32_t i = 0; i < NF_MUX_CONNS - 1; i++) {
			uint32_t c = 1 + (r->next_conn + i) % (NF_MUX_CONNS - 1);
			int e = message_at(r, c, ret);
			if (e > 0) {
				r->next_conn = c % (NF_MUX_CONNS - 1);
				r->handed_conn = c;
				r->handed_len = NF_TTRPC_HDR + (size_t)ret->h.length;
			}
			if (e != 0)
				return e;
		}
		int e = demux(r);
		if (e <= 0)
			return e;
	}
}

void nf_wire_reader_done(nf_wire_reader *r)
{
	nf_bytes_done(&r->trunk);
	for (uint32_t c = 0; c < NF_MUX_CONNS; c++)
		nf_bytes_done(&r->stream[c]);
	*r = (nf_wire_reader){0};
}

int nf_wire_put(nf_bytes *out, uint32_t conn, const nf_ttrpc_hdr *h, const void *payload,
		size_t max)
{
	uint8_t th[NF_TTRPC_HDR], mh[NF_MUX_HDR];
	max = max ? max : NF_NRI_FRAME_MAX;
	if (h->length > NF_TTRPC_MAX)
		return -EMSGSIZE;
	if (conn == 0 || max > NF_MUX_MAX || (h->length && !payload))
		return -EINVAL;
	nf_ttrpc_hdr_put(th, h);
	size_t total = NF_TTRPC_HDR + (size_t)h->length, done = 0;
	while (done < total) {
		size_t n = total - done < max ? total - done : max;
		put_be32(mh, conn);
		put_be32(mh + 4, n);
		int e = nf_bytes_put(out, mh, sizeof(mh));
		/* the frame's bytes: the rest of the header, then of the payload */
		for (size_t k = done; e == 0 && k < done + n;) {
			const uint8_t *src =
			    k < NF_TTRPC_HDR ? th + k : (const uint8_t *)payload + k - NF_TTRPC_HDR;
			size_t part = k < NF_TTRPC_HDR ? NF_TTRPC_HDR - k : done + n - k;
			part = part < done + n - k ? part : done + n - k;
			e = nf_bytes_put(out, src, part);
			k += part;
		}
		if (e < 0)
			return e;
		done += n;
	}
	return 0;
}
