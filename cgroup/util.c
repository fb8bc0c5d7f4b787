#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

int nf_read_file(const char *path, char **ret, size_t *ret_len)
{
	return nf_read_file_max(path, SIZE_MAX - 1, ret, ret_len);
}

int nf_grow(void *array, size_t *cap, size_t want, size_t size, size_t min)
{
	void **p = array;
	size_t n = *cap ? *cap : min, bytes;
	if (want <= *cap)
		return 0;
	while (n < want)
		if (__builtin_mul_overflow(n, 2, &n))
			return -ENOMEM;
	if (__builtin_mul_overflow(n, size, &bytes))
		return -ENOMEM;
	void *v = realloc(*p, bytes);
	if (!v)
		return -ENOMEM;
	*p = v;
	*cap = n;
	return 0;
}

int nf_read_file_max(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	size_t len = 0, cap = 0;
	_cleanup_free_ char *buf = NULL;
	for (;;) {
		if (nf_grow(&buf, &cap, len + 2, 1, 4096) < 0)
			return -ENOMEM;
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		len += r;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret = TAKE_PTR(buf);
	return 0;
}

int nf_read_line(const char *path, char **ret)
{
	char *s;
	int r = nf_read_file(path, &s, NULL);
	if (r < 0)
		return r;
	s[strcspn(s, "\n")] = '\0';
	*ret = s;
	return 0;
}

int nf_parse_u64(const char *s, const char *end, uint64_t *ret)
{
	char *e;

	if (!end)
		end = s + strlen(s);
	if (s == end || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno)
		return -errno;
	if (e != end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int nf_parse_hex(const char *s, const char **ret_end, uint64_t *ret)
{
	char *e;
	if (!isxdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 16);
	if (errno)
		return -errno;
	*ret_end = e;
	*ret = v;
	return 0;
}

uint64_t nf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int nf_conf_line(char *line, char **name, char **value)
{
	char *s = trim(line), *eq;
	if (!*s || *s == '#')
		return 0;
	/* "workers = 2 # two": a '#' after a blank starts a comment */
	for (char *h = strchr(s, '#'); h; h = strchr(h + 1, '#'))
		if (h[-1] == ' ' || h[-1] == '\t') {
			*h = '\0';
			s = trim(s);
			break;
		}
	if (!(eq = strchr(s, '=')))
		return -EINVAL;
	*eq = '\0';
	*name = trim(s);
	*value = trim(eq + 1);
	return 1;
}

/* The length of the well-formed UTF-8 sequence at S (at most N bytes): 1-4,
 * or 0 when it is not one (stray continuation, overlong form, surrogate,
 * beyond U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80   ? 1
		     : s[0] < 0xc2 ? 0
		     : s[0] < 0xe0 ? 2
		     : s[0] < 0xf0 ? 3
		     : s[0] < 0xf5 ? 4
				   : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

bool nf_utf8_valid(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0, l; i < n; i += l)
		if (!(l = utf8_len((const unsigned char *)s + i, n - i)))
			return false;
	return true;
}

char *nf_utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out; /* each bad byte becomes 3 */
	for (size_t i = 0, l; out && i < n; i += l ? l : 1) {
		l = utf8_len((const unsigned char *)s + i, n - i);
		if (l) {
			memcpy(o, s + i, l);
			o += l;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
		}
	}
	if (out)
		*o = '\0';
	return out;
}

size_t nf_utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	/* back off continuation bytes (10xxxxxx): the cut then precedes a lead byte */
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

void nf_rfc3339(uint64_t ns, unsigned digits, char *buf, size_t size)
{
	time_t s = ns / 1000000000;
	uint64_t frac = ns % 1000000000;
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	for (unsigned d = digits; d < 9; d++)
		frac /= 10;
	snprintf(buf + n, size - n, ".%0*lluZ", (int)digits, (unsigned long long)frac);
}
