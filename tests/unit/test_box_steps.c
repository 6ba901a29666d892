/*
 * The steps of a run (box/box.h), called one by one as a front end with a
 * lifecycle of its own would (an OCI runtime: create, start, wait,
 * delete), not through box_run().
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/box.h"
#include "box/control.h"
#include "box/store.h"
#include "common/util.h"
#include "policy/policy.h"

static char home[64];
static struct store store;
static struct policy policy = {.seccomp = FILTER_DEFAULT, .no_default_hide = true};

static int setup(void **state)
{
	struct error err;

	snprintf(home, sizeof(home), "/var/tmp/hutch-test-steps.XXXXXX");
	if (!mkdtemp(home))
		return -1;
	setenv("HUTCH_HOME", home, 1);
	if (store_init(&store, &err) < 0 || store_create(&store, &err) < 0) {
		print_error("%s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct error err;

	store_release(&store);
	remove_tree(home, &err);
	return 0;
}

/* Skips, saying why, where this kernel has no user namespaces. */
static bool userns_ok(void)
{
	if (access("/proc/self/ns/user", F_OK) == 0)
		return true;
	print_message("skip: no user namespaces on this kernel\n");
	return false;
}

static void a_box_created_then_started_runs_its_program(void **state)
{
	struct box_start start = {.store = &store, .name = "steps", .policy = &policy};
	char *argv[] = {"/bin/sh", "-c", "exit 7", NULL};
	struct box box;
	struct error err;

	if (!userns_ok())
		skip();
	assert_int_equal(box_open(&box, &start, &err), 0);
	if (box_create(&box, &err) != BOX_OK)
		fail_msg("box_create: %s", err.msg);
	/* Created: PID 1 is up and waits for its first program. */
	assert_true(box.init > 0);
	assert_int_equal(kill(box.init, 0), 0);
	assert_int_equal(box_start(&box, argv, &err), BOX_OK);
	assert_int_equal(box_wait(&box, &err), BOX_OK);
	assert_int_equal(box.code, 7);
	assert_int_equal(box_teardown(&box, BOX_OK, &err), 7);
	box_close(&box);
}

static void a_created_box_whose_program_never_starts_is_torn_down(void **state)
{
	struct box_start start = {.store = &store, .name = "unstarted", .policy = &policy};
	struct box box;
	struct error err;
	pid_t init;
	int conn;

	if (!userns_ok())
		skip();
	assert_int_equal(box_open(&box, &start, &err), 0);
	if (box_create(&box, &err) != BOX_OK)
		fail_msg("box_create: %s", err.msg);
	init = box.init;
	/* Up and listening: a run would join it now. */
	conn = control_connect(box.dirfd);
	assert_true(conn >= 0);
	close(conn);
	error_set(&err, 0, "the front end gave up");
	assert_int_equal(box_teardown(&box, BOX_FAILED, &err), -1);
	/* Killed and reaped: no process, and nobody listens any more. */
	assert_int_equal(kill(init, 0), -1);
	assert_int_equal(errno, ESRCH);
	conn = control_connect(box.dirfd);
	assert_true(conn < 0);
	box_close(&box);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_box_created_then_started_runs_its_program),
	    cmocka_unit_test(a_created_box_whose_program_never_starts_is_torn_down),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
