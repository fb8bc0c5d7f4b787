/* What the agent decides (plugin/agent/decide.c), apart from its I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "../../plugin/agent/decide.h"
#include "../../plugin/lib/settle.h"

static void requests(void **state)
{
	(void)state;
	/* opted out: only the API moves it */
	assert_int_equal(nf_decide_request(NF_TRIG_INOTIFY, true, false, false, false),
			 NF_REQ_SKIP);
	assert_int_equal(nf_decide_request(NF_TRIG_RECONCILE, true, false, false, false),
			 NF_REQ_SKIP);
	assert_int_equal(nf_decide_request(NF_TRIG_HOOK, true, false, false, false), NF_REQ_SKIP);
	assert_int_equal(nf_decide_request(NF_TRIG_API, true, false, false, false), NF_REQ_QUEUE);
	/* a queued job takes the newest mems; a running one is superseded */
	assert_int_equal(nf_decide_request(NF_TRIG_INOTIFY, false, false, true, true),
			 NF_REQ_RETARGET);
	assert_int_equal(nf_decide_request(NF_TRIG_INOTIFY, false, false, true, false),
			 NF_REQ_RETARGET);
	assert_int_equal(nf_decide_request(NF_TRIG_INOTIFY, false, false, false, true),
			 NF_REQ_SUPERSEDE);
	assert_int_equal(nf_decide_request(NF_TRIG_RECONCILE, false, false, false, false),
			 NF_REQ_QUEUE);
	/* a staged move under way is neither retargeted nor superseded */
	assert_int_equal(nf_decide_request(NF_TRIG_API, false, true, true, false), NF_REQ_SKIP);
	assert_int_equal(nf_decide_request(NF_TRIG_INOTIFY, false, true, false, true), NF_REQ_SKIP);
}

static bool yes(void *userdata)
{
	(*(int *)userdata)++;
	return true;
}

static bool no(void *userdata)
{
	(*(int *)userdata)++;
	return false;
}

/* A change of the effective mems that asks for no migration (check_mems). */
static void nothing_to_move(void **state)
{
	int asked = 0;
	(void)state;
	/* a migration under way takes the change: never asks /proc */
	assert_null(nf_decide_nothing_to_move(false, false, true, 0, yes, &asked));
	assert_int_equal(asked, 0);
	/* a widening with nothing outside: decided without /proc */
	assert_string_equal(nf_decide_nothing_to_move(true, false, true, 0, yes, &asked),
			    "a widening, with none of its memory outside");
	assert_int_equal(asked, 0);
	/* a narrowing always moves, unless the tasks are still runc's init */
	assert_null(nf_decide_nothing_to_move(true, true, true, 0, no, &asked));
	assert_int_equal(asked, 1);
	assert_string_equal(nf_decide_nothing_to_move(true, true, true, 0, yes, &asked),
			    "its tasks are still runc's init");
	assert_int_equal(asked, 2);
	/* a widening with memory outside, or never sampled, moves */
	assert_null(nf_decide_nothing_to_move(true, false, true, 4096, no, &asked));
	assert_null(nf_decide_nothing_to_move(true, false, false, 0, no, &asked));
	assert_int_equal(asked, 4);
}

static nf_record *done(nf_trigger t, nf_result res)
{
	nf_nodeset n = {.w = {1}};
	nf_record *r = nf_record_new(1, "c", "/c", t, &n, &n);
	assert_non_null(r);
	r->state = NF_REC_DONE;
	r->result = res;
	return r;
}

static void states(void **state)
{
	(void)state;
	nf_record *ok = done(NF_TRIG_INOTIFY, NF_RES_OK), *part = done(NF_TRIG_API, NF_RES_PARTIAL),
		  *fail = done(NF_TRIG_API, NF_RES_FAILED),
		  *sup = done(NF_TRIG_API, NF_RES_SUPERSEDED);
	assert_int_equal(nf_decide_state(false, false, false, NULL), NF_CS_IN_SYNC);
	assert_int_equal(nf_decide_state(false, false, false, ok), NF_CS_IN_SYNC);
	assert_int_equal(nf_decide_state(false, false, false, sup), NF_CS_IN_SYNC);
	assert_int_equal(nf_decide_state(false, false, false, part), NF_CS_FAILED);
	assert_int_equal(nf_decide_state(false, false, false, fail), NF_CS_FAILED);
	/* what is going on wins over what happened */
	assert_int_equal(nf_decide_state(false, false, true, fail), NF_CS_DRIFTED);
	assert_int_equal(nf_decide_state(false, true, true, fail), NF_CS_OPTED_OUT);
	assert_int_equal(nf_decide_state(true, true, true, fail), NF_CS_MIGRATING);
	assert_string_equal(nf_cg_state_name(NF_CS_OPTED_OUT), "opted_out");
	/* a record still running says nothing about failure */
	part->state = NF_REC_RUNNING;
	assert_int_equal(nf_decide_state(false, false, false, part), NF_CS_IN_SYNC);
	nf_record_unref(ok), nf_record_unref(part), nf_record_unref(fail), nf_record_unref(sup);
}

