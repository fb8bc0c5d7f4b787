#include "nodeset.h"
#include "util.h"

#include <string.h>

unsigned nf_nodeset_count(const nf_nodeset *s)
{
	unsigned n = 0;
	for (size_t i = 0; i < NF_ARRAY_SIZE(s->w); i++)
		n += __builtin_popcountll(s->w[i]);
	return n;
}

bool nf_nodeset_empty(const nf_nodeset *s)
{
	return nf_nodeset_count(s) == 0;
}

bool nf_nodeset_equal(const nf_nodeset *a, const nf_nodeset *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

void nf_nodeset_union(const nf_nodeset *a, const nf_nodeset *b, nf_nodeset *ret)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(ret->w); i++)
		ret->w[i] = a->w[i] | b->w[i];
}

void nf_nodeset_minus(const nf_nodeset *a, const nf_nodeset *b, nf_nodeset *ret)
{
	for (size_t i = 0; i < NF_ARRAY_SIZE(a->w); i++)
		ret->w[i] = a->w[i] & ~b->w[i];
}

static int nth_node(const nf_nodeset *s, unsigned n)
{
	for (unsigned i = 0; i < NF_MAX_NODES; i++)
		if (nf_nodeset_has(s, i) && n-- == 0)
			return i;
	return -1;
}

int nf_nodeset_remap(unsigned node, const nf_nodeset *from, const nf_nodeset *to)
{
	unsigned w = nf_nodeset_count(to), pos = 0;

	if (!nf_nodeset_has(from, node) || w == 0)
		return node;
	for (unsigned i = 0; i < node; i++)
		pos += nf_nodeset_has(from, i);
	return nth_node(to, pos % w);
}

static int parse_node(const char **p, unsigned *ret)
{
	const char *e = *p + strspn(*p, "0123456789");
	uint64_t v;
	int r = nf_parse_u64(*p, e, &v);
	if (r < 0)
		return r;
	if (v >= NF_MAX_NODES)
		return -ERANGE;
	*ret = v;
	*p = e;
	return 0;
}

int nf_nodeset_parse(const char *s, nf_nodeset *ret)
{
	nf_nodeset set = {0};
	const char *p = s;

	while (*p && *p != '\n') {
		unsigned lo, hi;
		int r = parse_node(&p, &lo);
		if (r < 0)
			return r;
		hi = lo;
		if (*p == '-') {
			p++;
			r = parse_node(&p, &hi);
			if (r < 0)
				return r;
			if (hi < lo)
				return -EINVAL;
		}
		for (unsigned n = lo; n <= hi; n++)
			nf_nodeset_set(&set, n);
		if (*p == ',' && p[1] != '\0' && p[1] != '\n')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	if (*p == '\n' && p[1] != '\0')
		return -EINVAL;
	*ret = set;
	return 0;
}

char *nf_nodeset_format(const nf_nodeset *s, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned n = 0; n < NF_MAX_NODES; n++) {
		if (!nf_nodeset_has(s, n))
			continue;
		unsigned hi = n;
		while (nf_nodeset_has(s, hi + 1))
			hi++;
		int w = hi == n ? snprintf(buf + off, len - off, "%s%u", off ? "," : "", n)
				: snprintf(buf + off, len - off, "%s%u-%u", off ? "," : "", n, hi);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += w;
		n = hi;
	}
	return buf;
}
