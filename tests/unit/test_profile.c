/*
 * Profiles (policy/profile.h) and the option parsers they share with
 * `hutch run` (policy/policy.h): a good profile fills the policy, every bad
 * line is refused with FILE:LINE and a reason, and a refused profile
 * changes nothing. And policy_build(), which puts a run's policy together
 * from a profile, the profile a box remembers and the command line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "policy/policy.h"
#include "policy/profile.h"

#include "fixture.h"

/* Profile "p" of a user whose XDG_CONFIG_HOME is dir. */
struct fixture {
	char *dir;
	char *path; /* dir/hutch/profiles/p.conf */
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	struct error err;

	fx->dir = fx_mkdtemp("profile");
	fx->path = xasprintf("%s/hutch/profiles/p.conf", fx->dir);
	_cleanup_free_ char *folder = xasprintf("%s/hutch/profiles", fx->dir);
	if (mkdir_p(folder, 0700, &err) < 0)
		return -1;
	setenv("XDG_CONFIG_HOME", fx->dir, 1);
	*state = fx;
	return 0;
}

/* Load the fixture's profile the way hutch run -p p does. */
static int load(struct policy *p, struct error *err)
{
	return profile_load("p", p, err);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	unsetenv("XDG_CONFIG_HOME");
	fx_rmdtemp(fx->dir);
	free(fx->path);
	free(fx);
	return 0;
}

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_profile(const struct fixture *fx, const char *text)
{
	write_text(fx->path, text, strlen(text));
}

static void good_profile_fills_the_policy(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {0};
	struct error err;

	setenv("HOME", "/home/someone", 1);
	write_profile(fx, "# hutch profile\n"
			  "; another comment\n"
			  "\n"
			  "[box]\n"
			  "hide = ~/.ssh\n"
			  "hide=/srv/secrets\n"
			  "read-only = /etc\n"
			  "direct = ~/Downloads\n"
			  "deny-exec = /usr/bin/curl\n"
			  "deny-exec = wget\n"
			  "seccomp = strict\n"
			  "memory = 512M\n"
			  "  cpus = 1.5  \n"
			  "pids = 100\n"
			  "timeout = 5m\n"
			  "max-file-size = 1G\n"
			  "max-open-files = 256\n");
	assert_int_equal(load(&p, &err), 0);
	assert_int_equal(p.hide.n, 2);
	assert_string_equal(p.hide.v[0], "/home/someone/.ssh");
	assert_string_equal(p.hide.v[1], "/srv/secrets");
	assert_int_equal(p.read_only.n, 1);
	assert_string_equal(p.read_only.v[0], "/etc");
	assert_string_equal(p.direct.v[0], "/home/someone/Downloads");
	assert_int_equal(p.deny_exec.n, 2);
	assert_string_equal(p.deny_exec.v[0], "/usr/bin/curl");
	assert_string_equal(p.deny_exec.v[1], "wget");
	assert_int_equal(p.seccomp, FILTER_STRICT);
	assert_int_equal(p.memory, 512ULL << 20);
	assert_int_equal(p.cpus_milli, 1500);
	assert_int_equal(p.pids, 100);
	assert_int_equal(p.timeout_ms, 5 * 60 * 1000);
	assert_int_equal(p.max_file_size, 1ULL << 30);
	assert_int_equal(p.max_open_files, 256);
	assert_string_equal(p.profile, "p"); /* the name it was loaded by */
	policy_release(&p);
}

static void values_are_literal_and_sections_may_repeat(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {0};
	struct error err;

	/* No inline comments: " ;x" is part of the path. */
	write_profile(fx, "[box]\nhide = /odd ;name\n[ box ]\nhide = /b\n");
	assert_int_equal(load(&p, &err), 0);
	assert_int_equal(p.hide.n, 2);
	assert_string_equal(p.hide.v[0], "/odd ;name");
	assert_string_equal(p.hide.v[1], "/b");
	policy_release(&p);
}

static void list_keys_accumulate_onto_the_policy(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {0};
	struct error err;

	strlist_add(&p.hide, "/already");
	p.memory = 1;
	p.pids = 7;
	write_profile(fx, "[box]\nhide = /a\nhide = /b\nmemory = 1K\n");
	assert_int_equal(load(&p, &err), 0);
	assert_int_equal(p.hide.n, 3);
	assert_string_equal(p.hide.v[0], "/already");
	assert_string_equal(p.hide.v[2], "/b");
	assert_int_equal(p.memory, 1024); /* set by the profile: replaced */
	assert_int_equal(p.pids, 7);	  /* not in the profile: kept */
	policy_release(&p);
}

