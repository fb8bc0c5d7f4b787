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
			    .max_bytes = max_bytes,
			    .compact_at = max_bytes};
	return 0;
}

bool nf_journal_full(const nf_journal *j)
{
	return !j->compacting && j->size > j->compact_at;
}

int nf_journal_compact_begin(nf_journal *j, nf_journal_compaction *ret)
{
	_cleanup_free_ char *tmp = NULL;
	if (j->compacting)
		return -EBUSY;
	/* a failure asks again later, not at every append */
	j->compact_at = j->size + j->max_bytes / 8;
	if (asprintf(&tmp, "%s.tmp", j->path) < 0)
		return -ENOMEM;
	int fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	j->compacting = true;
	*ret =
	    (nf_journal_compaction){.fd = fd, .tmp_fd = -1, .tmp = TAKE_PTR(tmp), .upto = j->size};
	return 0;
}

/* Reads the journal up to K->upto: records below it never change. */
static int read_upto(const nf_journal_compaction *k, char **ret)
{
	_cleanup_free_ char *buf = malloc(k->upto + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t off = 0; off < k->upto;) {
		ssize_t n = pread(k->fd, buf + off, k->upto - off, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
	}
	buf[k->upto] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

int nf_journal_compact_write(nf_journal_compaction *k)
{
	_cleanup_free_ char *buf = NULL;
	int r = read_upto(k, &buf);
	if (r < 0)
		return r;
	const char *keep = buf + k->upto / 2;
	const char *nl = memchr(keep, '\n', buf + k->upto - keep);
	keep = nl ? nl + 1 : buf + k->upto;
	k->tmp_fd = open(k->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (k->tmp_fd < 0)
		return -errno;
	k->kept = buf + k->upto - keep;
	ssize_t w = write(k->tmp_fd, keep, k->kept);
	if (w < 0 || fsync(k->tmp_fd) < 0)
		return -errno;
	return (size_t)w == k->kept ? 0 : -ENOSPC;
}

/* What was appended since _begin, copied to the new journal. */
static int copy_tail(const nf_journal *j, const nf_journal_compaction *k)
{
	size_t n = j->size - k->upto;
	_cleanup_free_ char *buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t got = pread(j->fd, buf, n, k->upto);
	if (got < 0)
		return -errno;
	if ((size_t)got != n)
		return -EIO;
	ssize_t w = write(k->tmp_fd, buf, n);
	return w < 0 ? -errno : (size_t)w == n ? 0 : -ENOSPC;
}

static int swap_in(nf_journal *j, const nf_journal_compaction *k)
{
	int r = copy_tail(j, k);
	if (r < 0)
		return r;
	if (rename(k->tmp, j->path) < 0)
		return -errno;
	int nfd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (nfd < 0)
		return -errno; /* the old fd writes to the unlinked file: lost at restart */
	close(j->fd);
	j->fd = nfd;
	j->size = k->kept + (j->size - k->upto);
	return 0;
}

int nf_journal_compact_end(nf_journal *j, nf_journal_compaction *k, int r)
{
	if (r == 0)
		r = swap_in(j, k);
	if (r < 0 && k->tmp_fd >= 0)
		unlink(k->tmp);
	j->compact_at = r < 0 ? j->size + j->max_bytes / 8 : j->max_bytes;
	j->compacting = false;
	close(k->fd);
	if (k->tmp_fd >= 0)
		close(k->tmp_fd);
	free(k->tmp);
	*k = (nf_journal_compaction){.fd = -1, .tmp_fd = -1};
	return r;
}

int nf_journal_compact(nf_journal *j)
{
	nf_journal_compaction k;
	int r = nf_journal_compact_begin(j, &k);
	if (r < 0)
		return r;
	return nf_journal_compact_end(j, &k, nf_journal_compact_write(&k));
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
	return 0;
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
