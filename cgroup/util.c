#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>

int nf_read_file(const char *path, char **ret, size_t *ret_len)
{
	return nf_read_file_max(path, SIZE_MAX - 1, ret, ret_len);
}

int nf_read_file_max(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	size_t len = 0, cap = 4096;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 2) {
			char *n = realloc(buf, cap * 2);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap *= 2;
		}
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
	if (!(eq = strchr(s, '=')))
		return -EINVAL;
	*eq = '\0';
	*name = trim(s);
	*value = trim(eq + 1);
	return 1;
}
