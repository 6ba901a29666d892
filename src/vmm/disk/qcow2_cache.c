/*
 * The clusters of qcow2 metadata read most: L2 tables and refcount blocks,
 * a few each, least recently used out. Write-through: qcow2.c and
 * qcow2_refcount.c change an entry here and in the file together, so a
 * slot is dropped without writing anything. A slot's off is 0 when it is
 * empty: cluster 0 is the header, never a table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"
#include "common/util.h"
#include "vmm/disk/qcow2.h"

static unsigned slots(const struct qcow2 *q)
{
	/* 16 tables of 64 KiB map 8 GiB; bound the memory for larger clusters. */
	return q->cluster_size <= (64u << 10) ? 16 : 4;
}

/* The slot caching off (*hit), or the one to reuse for it: an empty one, else the oldest. */
static unsigned pick(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, bool *hit)
{
	unsigned i, victim = 0;

	if (c->n == 0)
		c->n = slots(q);
	for (i = 0; i < c->n; i++) {
		if (c->slot[i].off == off) {
			*hit = true;
			c->slot[i].used = ++c->tick;
			return i;
		}
		if (c->slot[victim].off != 0 &&
		    (c->slot[i].off == 0 || c->slot[i].used < c->slot[victim].used))
			victim = i;
	}
	*hit = false;
	if (!c->slot[victim].data)
		c->slot[victim].data = xmalloc(q->cluster_size);
	c->slot[victim].off = off;
	c->slot[victim].used = ++c->tick;
	return victim;
}

uint8_t *qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct error *err)
{
	bool hit;
	unsigned i = pick(q, c, off, &hit);

	if (hit)
		return c->slot[i].data;
	if (disk_pread_full(q->fd, c->slot[i].data, q->cluster_size, off) < 0) {
		c->slot[i].off = 0;
		error_set(err, errno, "cannot read disk image '%s' at %llu", q->path,
			  (unsigned long long)off);
		return NULL;
	}
	return c->slot[i].data;
}

uint8_t *qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off)
{
	bool hit;
	unsigned i = pick(q, c, off, &hit);

	memset(c->slot[i].data, 0, q->cluster_size);
	return c->slot[i].data;
}

void qcow2_cache_release(struct qcow2_cache *c)
{
	for (unsigned i = 0; i < sizeof(c->slot) / sizeof(c->slot[0]); i++) {
		free(c->slot[i].data);
		c->slot[i].data = NULL;
	}
}
