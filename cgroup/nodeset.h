/* A set of NUMA node ids, as a value. The kernel supports up to 1024 nodes
 * (NODES_SHIFT=10); no machine has more than a few dozen, so numafollow keeps
 * NF_MAX_NODES and refuses larger ids with -ERANGE. */
#ifndef NF_NODESET_H
#define NF_NODESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_MAX_NODES 128

typedef struct {
	uint64_t w[NF_MAX_NODES / 64];
} nf_nodeset;

static inline void nf_nodeset_set(nf_nodeset *s, unsigned n)
{
	s->w[n / 64] |= UINT64_C(1) << (n % 64);
}
static inline bool nf_nodeset_has(const nf_nodeset *s, unsigned n)
{
	return n < NF_MAX_NODES && (s->w[n / 64] >> (n % 64)) & 1;
}

unsigned nf_nodeset_count(const nf_nodeset *s);
bool nf_nodeset_empty(const nf_nodeset *s);
bool nf_nodeset_equal(const nf_nodeset *a, const nf_nodeset *b);
/* ret = a & ~b */
void nf_nodeset_minus(const nf_nodeset *a, const nf_nodeset *b, nf_nodeset *ret);
void nf_nodeset_union(const nf_nodeset *a, const nf_nodeset *b, nf_nodeset *ret);
/* The kernel's node_remap(): the n-th node of from maps to the (n mod |to|)-th node of to. */
int nf_nodeset_remap(unsigned node, const nf_nodeset *from, const nf_nodeset *to);

/* Parses the kernel's list format ("0-3,5", "" for none, trailing newline allowed). */
int nf_nodeset_parse(const char *s, nf_nodeset *ret);
/* Formats as a list ("0-3,5"); buf of NF_NODESET_STRLEN is always enough. */
#define NF_NODESET_STRLEN (NF_MAX_NODES * 4 + 1)
char *nf_nodeset_format(const nf_nodeset *s, char *buf, size_t len);

#endif