static void every_bad_line_is_refused_with_its_file_and_line(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *reason;
	} bad[] = {
	    {"[box]\nhide = /a\n[net]\nx = 1\n", 3, "unknown section [net]"},
	    {"[box]\nhide = /a\n[empty]\n", 3, "unknown section [empty]"},
	    {"[box]\n\nfoo = 1\n", 3, "unknown key 'foo'"},
	    {"[box]\nread_only = /etc\n", 2, "did you mean 'read-only'?"},
	    {"memory = 1G\n[box]\n", 1, "outside a section"},
	    {"[box]\nmemory = 12Q\n", 2, "invalid memory '12Q'"},
	    /* A bare number is refused, as on the command line (one syntax). */
	    {"[box]\nmemory = 300\n", 2, "memory '300' needs a unit: 300K, 300M, 300G"},
	    {"[box]\nmax-file-size = 0K\n", 2, "max-file-size '0K' must be more than zero"},
	    {"[box]\ncpus = lots\n", 2, "cpus: invalid CPU count 'lots'"},
	    {"[box]\npids = 0\n", 2, "pids: invalid number '0'"},
	    {"[box]\ntimeout = 3 days\n", 2, "timeout: invalid duration '3 days'"},
	    {"[box]\nseccomp = paranoid\n", 2, "seccomp: invalid seccomp mode 'paranoid'"},
	    {"[box]\nmax-open-files = -1\n", 2, "max-open-files: invalid number '-1'"},
	    {"[box]\nmemory = 1G\npids = 5\nmemory = 2G\n", 4, "memory is already set on line 2"},
	    {"[box]\nhide = relative/path\n", 2, "not an absolute path"},
	    {"[box]\ndeny-exec = bin/curl\n", 2, "not an absolute path"},
	    {"[box]\nhide =\n", 2, "hide needs a value"},
	    {"[box]\njust words\n", 2, "expected 'key = value' or '[box]'"},
	    {"[box\nhide = /a\n", 1, "expected 'key = value' or '[box]'"},
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy p = {0};
		struct error err;
		char prefix[200];

		write_profile(fx, bad[i].text);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", fx->path, bad[i].line);
		assert_int_equal(load(&p, &err), -1);
		if (!str_has_prefix(err.msg, prefix) || !strstr(err.msg, bad[i].reason))
			fail_msg("profile %zu: expected '%s...%s', got '%s'", i, prefix,
				 bad[i].reason, err.msg);
		assert_null(strchr(err.msg, '\n'));
		/* Refused as a whole: nothing of it reached the policy. */
		assert_int_equal(p.hide.n, 0);
		assert_int_equal(p.memory, 0);
		policy_release(&p);
	}
}

static void long_lines_and_nul_bytes_are_refused_where_they_are(void **state)
{
	struct fixture *fx = *state;
	size_t len = PROFILE_LINE_MAX + 100;
	char *text = xmalloc(len + 64);
	struct policy p = {0};
	struct error err;
	char prefix[200];
	int n;

	/* A long line is one line (inih alone would split it and miscount the rest). */
	n = snprintf(text, 64, "[box]\nhide = /");
	memset(text + n, 'a', len);
	memcpy(text + n + len, "\nmemory = x\n", 13);
	write_profile(fx, text);
	snprintf(prefix, sizeof(prefix), "%s:2: line too long", fx->path);
	assert_int_equal(load(&p, &err), -1);
	assert_true(str_has_prefix(err.msg, prefix));

	/* A path as long as PATH_MAX fits. */
	n = snprintf(text, 64, "[box]\nhide = /");
	memset(text + n, 'a', 4094);
	memcpy(text + n + 4094, "\n", 2);
	write_profile(fx, text);
	assert_int_equal(load(&p, &err), 0);
	assert_int_equal(strlen(p.hide.v[0]), 4095);
	policy_release(&p);

	write_text(fx->path, "[box]\nhide = /a\0b\n", 18);
	snprintf(prefix, sizeof(prefix), "%s:2: the line holds a NUL byte", fx->path);
	assert_int_equal(load(&p, &err), -1);
	assert_string_equal(err.msg, prefix);
	free(text);
}

static void a_profile_that_is_not_a_regular_file_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {0};
	struct error err;

	/* A FIFO would block a reader: it must be refused, not opened for reading. */
	assert_int_equal(mkfifo(fx->path, 0600), 0);
	assert_int_equal(load(&p, &err), -1);
	assert_non_null(strstr(err.msg, "is not a regular file"));
}

