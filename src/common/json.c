#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "common/banned.h"

size_t utf8_sequence_length(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0; /* continuation byte, overlong lead (c0, c1) or past U+10FFFF */
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF (RFC 3629). */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	putc('"', f);
	while (*s) {
		unsigned char c = *s;
		size_t n;

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(f, "\\u%04x", c);
				break;
			}
			n = utf8_sequence_length(s);
			if (n == 0) {
				fprintf(f, "\\u%04x", c);
				break;
			}
			fwrite(s, 1, n, f);
			s += n;
			continue;
		}
		s++;
	}
	putc('"', f);
}

char *json_quote(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return xstrdup("\"\"");
	json_write_string(f, s);
	if (fclose(f) != 0) {
		free(buf);
		return xstrdup("\"\"");
	}
	return buf;
}

/* U+0080..U+009F as UTF-8 (0xC2 0x80..0x9F): C1 controls, which some terminals obey. */
static bool c1_control(const unsigned char *s)
{
	return s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f;
}

/* Is c a byte a shell would read as is in an unquoted word? */
static bool shell_plain(unsigned char c)
{
	return c > 0x20 && !strchr("\"\\'$`;&|<>()*?[]{}#~!", c);
}

static bool term_plain(const unsigned char *p, enum term_quote how)
{
	if (*p < 0x20 || *p == 0x7f || c1_control(p))
		return false;
	switch (how) {
	case TERM_QUOTE_PATH:
		return *p != '"' && *p != '\\';
	case TERM_QUOTE_WORD:
		return shell_plain(*p);
	case TERM_QUOTE_LOOSE:
		break;
	}
	return true;
}

void term_write_string(FILE *f, const char *s, enum term_quote how)
{
	const unsigned char *p;
	bool quote = how != TERM_QUOTE_LOOSE;
	bool plain = how != TERM_QUOTE_WORD || *s != '\0';

	for (p = (const unsigned char *)s; *p && plain; p++)
		plain = term_plain(p, how);
	if (plain) {
		fputs(s, f);
		return;
	}
	if (quote)
		putc('"', f);
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' && quote)
			fputs("\\\"", f);
		else if (*p == '\\' && quote)
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\%03o", *p);
		else if (c1_control(p))
			fprintf(f, "\\u%04x", *++p);
		else
			putc(*p, f);
	}
	if (quote)
		putc('"', f);
}
