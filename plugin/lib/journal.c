#include "journal.h"
#include "../../cgroup/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

uint32_t nf_crc32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

/* One line "xxxxxxxx json": 1 when intact, 0 otherwise. */
static int intact(const char *line, size_t len)
{
	uint64_t crc;
	char hex[9];
	if (len < 10 || line[8] != ' ')
		return 0;
	memcpy(hex, line, 8);
	hex[8] = '\0';
	if (strspn(hex, "0123456789abcdef") != 8)
		return 0;
	crc = strtoull(hex, NULL, 16);
	return nf_crc32(line + 9, len - 9) == crc && !memchr(line, '\0', len);
}

/* Calls CB for intact records; returns the length up to the last newline
 * (what follows it is a torn tail). A damaged line in the middle is skipped,
 * not the end of the history: appends never leave one (nf_journal_append cuts
 * a short write back), but an older version's journal may have one. */
static size_t replay(const char *buf, size_t len, nf_journal_cb cb, void *userdata)
{
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		if (!nl)
			break;
		if (cb && intact(buf + off, nl - (buf + off))) {
			char *rec = strndup(buf + off + 9, nl - (buf + off) - 9);
			if (rec)
				cb(rec, userdata);
			free(rec);
		}
		off = nl - buf + 1;
	}
	return off;
}

int nf_journal_open(const char *dir, size_t max_bytes, nf_journal_cb cb, void *userdata,
		    nf_journal *ret)
{
	_cleanup_free_ char *path = NULL, *lock = NULL, *buf = NULL;
	size_t len = 0;
	if (asprintf(&path, "%s/history.journal", dir) < 0 ||
	    asprintf(&lock, "%s/history.lock", dir) < 0)
		return -ENOMEM;
	/* A lock file, not the journal: compaction renames a new journal over it. */
	_cleanup_close_ int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -errno;
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = nf_read_file(path, &buf, &len);
	if (r < 0)
		return r;
	size_t good = replay(buf, len, cb, userdata);
	if (good < len && ftruncate(fd, good) < 0)
		return -errno;
	*ret = (nf_journal){.fd = TAKE_FD(fd),
			    .lock_fd = TAKE_FD(lfd),
			    .path = TAKE_PTR(path),
			    .size = good,
			    .max_bytes = max_bytes};
	return 0;
}

/* Keeps the newest half: written to a temporary file, synced, renamed over. */
static int compact(nf_journal *j)
{
	_cleanup_free_ char *buf = NULL, *tmp = NULL;
	size_t len;
	int r = nf_read_file(j->path, &buf, &len);
	if (r < 0)
		return r;
	const char *keep = buf + len / 2;
	const char *nl = memchr(keep, '\n', buf + len - keep);
	keep = nl ? nl + 1 : buf + len;
	if (asprintf(&tmp, "%s.tmp", j->path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t n = buf + len - keep;
	if (write(fd, keep, n) != (ssize_t)n || fsync(fd) < 0 || rename(tmp, j->path) < 0) {
		r = -errno;
		unlink(tmp);
		return r ? r : -EIO;
	}
	int nfd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	close(j->fd);
	j->fd = nfd;
	j->size = n;
	return 0;
}

int nf_journal_append(nf_journal *j, const char *record)
{
	size_t n = strlen(record);
	if (memchr(record, '\n', n))
		return -EINVAL;
	_cleanup_free_ char *line = malloc(n + 11);
	if (!line)
		return -ENOMEM;
	snprintf(line, n + 11, "%08x %s\n", nf_crc32(record, n), record);
	/* One write(2) per record: O_APPEND keeps records whole against each other.
	 * A short one (a full disk) is cut back, or the next record would be
	 * appended to the torn line and be lost with it. */
	ssize_t w = write(j->fd, line, n + 10);
	if (w < 0 || (size_t)w != n + 10) {
		int r = w < 0 ? -errno : -ENOSPC;
		if (w > 0 && ftruncate(j->fd, j->size) < 0)
			return -errno;
		return r;
	}
	j->size += n + 10;
	return j->size > j->max_bytes ? compact(j) : 0;
}

void nf_journal_close(nf_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j->path);
	j->fd = j->lock_fd = -1;
	j->path = NULL;
}