static void profiles_are_found_by_name(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {0};
	struct error err;
	char path[256], expected[512];

	/* $XDG_CONFIG_HOME/hutch/profiles/NAME.conf */
	snprintf(path, sizeof(path), "%s/xdg/hutch/profiles", fx->dir);
	assert_int_equal(mkdir_p(path, 0755, &err), 0);
	snprintf(path, sizeof(path), "%s/xdg/hutch/profiles/web.conf", fx->dir);
	write_text(path, "[box]\npids = 3\n", 15);
	snprintf(path, sizeof(path), "%s/xdg", fx->dir);
	setenv("XDG_CONFIG_HOME", path, 1);
	assert_int_equal(profile_load("web", &p, &err), 0);
	assert_int_equal(p.pids, 3);
	assert_string_equal(p.profile, "web");
	policy_release(&p);

	/* Without XDG_CONFIG_HOME: ~/.config/hutch/profiles/NAME.conf */
	unsetenv("XDG_CONFIG_HOME");
	snprintf(path, sizeof(path), "%s/home/.config/hutch/profiles", fx->dir);
	assert_int_equal(mkdir_p(path, 0755, &err), 0);
	snprintf(path, sizeof(path), "%s/home/.config/hutch/profiles/web.conf", fx->dir);
	write_text(path, "[box]\npids = 4\n", 15);
	snprintf(path, sizeof(path), "%s/home", fx->dir);
	setenv("HOME", path, 1);
	assert_int_equal(profile_load("web", &p, &err), 0);
	assert_int_equal(p.pids, 4);
	policy_release(&p);

	/* A bad profile found by name is reported with its path and line. */
	snprintf(path, sizeof(path), "%s/home/.config/hutch/profiles/bad.conf", fx->dir);
	write_text(path, "[box]\npids = many\n", 18);
	assert_int_equal(profile_load("bad", &p, &err), -1);
	snprintf(expected, sizeof(expected), "%s:2: pids: invalid number", path);
	assert_true(str_has_prefix(err.msg, expected));
	assert_null(p.profile);

	/* Missing everywhere: says where it looked. */
	snprintf(expected, sizeof(expected),
		 "no profile named 'hutch-test-nonexistent' (looked in "
		 "%s/home/.config/hutch/profiles/hutch-test-nonexistent.conf and "
		 "/etc/hutch/profiles/hutch-test-nonexistent.conf)",
		 fx->dir);
	assert_int_equal(profile_load("hutch-test-nonexistent", &p, &err), -1);
	assert_string_equal(err.msg, expected);
}

static void profile_names_cannot_leave_the_profile_folders(void **state)
{
	static const struct {
		const char *name, *reason;
	} bad[] = {
	    {"", "empty"},
	    {"../../etc/passwd", "contains '/'"},
	    {"a/b", "contains '/'"},
	    {".hidden", "must not start with '.'"},
	    {"..", "must not start with '.'"},
	    {"tab\tname", "control character"},
	};
	struct policy p = {0};
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(profile_load(bad[i].name, &p, &err), -1);
		if (!strstr(err.msg, bad[i].reason))
			fail_msg("name %zu: expected '%s' in '%s'", i, bad[i].reason, err.msg);
	}
}

/* --- the parsers of policy.c (sizes: test_util.c) --- */

static void durations_take_units(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
	    {"30", 30000},  {"30s", 30000},  {"500ms", 500},
	    {"5m", 300000}, {"1h", 3600000}, {"1ms", 1},
	};
	static const char *const bad[] = {"",
					  "0",
					  "0s",
					  "1d",
					  "1.5s",
					  "5M",
					  "s",
					  "-1s",
					  "10 s",
					  "18446744073709551615h",
					  "18446744073709551616ms"};
	struct error err;
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (parse_duration_ms(good[i].s, &v, &err) != 0)
			fail_msg("'%s' refused: %s", good[i].s, err.msg);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_duration_ms(bad[i], &v, &err) != -1)
			fail_msg("'%s' accepted as %llu ms", bad[i], (unsigned long long)v);
}

static void cpus_are_thousandths(void **state)
{
	static const struct {
		const char *s;
		uint32_t milli;
	} good[] = {
	    {"2", 2000},  {"0.5", 500},	     {"1.25", 1250},
	    {"0.01", 10}, {"4096", 4096000}, {"1.500", 1500},
	};
	static const char *const bad[] = {"",	   "garbage", "0",   "0.0",
					  "0.001", ".5",      "1.",  "1.5x",
					  "-1",	   "4097",    "1,5", "99999999999999999999"};
	struct error err;
	uint32_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (parse_cpus(good[i].s, &v, &err) != 0)
			fail_msg("'%s' refused: %s", good[i].s, err.msg);
		assert_int_equal(v, good[i].milli);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_cpus(bad[i], &v, &err) != -1)
			fail_msg("'%s' accepted as %u", bad[i], v);
}

