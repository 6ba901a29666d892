/*
 * The clusters of qcow2 metadata read most: L2 tables and refcount blocks,
 * a few each, least recently used out. A slot's off is 0 when it is empty
 * (cluster 0 is the header, never a table).
 *
 * Refcount blocks are written through: the caller writes the entry it
 * changes to the file at once. An L2 table may be dirty instead: entries
 * pointing at newly written clusters wait in memory until a flush (or the
 * slot's eviction) writes the table, after a barrier that puts those
 * clusters and their refcounts on disk first. That is qcow2.h's rule with
 * one fdatasync a flush instead of one a write; a crash before the flush
 * loses the unflushed writes (as the guest allows) and leaks their clusters.
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

static int write_slot(struct qcow2 *q, struct qcow2_cache *c, unsigned i, struct error *err)
{
	if (!c->slot[i].dirty)
		return 0;
	if (qcow2_barrier(q, err) < 0 ||
	    qcow2_pwrite(q, c->slot[i].data, q->cluster_size, c->slot[i].off, err) < 0)
		return -1;
	c->slot[i].dirty = false;
	return 0;
}

/*
 * The slot caching off (*hit), or the one to reuse for it: an empty one,
 * else the oldest, written out first if dirty. -1 if that write failed.
 */
static int pick(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, bool *hit, struct error *err)
{
	unsigned i, victim = 0;

	if (c->n == 0)
		c->n = slots(q);
	for (i = 0; i < c->n; i++) {
		if (c->slot[i].off == off) {
			*hit = true;
			c->slot[i].used = ++c->tick;
			return (int)i;
		}
		if (c->slot[victim].off != 0 &&
		    (c->slot[i].off == 0 || c->slot[i].used < c->slot[victim].used))
			victim = i;
	}
	*hit = false;
	if (c->slot[victim].off && write_slot(q, c, victim, err) < 0)
		return -1;
	if (!c->slot[victim].data)
		c->slot[victim].data = xmalloc(q->cluster_size);
	c->slot[victim].off = off;
	c->slot[victim].used = ++c->tick;
	return (int)victim;
}

uint8_t *qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct error *err)
{
	bool hit;
	int i = pick(q, c, off, &hit, err);

	if (i < 0)
		return NULL;
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

uint8_t *qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct error *err)
{
	bool hit;
	int i = pick(q, c, off, &hit, err);

	if (i < 0)
		return NULL;
	memset(c->slot[i].data, 0, q->cluster_size);
	return c->slot[i].data;
}

void qcow2_cache_dirty(struct qcow2_cache *c, uint64_t off)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->slot[i].off == off)
			c->slot[i].dirty = true;
}

int qcow2_cache_flush(struct qcow2 *q, struct qcow2_cache *c, struct error *err)
{
	for (unsigned i = 0; i < c->n; i++)
		if (write_slot(q, c, i, err) < 0)
			return -1;
	return 0;
}

void qcow2_cache_release(struct qcow2_cache *c)
{
	for (unsigned i = 0; i < sizeof(c->slot) / sizeof(c->slot[0]); i++) {
		free(c->slot[i].data);
		c->slot[i].data = NULL;
	}
}
