/*
 * The small utilities of common/util.h. Sizes: one syntax for run's
 * --memory and --max-file-size, vm's --memory and the profile keys, so
 * each accepted and refused form is pinned here once. And escaping for
 * output (common/json.h): what reaches a terminal or a JSON reader from a
 * file name or an event is one unambiguous word or string, whatever bytes
 * it holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/json.h"
#include "common/util.h"

static void sizes_take_binary_units(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
	    {"1B", 1},
	    {"300b", 300},
	    {"1K", 1024},
	    {"1k", 1024},
	    {"1KB", 1024},
	    {"1KiB", 1024},
	    {"1kib", 1024},
	    {"300M", 300ULL << 20},
	    {"512MiB", 512ULL << 20},
	    {"2G", 2ULL << 30},
	    {"2gb", 2ULL << 30},
	    {"3T", 3ULL << 40},
	    {"3TiB", 3ULL << 40},
	    {"007M", 7ULL << 20},
	    {"16777215T", 16777215ULL << 40},
	    {"18446744073709551615B", UINT64_MAX},
	};

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct error err = {0};
		uint64_t v = 0;
		if (parse_size("--memory", good[i].s, &v, &err) != 0)
			fail_msg("'%s' refused: %s", good[i].s, err.msg);
		if (v != good[i].v)
			fail_msg("'%s' read as %llu, not %llu", good[i].s, (unsigned long long)v,
				 (unsigned long long)good[i].v);
	}
}

static void sizes_are_refused_with_a_reason(void **state)
{
	static const struct {
		const char *s, *msg;
	} bad[] = {
	    /* A bare number: once bytes for run and MiB for vm; now neither. */
	    {"300", "--memory '300' needs a unit: 300K, 300M, 300G"},
	    {"0", "--memory '0' must be more than zero"}, /* not "use 0K" */
	    {"18446744073709551615", "needs a unit"},
	    {"0K", "--memory '0K' must be more than zero"},
	    {"0B", "must be more than zero"},
	    {"16777216T", "--memory '16777216T' is too large"}, /* 2^64 bytes */
	    {"18446744073709551616B", "is too large"},
	    {"99999999999999999999999K", "is too large"},
	    {"", "invalid --memory '': use a whole number and a unit, e.g. 512K, 300M, 2G"},
	    {"-1G", "invalid --memory '-1G'"},
	    {"+1G", "invalid --memory"},
	    {" 1G", "invalid --memory"},
	    {"1G ", "invalid --memory"},
	    {"1 G", "invalid --memory"},
	    {"1.5G", "invalid --memory '1.5G'"},
	    {"0x10M", "invalid --memory"},
	    {"1X", "invalid --memory"},
	    {"1P", "invalid --memory"},
	    {"1KBB", "invalid --memory"},
	    {"1Ki", "invalid --memory"},
	    {"1BiB", "invalid --memory"},
	    {"1BB", "invalid --memory"},
	    {"M", "invalid --memory 'M'"},
	    {"lots", "invalid --memory 'lots'"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct error err = {0};
		uint64_t v = 42;
		if (parse_size("--memory", bad[i].s, &v, &err) != -1)
			fail_msg("'%s' accepted as %llu", bad[i].s, (unsigned long long)v);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("'%s': expected '%s' in '%s'", bad[i].s, bad[i].msg, err.msg);
		/* A refused value leaves the setting as it was. */
		assert_int_equal(v, 42);
	}
}

static void a_size_message_names_its_setting(void **state)
{
	struct error err = {0};
	uint64_t v;

	assert_int_equal(parse_size("max-file-size", "10", &v, &err), -1);
	assert_string_equal(err.msg, "max-file-size '10' needs a unit: 10K, 10M, 10G");
	assert_int_equal(parse_size("--memory", NULL, &v, &err), -1);
	assert_non_null(strstr(err.msg, "invalid --memory ''"));
}

static void terminal_quoting_makes_one_word_of_any_bytes(void **state)
{
	static const struct {
		const char *in;
		enum term_quote how;
		const char *out;
	} cases[] = {
		/* paths: quoted only when odd */
		{"a/b c.txt", TERM_QUOTE_PATH, "a/b c.txt"},
		{"caf\xc3\xa9", TERM_QUOTE_PATH, "caf\xc3\xa9"},
		{"a\"b", TERM_QUOTE_PATH, "\"a\\\"b\""},
		{"a\\b", TERM_QUOTE_PATH, "\"a\\\\b\""},
		{"two\nlines\tand\x1b[2J", TERM_QUOTE_PATH, "\"two\\nlines\\tand\\033[2J\""},
		{"del\x7f", TERM_QUOTE_PATH, "\"del\\177\""},
		{"c1\xc2\x9b", TERM_QUOTE_PATH, "\"c1\\u009b\""}, /* U+009B: a CSI to some terminals */
		/* words: blanks and shell characters quote too */
		{"/usr/bin/make", TERM_QUOTE_WORD, "/usr/bin/make"},
		{"", TERM_QUOTE_WORD, "\"\""},
		{"a b", TERM_QUOTE_WORD, "\"a b\""},
		{"$(id)", TERM_QUOTE_WORD, "\"$(id)\""},
		{"x;y", TERM_QUOTE_WORD, "\"x;y\""},
		{"it's", TERM_QUOTE_WORD, "\"it's\""},
		/* sentences: only controls are escaped */
		{"no such file", TERM_QUOTE_LOOSE, "no such file"},
		{"a \"b\"\n", TERM_QUOTE_LOOSE, "a \"b\"\\n"},
		{"bell\a", TERM_QUOTE_LOOSE, "bell\\007"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		assert_non_null(f);
		term_write_string(f, cases[i].in, cases[i].how);
		assert_int_equal(fclose(f), 0);
		assert_string_equal(buf, cases[i].out);
		free(buf);
	}
}

static void json_strings_are_always_valid(void **state)
{
	char *q = json_quote("a\"\\\n\x01\xff\xc3\xa9");

	assert_string_equal(q, "\"a\\\"\\\\\\n\\u0001\\u00ff\xc3\xa9\"");
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sizes_take_binary_units),
	    cmocka_unit_test(sizes_are_refused_with_a_reason),
	    cmocka_unit_test(a_size_message_names_its_setting),
	    cmocka_unit_test(terminal_quoting_makes_one_word_of_any_bytes),
	    cmocka_unit_test(json_strings_are_always_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
