/*
 * Escaping of untrusted strings for output: JSON for the --json modes, and
 * quoting for a terminal (paths in diff and commit, words of the event log).
 *
 * JSON: just enough for hutch's --json modes.
 *
 * Strings come from the filesystem, where a name is any bytes but '/' and
 * NUL, so they are escaped: '"', '\\' and control characters as JSON escapes,
 * valid UTF-8 passed through as is, and each byte of an invalid UTF-8
 * sequence written as \u00XX (the byte read as Latin-1). The output is thus
 * always valid JSON; a name that is not UTF-8 prints like the Latin-1 name
 * it would be, which is the one ambiguity.
 */
#ifndef HUTCH_COMMON_JSON_H
#define HUTCH_COMMON_JSON_H

#include <stdio.h>
#include <stddef.h>

/* Write s as a quoted JSON string. */
void json_write_string(FILE *f, const char *s);

/* s as a quoted JSON string, newly allocated. */
char *json_quote(const char *s);

/*
 * For a terminal, as git quotes odd paths: s as is when it is plain, else
 * in double quotes with C escapes (\" \\ \n \t, \ooo for other controls,
 * \u00XX for C1 controls, which some terminals obey), so that it is one
 * unambiguous word on one line.
 */
enum term_quote {
	TERM_QUOTE_PATH,  /* plain: no control, '"' or '\\' */
	TERM_QUOTE_WORD,  /* plain also means no blank and no shell character; "" is quoted */
	TERM_QUOTE_LOOSE, /* never quoted: only controls are escaped (for sentences) */
};
void term_write_string(FILE *f, const char *s, enum term_quote how);

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if s starts an invalid one. */
size_t utf8_sequence_length(const unsigned char *s);

#endif
