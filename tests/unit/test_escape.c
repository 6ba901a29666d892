/*
 * Escaping for output (common/json.h): what reaches a terminal or a JSON
 * reader from a file name or an event is one unambiguous word or string,
 * whatever bytes it holds.
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

static char *term(const char *s, enum term_quote how)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	term_write_string(f, s, how);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void expect_term(const char *s, enum term_quote how, const char *want)
{
	char *got = term(s, how);

	assert_string_equal(got, want);
	free(got);
}

static void paths_are_quoted_only_when_odd(void **state)
{
	expect_term("a/b c.txt", TERM_QUOTE_PATH, "a/b c.txt");
	expect_term("caf\xc3\xa9", TERM_QUOTE_PATH, "caf\xc3\xa9");
	expect_term("a\"b", TERM_QUOTE_PATH, "\"a\\\"b\"");
	expect_term("a\\b", TERM_QUOTE_PATH, "\"a\\\\b\"");
	expect_term("two\nlines\tand\x1b[2J", TERM_QUOTE_PATH, "\"two\\nlines\\tand\\033[2J\"");
	expect_term("del\x7f", TERM_QUOTE_PATH, "\"del\\177\"");
	/* U+009B is a CSI to some terminals */
	expect_term("c1\xc2\x9b", TERM_QUOTE_PATH, "\"c1\\u009b\"");
}

static void words_quote_blanks_and_shell_characters(void **state)
{
	expect_term("/usr/bin/make", TERM_QUOTE_WORD, "/usr/bin/make");
	expect_term("", TERM_QUOTE_WORD, "\"\"");
	expect_term("a b", TERM_QUOTE_WORD, "\"a b\"");
	expect_term("$(id)", TERM_QUOTE_WORD, "\"$(id)\"");
	expect_term("x;y", TERM_QUOTE_WORD, "\"x;y\"");
	expect_term("it's", TERM_QUOTE_WORD, "\"it's\"");
}

static void sentences_escape_only_controls(void **state)
{
	expect_term("no such file", TERM_QUOTE_LOOSE, "no such file");
	expect_term("a \"b\"\n", TERM_QUOTE_LOOSE, "a \"b\"\\n");
	expect_term("bell\a", TERM_QUOTE_LOOSE, "bell\\007");
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
	    cmocka_unit_test(paths_are_quoted_only_when_odd),
	    cmocka_unit_test(words_quote_blanks_and_shell_characters),
	    cmocka_unit_test(sentences_escape_only_controls),
	    cmocka_unit_test(json_strings_are_always_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
