/*
 * policy_build(): how a run's policy is put together from a profile, the
 * profile a box remembers, the command line and the default hides. The
 * CLI's run and shell use it, and so will every later front end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/util.h"
#include "policy/policy.h"

static char dir[64];

static int setup(void **state)
{
	char *profiles;
	FILE *f;

	snprintf(dir, sizeof(dir), "/var/tmp/hutch-test-build.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	profiles = xasprintf("%s/hutch/profiles", dir);
	mkdir_p(profiles, 0700, NULL);
	setenv("XDG_CONFIG_HOME", dir, 1);
	/* "dev": limits and a hide; "other": what a box may remember */
	f = fopen(xasprintf("%s/dev.conf", profiles), "w");
	if (!f)
		return -1;
	fputs("[box]\nhide = /srv/a\nmemory = 512M\npids = 100\nseccomp = strict\n", f);
	fclose(f);
	f = fopen(xasprintf("%s/other.conf", profiles), "w");
	if (!f)
		return -1;
	fputs("[box]\nhide = /srv/other\n", f);
	fclose(f);
	free(profiles);
	return 0;
}

static int teardown(void **state)
{
	struct error err;

	remove_tree(dir, &err);
	return 0;
}

static bool has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

static void the_command_line_goes_on_top_of_the_profile(void **state)
{
	struct policy cli = {0}, out;
	struct policy_sources src = {.cli = &cli, .home = "/home/u"};
	char *name = NULL;
	struct error err;

	cli.profile = xstrdup("dev");
	cli.memory = 1 << 20; /* overrides the profile's 512M */
	strlist_add(&cli.hide, "/srv/b");
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_string_equal(name, "dev");
	assert_int_equal(out.memory, 1 << 20);
	assert_int_equal(out.pids, 100); /* the profile's, where the command line says nothing */
	assert_true(has(&out.hide, "/srv/a") && has(&out.hide, "/srv/b")); /* lists add up */
	/* seccomp: the profile's, unless the command line named a mode */
	assert_int_equal(out.seccomp, FILTER_STRICT);
	policy_release(&out);
	free(name);
	src.seccomp_set = true;
	cli.seccomp = FILTER_OFF;
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_int_equal(out.seccomp, FILTER_OFF);
	policy_release(&out);
	free(name);
	policy_release(&cli);
}

static void a_remembered_profile_serves_only_when_none_is_named(void **state)
{
	struct policy cli = {0}, out;
	struct policy_sources src = {.cli = &cli, .remembered = "other", .home = "/home/u"};
	char *name = NULL;
	struct error err;

	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_string_equal(name, "other");
	assert_true(has(&out.hide, "/srv/other"));
	policy_release(&out);
	free(name);
	cli.profile = xstrdup("dev");
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_string_equal(name, "dev");
	assert_false(has(&out.hide, "/srv/other"));
	policy_release(&out);
	free(name);
	policy_release(&cli);
}

static void secrets_are_hidden_unless_opened_on_purpose(void **state)
{
	struct policy cli = {0}, out;
	struct policy_sources src = {.cli = &cli, .home = "/home/u"};
	char *name = NULL;
	struct error err;

	strlist_add(&cli.direct, "/home/u/.aws");
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_null(name);
	assert_true(has(&out.hide, "/home/u/.ssh"));
	assert_false(has(&out.hide, "/home/u/.aws")); /* --direct opens it */
	assert_true(has(&out.direct, "/home/u/.aws"));
	policy_release(&out);
	cli.no_default_hide = true;
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_false(has(&out.hide, "/home/u/.ssh"));
	policy_release(&out);
	policy_release(&cli);
}

static void a_missing_profile_is_an_error(void **state)
{
	struct policy cli = {0}, out;
	struct policy_sources src = {.cli = &cli};
	char *name = NULL;
	struct error err;

	cli.profile = xstrdup("nosuch");
	assert_int_equal(policy_build(&src, &out, &name, &err), -1);
	assert_non_null(strstr(err.msg, "nosuch"));
	assert_null(name);
	policy_release(&out);
	policy_release(&cli);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_command_line_goes_on_top_of_the_profile),
	    cmocka_unit_test(a_remembered_profile_serves_only_when_none_is_named),
	    cmocka_unit_test(secrets_are_hidden_unless_opened_on_purpose),
	    cmocka_unit_test(a_missing_profile_is_an_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
