/*
 * deny_exec_match (policy/seccomp.h): which --deny-exec pattern, if any,
 * covers a program the box asks to execute. A pattern with a '/' is a path
 * and matches the whole path; one without is a program name and matches
 * the last component only; both are shell wildcards (fnmatch).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "policy/policy.h"
#include "policy/seccomp.h"

static void expect(const char *const *patterns, size_t n, const char *path, int want)
{
	struct strlist l = {.v = (char **)patterns, .n = n};
	const char *got = deny_exec_match(&l, path);

	if (want < 0 && got)
		fail_msg("'%s' matched '%s'", path, got);
	if (want >= 0 && got != patterns[want])
		fail_msg("'%s' matched %s%s%s, not '%s'", path, got ? "'" : "", got ? got : "nothing",
			 got ? "'" : "", patterns[want]);
}

#define EXPECT(pats, path, want) expect(pats, ARRAY_SIZE(pats), path, want)

static void a_name_matches_the_last_component_only(void **state)
{
	static const char *const p[] = {"curl"};

	EXPECT(p, "/usr/bin/curl", 0);
	EXPECT(p, "/opt/x/curl", 0);
	EXPECT(p, "curl", 0);
	EXPECT(p, "/usr/bin/curlx", -1);
	EXPECT(p, "/usr/bin/xcurl", -1);
	EXPECT(p, "/curl/bin/wget", -1);
	/* A directory's name is not the program's. */
	static const char *const dir[] = {"bin"};
	EXPECT(dir, "/usr/bin/curl", -1);
}

static void a_name_may_be_a_wildcard(void **state)
{
	static const char *const star[] = {"py*"};
	static const char *const one[] = {"python?"};
	static const char *const set[] = {"[bd]ash"};

	EXPECT(star, "/usr/bin/python3", 0);
	EXPECT(star, "/usr/bin/py", 0);
	EXPECT(star, "/usr/bin/ipython", -1);
	EXPECT(one, "/usr/bin/python3", 0);
	EXPECT(one, "/usr/bin/python3.11", -1);
	EXPECT(one, "/usr/bin/python", -1);
	EXPECT(set, "/bin/bash", 0);
	EXPECT(set, "/bin/dash", 0);
	EXPECT(set, "/bin/zsh", -1);
	EXPECT(set, "/bin/rbash", -1);
}

static void a_path_matches_the_whole_path(void **state)
{
	static const char *const p[] = {"/usr/bin/sudo"};
	static const char *const glob[] = {"/usr/bin/*"};

	EXPECT(p, "/usr/bin/sudo", 0);
	EXPECT(p, "/usr/local/bin/sudo", -1);
	EXPECT(p, "/usr/bin/sudoedit", -1);
	EXPECT(p, "sudo", -1); /* a path pattern is not a name */
	EXPECT(glob, "/usr/bin/curl", 0);
	EXPECT(glob, "/usr/sbin/curl", -1);
	EXPECT(glob, "/bin/curl", -1);
}

static void the_first_matching_pattern_is_named(void **state)
{
	static const char *const p[] = {"wget", "/usr/bin/c*", "curl", "*"};
	static const char *const none[] = {"wget", "/sbin/*"};

	EXPECT(p, "/usr/bin/wget", 0);
	EXPECT(p, "/usr/bin/curl", 1);
	EXPECT(p, "/usr/local/bin/curl", 2);
	EXPECT(p, "/usr/bin/true", 3);
	EXPECT(none, "/usr/bin/true", -1);
	/* No patterns: nothing is denied. */
	struct strlist empty = {0};
	assert_null(deny_exec_match(&empty, "/usr/bin/curl"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_name_matches_the_last_component_only),
	    cmocka_unit_test(a_name_may_be_a_wildcard),
	    cmocka_unit_test(a_path_matches_the_whole_path),
	    cmocka_unit_test(the_first_matching_pattern_is_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