static void counts_are_positive_whole_numbers(void **state)
{
	static const char *const bad[] = {"", "0", "-1", "1.5", "5x", " 5", "18446744073709551616"};
	struct error err;
	uint64_t v;

	assert_int_equal(parse_count("5", &v, &err), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse_count("18446744073709551615", &v, &err), 0);
	assert_int_equal(v, UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_count(bad[i], &v, &err) != -1)
			fail_msg("'%s' accepted as %llu", bad[i], (unsigned long long)v);
}

static void seccomp_modes_are_named(void **state)
{
	enum seccomp_mode m;
	struct error err;

	assert_int_equal(parse_seccomp("default", &m, &err), 0);
	assert_int_equal(m, FILTER_DEFAULT);
	assert_int_equal(parse_seccomp("strict", &m, &err), 0);
	assert_int_equal(m, FILTER_STRICT);
	assert_int_equal(parse_seccomp("off", &m, &err), 0);
	assert_int_equal(m, FILTER_OFF);
	assert_int_equal(parse_seccomp("Strict", &m, &err), -1);
	assert_int_equal(parse_seccomp("", &m, &err), -1);
	assert_string_equal(err.msg, "invalid seccomp mode '' (default, strict or off)");
}

/* policy_build(): profile, remembered profile, command line and default hides, in that order. */
static char build_dir[64];

static int build_setup(void **state)
{
	static const char dev[] = "[box]\nhide = /srv/a\nmemory = 512M\npids = 100\nseccomp = strict\n";
	static const char other[] = "[box]\nhide = /srv/other\n";
	struct error err;

	snprintf(build_dir, sizeof(build_dir), "/var/tmp/hutch-test-build.XXXXXX");
	if (!mkdtemp(build_dir))
		return -1;
	char *profiles = xasprintf("%s/hutch/profiles", build_dir);
	char *dev_path = xasprintf("%s/dev.conf", profiles);
	char *other_path = xasprintf("%s/other.conf", profiles);
	int r = mkdir_p(profiles, 0700, &err);
	/* "dev": limits and a hide; "other": what a box may remember */
	if (r == 0) {
		write_text(dev_path, dev, strlen(dev));
		write_text(other_path, other, strlen(other));
	}
	setenv("XDG_CONFIG_HOME", build_dir, 1);
	free(profiles);
	free(dev_path);
	free(other_path);
	return r;
}

static int build_teardown(void **state)
{
	struct error err;

	unsetenv("XDG_CONFIG_HOME");
	remove_tree(build_dir, &err);
	return 0;
}

static bool listed(const struct strlist *l, const char *s)
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
	assert_true(listed(&out.hide, "/srv/a") && listed(&out.hide, "/srv/b")); /* lists add up */
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
	assert_true(listed(&out.hide, "/srv/other"));
	policy_release(&out);
	free(name);
	cli.profile = xstrdup("dev");
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_string_equal(name, "dev");
	assert_false(listed(&out.hide, "/srv/other"));
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
	assert_true(listed(&out.hide, "/home/u/.ssh"));
	assert_false(listed(&out.hide, "/home/u/.aws")); /* --direct opens it */
	assert_true(listed(&out.direct, "/home/u/.aws"));
	policy_release(&out);
	cli.no_default_hide = true;
	assert_int_equal(policy_build(&src, &out, &name, &err), 0);
	assert_false(listed(&out.hide, "/home/u/.ssh"));
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
	    cmocka_unit_test_setup_teardown(good_profile_fills_the_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(values_are_literal_and_sections_may_repeat, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(list_keys_accumulate_onto_the_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_bad_line_is_refused_with_its_file_and_line, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(long_lines_and_nul_bytes_are_refused_where_they_are,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_profile_that_is_not_a_regular_file_is_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(profiles_are_found_by_name, setup, teardown),
	    cmocka_unit_test(profile_names_cannot_leave_the_profile_folders),
	    cmocka_unit_test(durations_take_units),
	    cmocka_unit_test(cpus_are_thousandths),
	    cmocka_unit_test(counts_are_positive_whole_numbers),
	    cmocka_unit_test(seccomp_modes_are_named),
	    cmocka_unit_test_setup_teardown(the_command_line_goes_on_top_of_the_profile, build_setup,
					    build_teardown),
	    cmocka_unit_test_setup_teardown(a_remembered_profile_serves_only_when_none_is_named,
					    build_setup, build_teardown),
	    cmocka_unit_test_setup_teardown(secrets_are_hidden_unless_opened_on_purpose,
					    build_setup, build_teardown),
	    cmocka_unit_test_setup_teardown(a_missing_profile_is_an_error, build_setup,
					    build_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
