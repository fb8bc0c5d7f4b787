/* An append-only journal of JSON records, one per line behind a CRC-32:
 * "<crc32 hex> <json>\n". A crash can tear only the last record, which the
 * next open drops. Bounded: past max_bytes the owner compacts it, keeping the
 * newest half (written aside, synced and renamed over, so a crash leaves
 * either file whole). Not thread-safe: its owner serializes the calls, but
 * for nf_journal_compact_write, which may run beside appends. */
#ifndef NF_JOURNAL_H
#define NF_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	int fd;
	int lock_fd; /* DIR/history.lock, flock()ed for the journal's life */
	char *path;
	size_t size, max_bytes;
	size_t compact_at; /* past this size it asks to be compacted */
	bool compacting;   /* a compaction is under way */
} nf_journal;

/* A compaction under way (nf_journal_compact_begin). */
typedef struct {
	int fd;	    /* the journal, read up to UPTO */
	int tmp_fd; /* the new journal, written aside */
	char *tmp;  /* its path */
	size_t upto, kept;
} nf_journal_compaction;

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
/* Whether it is past its bound, with no compaction under way. */
bool nf_journal_full(const nf_journal *j);
/* Compaction in three steps, so that an owner whose lock serializes appends
 * can let it go for the slow one: _begin and _end with appends held off,
 * _write beside them. _begin notes where the journal ends; _write writes the
 * newest half of what was there aside and syncs it; _end adds what was
 * appended meanwhile (not synced, as no append is) and renames the new
 * journal over (R: _write's result; on failure the journal stays as it is,
 * and asks again once it has grown by an eighth of its bound). Each returns
 * 0 or -errno. */
int nf_journal_compact_begin(nf_journal *j, nf_journal_compaction *ret);
int nf_journal_compact_write(nf_journal_compaction *k);
int nf_journal_compact_end(nf_journal *j, nf_journal_compaction *k, int r);
/* The three in a row. */
int nf_journal_compact(nf_journal *j);
void nf_journal_close(nf_journal *j);

#endif
