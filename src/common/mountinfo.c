#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/mountinfo.h"
#include "common/util.h"
#include "common/banned.h"

void octal_unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

int mount_table_parse(struct mount_table *mt, const char *text, struct error *err)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *line, *next;
	size_t lineno = 0;

	mt->v = NULL;
	mt->n = 0;
	for (line = copy; line && *line; line = next) {
		char *fields[16], *sep, *save = NULL;
		size_t nf = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		/* 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw */
		for (char *tok = strtok_r(line, " ", &save); tok && nf < ARRAY_SIZE(fields);
		     tok = strtok_r(NULL, " ", &save))
			fields[nf++] = tok;
		sep = NULL;
		for (size_t i = 6; i < nf; i++) {
			if (!strcmp(fields[i], "-")) {
				sep = fields[i];
				if (i + 1 >= nf)
					sep = NULL;
				else
					fields[0] = fields[i + 1];
				break;
			}
		}
		if (nf < 7 || !sep) {
			mount_table_release(mt);
			return error_set(err, 0, "cannot parse mountinfo line %zu", lineno);
		}
		mt->v = xrealloc(mt->v, (mt->n + 1) * sizeof(*mt->v));
		octal_unescape(fields[3]);
		octal_unescape(fields[4]);
		mt->v[mt->n].root = xstrdup(fields[3]);
		mt->v[mt->n].path = xstrdup(fields[4]);
		mt->v[mt->n].fstype = xstrdup(fields[0]);
		mt->n++;
	}
	return 0;
}

int mount_table_read(struct mount_table *mt, struct error *err)
{
	_cleanup_free_ char *text = read_file("/proc/self/mountinfo", 64 << 20, err);

	if (!text)
		return -1;
	return mount_table_parse(mt, text, err);
}

void mount_table_release(struct mount_table *mt)
{
	for (size_t i = 0; i < mt->n; i++) {
		free(mt->v[i].root);
		free(mt->v[i].path);
		free(mt->v[i].fstype);
	}
	free(mt->v);
	mt->v = NULL;
	mt->n = 0;
}

const struct mount_entry *mount_table_find(const struct mount_table *mt, const char *path)
{
	for (size_t i = mt->n; i-- > 0;)
		if (!strcmp(mt->v[i].path, path))
			return &mt->v[i];
	return NULL;
}

bool mount_table_has_below(const struct mount_table *mt, const char *path)
{
	for (size_t i = 0; i < mt->n; i++)
		if (strcmp(mt->v[i].path, path) && path_is_within(mt->v[i].path, path))
			return true;
	return false;
}
