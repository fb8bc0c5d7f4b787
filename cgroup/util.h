/* Small helpers shared by every part of numafollow: cleanup macros, file
 * reading and number parsing. Functions return 0 or -errno. */
#ifndef NF_UTIL_H
#define NF_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void nf_freep(void *p)
{
	free(*(void **)p);
}
static inline void nf_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void nf_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void nf_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_(f)	   __attribute__((cleanup(f)))
#define _cleanup_free_	   _cleanup_(nf_freep)
#define _cleanup_close_	   _cleanup_(nf_closep)
#define _cleanup_fclose_   _cleanup_(nf_fclosep)
#define _cleanup_closedir_ _cleanup_(nf_closedirp)

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})

/* Makes room for WANT elements of SIZE bytes in the array *(void **)ARRAY of
 * *CAP elements: the capacity doubles, from MIN, until WANT fits. 0, or
 * -ENOMEM with the array and *CAP as they were. For `T *v; size_t cap;`:
 * `nf_grow(&v, &cap, n + 1, sizeof(*v), 64)`. */
int nf_grow(void *array, size_t *cap, size_t want, size_t size, size_t min);

/* Reads a whole (small, pseudo) file into a NUL-terminated buffer. */
int nf_read_file(const char *path, char **ret, size_t *ret_len);
/* The same, refusing with -EFBIG a file of more than MAX bytes (a regular
 * file's size is no bound: it may be a FIFO or a link to /dev/zero). */
int nf_read_file_max(const char *path, size_t max, char **ret, size_t *ret_len);
/* Reads the first line of a file, without its newline. */
int nf_read_line(const char *path, char **ret);
/* Parses an unsigned decimal number that must fill [s, end) or, with end NULL, all of s. */
int nf_parse_u64(const char *s, const char *end, uint64_t *ret);
/* Parses the hex digits at S (no sign, no 0x), up to the first other
 * character, which *RET_END points at. -EINVAL without a digit, -ERANGE. */
int nf_parse_hex(const char *s, const char **ret_end, uint64_t *ret);
/* Monotonic clock in nanoseconds. */
uint64_t nf_now_ns(void);
/* A settings-file line "name = value", split in place with both sides
 * trimmed: 1, or 0 for a blank or '#' comment line, or -EINVAL without '='.
 * A '#' after a blank starts a comment to the end of the line ("a = 1 # b");
 * one inside a word does not ("path = /x#y"). */
int nf_conf_line(char *line, char **name, char **value);
/* Whether S is well-formed UTF-8. Cgroup names need not be: anyone with a
 * delegated subtree can name one with any bytes. */
bool nf_utf8_valid(const char *s);
/* S with each byte that is not part of well-formed UTF-8 replaced by U+FFFD,
 * to free; NULL when out of memory. */
char *nf_utf8_clean(const char *s);
/* The length of S's longest prefix of at most MAX bytes that ends on a UTF-8
 * character boundary (S valid UTF-8). */
size_t nf_utf8_prefix(const char *s, size_t max);
/* NS (CLOCK_REALTIME) as RFC 3339 in UTC with DIGITS (1 to 9) of the second
 * in BUF of SIZE (32 is enough): "2026-11-28T10:00:00.000Z" for 3. */
void nf_rfc3339(uint64_t ns, unsigned digits, char *buf, size_t size);

#endif
