/* What GET /v1/events is told (stream.h): a migration's start, progress and
 * end, a container added, removed, or its effective mems changed. Called with
 * the lock held, but for the progress callback (agent-internal.h). Each
 * event is built only while a client follows. */
#include "agent-internal.h"
#include "stream.h"
#include "../lib/json.h"

void nf_announce_record(nf_agent *a, const char *type, const nf_record *r)
{
	if (!nf_stream_listened(a->stream))
		return;
	json_object *o = nf_record_json(r);
	nf_stream_publish(a->stream, type, o);
	json_object_put(o);
}

static json_object *container_json(const nf_agent *a, const nf_cg *c)
{
	nf_container v = nf_cg_view(a, c);
	json_object *o = json_object_new_object();
	bool ok = o && nf_json_add(o, "id", nf_json_text(v.id)) &&
		  nf_json_add(o, "cgroup", nf_json_text(v.cgroup)) &&
		  (v.name ? nf_json_add(o, "name", nf_json_text(v.name))
			  : json_object_object_add(o, "name", NULL) == 0) &&
		  nf_json_add(o, "mems_effective", nf_json_nodeset(&v.eff));
	if (!ok)
		return json_object_put(o), NULL;
	return o;
}

void nf_announce_presence(nf_agent *a, nf_cg *c)
{
	bool now = nf_cg_is_container(c);
	if (now == c->announced)
		return;
	c->announced = now;
	if (!nf_stream_listened(a->stream))
		return;
	json_object *o = container_json(a, c);
	nf_stream_publish(a->stream, now ? "container-added" : "container-removed", o);
	json_object_put(o);
}

void nf_announce_mems(nf_agent *a, const nf_cg *c, const nf_nodeset *old)
{
	if (!nf_stream_listened(a->stream))
		return;
	json_object *o = container_json(a, c);
	if (o && nf_json_add(o, "from", nf_json_nodeset(old)))
		nf_stream_publish(a->stream, "container-mems", o);
	json_object_put(o);
}

void nf_announce_progress_unlocked(const nf_progress *p, void *userdata)
{
	nf_announce_sink *k = userdata;
	nf_record_progress_set(k->record, p);
	if (!nf_stream_listened(k->stream))
		return;
	json_object *o = json_object_new_object();
	bool ok = o && nf_json_add(o, "id", json_object_new_int64(k->record->id)) &&
		  nf_json_add(o, "container", nf_json_text(k->record->container)) &&
		  nf_json_add(o, "cgroup", nf_json_text(k->record->cgroup)) &&
		  nf_json_add(o, "progress", nf_progress_json(p));
	if (ok)
		nf_stream_publish(k->stream, "migration-progress", o);
	json_object_put(o);
}
