#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "vmm/cpio.h"
#include "common/banned.h"

void cpio_init(struct cpio *c)
{
	memset(c, 0, sizeof(*c));
	c->next_ino = 1;
}

void cpio_release(struct cpio *c)
{
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static void put(struct cpio *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		while (c->len + n > c->cap)
			c->cap = c->cap ? c->cap * 2 : 1024;
		c->buf = xrealloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void pad4(struct cpio *c)
{
	static const uint8_t zero[4];

	put(c, zero, (4 - c->len % 4) % 4);
}

static void entry(struct cpio *c, const char *name, uint32_t mode, const void *data, size_t len)
{
	char hdr[111];
	size_t namesize = strlen(name) + 1;

	/* 110 bytes: magic and 13 fields of 8 hex digits; snprintf writes one more, the NUL. */
	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 c->next_ino++, mode, 0u, 0u, 1u, 0u, (unsigned)len, 0u, 0u, 0u, 0u,
		 (unsigned)namesize, 0u);
	put(c, hdr, 110);
	put(c, name, namesize);
	pad4(c);
	if (len) {
		put(c, data, len);
		pad4(c);
	}
}

void cpio_add_dir(struct cpio *c, const char *name, mode_t perm)
{
	entry(c, name, S_IFDIR | (perm & 07777), NULL, 0);
}

void cpio_add_file(struct cpio *c, const char *name, mode_t perm, const void *data, size_t len)
{
	entry(c, name, S_IFREG | (perm & 07777), data, len);
}

void cpio_finish(struct cpio *c)
{
	entry(c, "TRAILER!!!", 0, NULL, 0);
}
