/* An append-only journal of JSON records, one per line behind a CRC-32:
 * "<crc32 hex> <json>\n". A crash can tear only the last record, which the
 * next open drops. Bounded: past max_bytes the newest half is kept (written
 * aside and renamed over, so a crash leaves either file whole). */
#ifndef NF_JOURNAL_H
#define NF_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int fd;
	int lock_fd; /* DIR/history.lock, flock()ed for the journal's life */
	char *path;
	size_t size, max_bytes;
} nf_journal;

typedef void (*nf_journal_cb)(const char *record, void *userdata);

uint32_t nf_crc32(const void *data, size_t len);
/* Opens (creating) DIR/history.journal, calls CB for every intact record in
 * order (skipping damaged lines) and cuts a torn last line off. -EBUSY when
 * another process holds DIR's journal (one agent per state dir). */
int nf_journal_open(const char *dir, size_t max_bytes, nf_journal_cb cb, void *userdata,
		    nf_journal *ret);
/* Appends one record (a single line of JSON, no newline). A write that
 * fails (-ENOSPC, -EIO...) leaves the journal as it was. */
int nf_journal_append(nf_journal *j, const char *record);
void nf_journal_close(nf_journal *j);

#endif