static void drift(void **state)
{
	(void)state;
	assert_false(nf_decide_drift(0, 0, false));
	assert_true(nf_decide_drift(4096, 0, false));
	/* what the last migration could not move is not drift */
	assert_false(nf_decide_drift(1 << 20, 1 << 20, false));
	assert_true(nf_decide_drift((1 << 20) + 1, 1 << 20, false));
	/* no effective mems: nowhere to go */
	assert_false(nf_decide_drift(1 << 20, 0, true));
}

static void raced(void **state)
{
	(void)state;
	nf_trigger rec = NF_TRIG_RECONCILE, ino = NF_TRIG_INOTIFY;
	nf_record *by_rec = done(NF_TRIG_RECONCILE, NF_RES_PARTIAL),
		  *by_ino = done(NF_TRIG_INOTIFY, NF_RES_OK);
	assert_false(nf_decide_raced(NULL, NULL));
	assert_true(nf_decide_raced(NULL, by_rec));
	assert_false(nf_decide_raced(NULL, by_ino));
	/* the running job is the latest migration */
	assert_true(nf_decide_raced(&rec, by_ino));
	assert_false(nf_decide_raced(&ino, by_rec));
	nf_record_unref(by_rec), nf_record_unref(by_ino);
}

static void registrations(void **state)
{
	(void)state;
	assert_int_equal(nf_decide_registration("a", NULL, false, false, false), NF_REG_NEW);
	assert_int_equal(nf_decide_registration("a", "a", false, false, false), NF_REG_UPDATE);
	assert_int_equal(nf_decide_registration("a", "b", false, false, false), NF_REG_NEW);
	assert_int_equal(nf_decide_registration("a", "a", false, false, true), NF_REG_NO_CPUSET);
	/* the root cgroup is the machine, not a container */
	assert_int_equal(nf_decide_registration("init", NULL, true, false, false), NF_REG_ROOT);
	/* one id, one container: not another cgroup's name */
	assert_int_equal(nf_decide_registration("abc", NULL, false, true, false), NF_REG_ID_TAKEN);
}

static void settling(void **state)
{
	(void)state;
	const uint64_t s = 1000000000;
	assert_true(nf_settled(0, 0, 0));	  /* nothing outside: done at once */
	assert_false(nf_settled(4096, 9, 5 * s)); /* changing within the last second */
	assert_true(nf_settled(4096, 10, 5 * s)); /* quiet for 1 s: the kernel left it */
	assert_false(nf_settled(4096, 0, 59 * s));
	assert_true(nf_settled(4096, 0, 60 * s)); /* never longer than a minute */
}

/* what a refused registration answers (the agent and tests/fuzz/fake-agent.c) */
static void refusals(void **state)
{
	(void)state;
	static const struct {
		int e;
		nf_reg_action act;
		int want;
		const char *msg;
	} cases[] = {
	    {-ESRCH, NF_REG_NEW, -ESRCH, "pid 7: no such process"},
	    {-EXDEV, NF_REG_NEW, -EXDEV, "pid 7 is in a cgroup outside the watched root"},
	    {-ENOENT, NF_REG_NEW, -ENOENT,
	     "pid 7: its cpuset cgroup cannot be found: No such file or directory"},
	    {0, NF_REG_ROOT, -EPERM,
	     "pid 7 is in the root cgroup: refusing to treat the whole machine as one container"},
	    {0, NF_REG_ID_TAKEN, -EEXIST, "id 'web' is the container of cgroup '/other'"},
	    {0, NF_REG_NO_CPUSET, -ENXIO, "cgroup '/c' has no cpuset"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *m = NULL;
		assert_int_equal(
		    nf_decide_refusal(cases[i].e, cases[i].act, 7, "web", "/c", "/other", &m),
		    cases[i].want);
		assert_string_equal(m, cases[i].msg);
		free(m);
	}
	assert_int_equal(nf_decide_refusal(0, NF_REG_ROOT, 1, "x", "/", NULL, NULL), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(requests), cmocka_unit_test(nothing_to_move),
	    cmocka_unit_test(states),	cmocka_unit_test(drift),
	    cmocka_unit_test(raced),	cmocka_unit_test(registrations),
	    cmocka_unit_test(settling), cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
