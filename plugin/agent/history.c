/* The ring of records and its journal. The ring is plain data; the journal
 * lines are written with the agent's lock held (one write(2) each, so that
 * a record the API shows as concluded is in the file), and compacted with it
 * dropped (jobs.c). The log lines here are the agent's: its event loop and
 * workers call this. */
#include "history.h"
#include "agent-internal.h"
#include "../lib/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

int nf_history_init(nf_history *h, size_t cap)
{
	*h = (nf_history){.cap = cap ? cap : 1, .next_id = 1, .journal = {.fd = -1, .lock_fd = -1}};
	h->ring = calloc(h->cap, sizeof(*h->ring));
	return h->ring ? 0 : -ENOMEM;
}

void nf_history_done(nf_history *h)
{
	for (size_t i = 0; i < h->len; i++)
		nf_record_unref(h->ring[(h->first + i) % h->cap]);
	free(h->ring);
	if (h->journal_ok)
		nf_journal_close(&h->journal);
	*h = (nf_history){0};
}

void nf_history_push(nf_history *h, nf_record *r)
{
	if (h->len == h->cap) {
		nf_record_unref(h->ring[h->first]);
		h->first = (h->first + 1) % h->cap;
		h->len--;
	}
	h->ring[(h->first + h->len++) % h->cap] = nf_record_ref(r);
}

void nf_history_put(nf_history *h, nf_record *r)
{
	for (size_t i = 0; i < h->len; i++) {
		nf_record **slot = &h->ring[(h->first + i) % h->cap];
		if ((*slot)->id == r->id) {
			nf_record_unref(*slot);
			*slot = nf_record_ref(r);
			return;
		}
	}
	nf_history_push(h, r);
}

nf_record *nf_history_newest(const nf_history *h, size_t i)
{
	return i < h->len ? h->ring[(h->first + h->len - 1 - i) % h->cap] : NULL;
}

nf_record *nf_history_find(const nf_history *h, uint64_t id)
{
	for (size_t i = 0; i < h->len; i++) {
		nf_record *r = nf_history_newest(h, i);
		if (r->id == id)
			return r;
	}
	return NULL;
}

/* ---- the journal ---- */

static void replay(const char *text, void *userdata)
{
	nf_history *h = userdata;
	json_object *o = json_tokener_parse(text);
	nf_record *r;
	const char *why = "not JSON";
	if (!o || nf_record_parse(o, &r, &why) < 0) {
		nf_log(LOG_WARNING, "history journal: skipping a record: %s", why);
		json_object_put(o);
		return;
	}
	json_object_put(o);
	if (r->id >= h->next_id)
		h->next_id = r->id + 1;
	nf_history_put(h, r);
	nf_record_unref(r);
}

/* Two agents on one state dir would move the same containers and write one
 * history. */
int nf_history_open(nf_history *h, const char *dir, size_t max_bytes)
{
	int r = 0;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		r = -errno;
	else
		r = nf_journal_open(dir, max_bytes, replay, h, &h->journal);
	if (r == -EBUSY)
		return nf_log_errno(LOG_ERR, r, "another numafollowd uses the state dir '%s'", dir);
	if (r < 0)
		nf_log_errno(LOG_ERR, r,
			     "history journal in '%s' (history will not survive a restart)", dir);
	h->journal_ok = r == 0;
	return 0;
}

/* Appends REC as it is now; a failure is counted and leaves REC unsaved. */
static int append(nf_history *h, nf_record *rec)
{
	json_object *o = nf_record_json(rec);
	int r = !o ? -ENOMEM
		   : nf_journal_append(&h->journal, json_object_to_json_string_ext(
							o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	rec->unsaved = r < 0;
	if (r < 0)
		h->write_errors++;
	return r;
}

/* A failure (a full disk) costs persistence, not the migration: it is said
 * once and counted. It is over once the journal has taken again, oldest
 * first, every record whose state it missed meanwhile: a short line can fit
 * where a long one did not, and a restart would otherwise replay a migration
 * that ended meanwhile as cut short. */
void nf_history_save(nf_history *h, nf_record *rec)
{
	nf_record *o;
	int r = 0;
	if (!h->journal_ok)
		return;
	bool done = false;
	rec->unsaved = true;
	for (size_t i = h->len; h->journal_failing && r == 0 && i-- > 0;)
		if ((o = nf_history_newest(h, i))->unsaved) { /* REC in its place */
			r = append(h, o);
			done |= o == rec;
		}
	if (r == 0 && !done)
		r = append(h, rec);
	if (r < 0) {
		if (!h->journal_failing)
			nf_log_errno(LOG_ERR, r,
				     "history journal: appending migration %llu (history is not "
				     "being written; migrations go on)",
				     (unsigned long long)rec->id);
	} else if (h->journal_failing) {
		nf_log(LOG_NOTICE, "history journal: writing again");
	}
	h->journal_failing = r < 0;
}

bool nf_history_persistent(const nf_history *h)
{
	return h->journal_ok && !h->journal_failing;
}

void nf_history_conclude_interrupted(nf_history *h)
{
	nf_record *r;
	for (size_t i = 0; (r = nf_history_newest(h, i)); i++) {
		if (r->state == NF_REC_DONE)
			continue;
		nf_record_abandon(r, "numafollowd stopped before this migration ended");
		nf_history_save(h, r);
	}
}

void nf_history_link(const nf_history *h, nf_cg *(*find)(void *userdata, const char *rel),
		     void *userdata)
{
	nf_record *r;
	for (size_t i = h->len; i-- > 0 && (r = nf_history_newest(h, i));) {
		nf_cg *c = find(userdata, r->cgroup);
		if (c) {
			nf_record_unref(c->last);
			c->last = nf_record_ref(r);
			c->residual = r->residual_bytes;
		}
	}
}

bool nf_history_compaction_due(const nf_history *h)
{
	return h->journal_ok && nf_journal_full(&h->journal);
}

int nf_history_compact_begin(nf_history *h, nf_journal_compaction *ret)
{
	int r = nf_journal_compact_begin(&h->journal, ret);
	if (r < 0)
		nf_history_compact_end(h, NULL, r);
	return r;
}

/* A failure costs the bound, not a record: said once, tried again later. */
void nf_history_compact_end(nf_history *h, nf_journal_compaction *k, int r)
{
	if (k)
		r = nf_journal_compact_end(&h->journal, k, r);
	if (r < 0 && !h->compact_failing)
		nf_log_errno(LOG_WARNING, r,
			     "history journal: compacting it (it grows past its bound meanwhile)");
	else if (r == 0 && h->compact_failing)
		nf_log(LOG_NOTICE, "history journal: compacted again");
	h->compact_failing = r < 0;
}
