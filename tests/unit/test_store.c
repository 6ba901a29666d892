/* Box names and layer names: what reaches the filesystem must be safe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "box/store.h"

static void good_names_pass(void **state)
{
	static const char *const good[] = {"default", "A", "my.box", "ci-42", "a_b+c@d",
					   "0123456789012345678901234567890123456789"
					   "012345678901234567890123"};
	struct error err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(box_name_check(good[i], &err), 0);
}

static void bad_names_fail_with_a_reason(void **state)
{
	static const struct {
		const char *name, *reason;
	} bad[] = {
		{"", "empty"},
		{".", "'.' and '..'"},
		{"..", "'.' and '..'"},
		{"a/b", "contains '/'"},
		{"../etc", "contains '/'"},
		{".hidden", "must not start with '.'"},
		{"-rf", "must not start with '-'"},
		{"tab\there", "control character"},
		{"new\nline", "control character"},
		{"sp ace", "not allowed"},
		{"01234567890123456789012345678901234567890123456789012345678901234", "longer than"},
	};
	struct error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(box_name_check(bad[i].name, &err), -1);
		assert_non_null(strstr(err.msg, bad[i].reason));
		assert_null(strchr(err.msg, '\n'));
	}
}

static void layer_names_round_trip(void **state)
{
	static const char *const paths[] = {"/usr", "/mnt/a/b", "/odd%name/x", "/a%2Fb"};
	static const char *const names[] = {"usr", "mnt%2Fa%2Fb", "odd%25name%2Fx", "a%252Fb"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *name = layer_name_from_path(paths[i]);
		char *back = layer_path_from_name(name);
		assert_string_equal(name, names[i]);
		assert_string_equal(back, paths[i]);
		free(name);
		free(back);
	}
}

static void malformed_layer_names_are_refused(void **state)
{
	static const char *const bad[] = {"", ".", "..", "a/b", "a%2", "a%41", "%"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(layer_path_from_name(bad[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_names_pass),
		cmocka_unit_test(bad_names_fail_with_a_reason),
		cmocka_unit_test(layer_names_round_trip),
		cmocka_unit_test(malformed_layer_names_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
