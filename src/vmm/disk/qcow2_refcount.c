/*
 * qcow2 refcounts (16-bit) and the allocation of clusters. A cluster is
 * always appended at the end of the file; its refcount is written (and a
 * new refcount block, or a larger refcount table, made for it first) before
 * anything points at it. A new refcount block counts itself when it falls
 * in its own range, or is counted first in the next block; a larger table
 * is written with the refcount blocks that count it in the clusters after
 * it, and only then does the header point at it (docs/interop/qcow2.txt,
 * "Host cluster management").
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/disk/qcow2.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint64_t block_index(const struct qcow2 *q, uint64_t host)
{
	return (host >> q->cluster_bits) / q->rb_entries;
}

static int new_block(struct qcow2 *q, uint64_t bi, struct error *err)
{
	uint64_t blk = q->next_free, be;
	bool self = block_index(q, blk) == bi;
	uint8_t *b;

	q->next_free += q->cluster_size;
	/* Counted elsewhere: that count is on disk before the table points here. */
	if (!self && qcow2_refcount_set(q, blk, 1, err) < 0)
		return -1;
	b = qcow2_cache_new(q, &q->rb_cache, blk, err);
	if (!b)
		return -1;
	if (self)
		put16(b + ((blk >> q->cluster_bits) % q->rb_entries) * 2, 1);
	if (qcow2_pwrite(q, b, q->cluster_size, blk, err) < 0 || qcow2_barrier(q, err) < 0)
		return -1;
	be = htobe64(blk);
	if (qcow2_pwrite(q, &be, 8, q->rt_offset + bi * 8, err) < 0)
		return -1;
	q->rt[bi] = blk;
	return 0;
}

static bool missing(const struct qcow2 *q, uint64_t bi)
{
	return bi >= q->rt_entries || q->rt[bi] == 0;
}

/* Refcount blocks missing for the clusters [start, end). */
static uint64_t count_missing(const struct qcow2 *q, uint64_t start, uint64_t end)
{
	uint64_t n = 0;

	for (uint64_t bi = block_index(q, start); bi <= block_index(q, end - 1); bi++)
		n += missing(q, bi);
	return n;
}

/*
 * A refcount table of more clusters, with an entry for block need_bi,
 * appended: [table][the refcount blocks its own clusters need].
 */
static int grow_table(struct qcow2 *q, uint64_t need_bi, struct error *err)
{
	const uint64_t cs = q->cluster_size;
	uint64_t start = q->next_free, end, nb, tclusters, entries, k = 0, old_off, old_clusters;
	_cleanup_free_ uint64_t *t = NULL;
	_cleanup_free_ uint8_t *blk = NULL;
	uint8_t hdr[12];
	uint64_t be_off;
	uint32_t be_clusters;

	tclusters = q->rt_clusters * 2ull;
	if (tclusters < qcow2_round_up((need_bi + 1) * 8, cs) / cs)
		tclusters = qcow2_round_up((need_bi + 1) * 8, cs) / cs;
	for (;;) {
		uint64_t need;

		/* A file grown this far (or a table pointing this far) is refused, not followed. */
		if (tclusters * cs > QCOW2_MAX_REFTABLE_BYTES)
			return error_set(
			    err, EFBIG, "disk image '%s': the refcount table cannot grow", q->path);
		nb = 0;
		for (;;) {
			uint64_t m;

			end = start + (tclusters + nb) * cs;
			m = count_missing(q, start, end);
			if (m == nb)
				break;
			nb = m;
		}
		need = block_index(q, end - 1) + 1;
		if (need <= tclusters * cs / 8)
			break;
		tclusters = qcow2_round_up(need * 8, cs) / cs;
	}
	entries = tclusters * cs / 8;
	t = xcalloc(entries, 8);
	memcpy(t, q->rt, q->rt_entries * 8);
	blk = xmalloc(cs);
	for (uint64_t bi = block_index(q, start); bi <= block_index(q, end - 1); bi++) {
		uint64_t first = bi * q->rb_entries, c;

		if (!missing(q, bi)) {
			for (c = start >> q->cluster_bits; c < end >> q->cluster_bits; c++)
				if (c / q->rb_entries == bi &&
				    qcow2_refcount_set(q, c << q->cluster_bits, 1, err) < 0)
					return -1;
			continue;
		}
		memset(blk, 0, cs);
		for (c = start >> q->cluster_bits; c < end >> q->cluster_bits; c++)
			if (c / q->rb_entries == bi)
				put16(blk + (c - first) * 2, 1);
		t[bi] = start + (tclusters + k++) * cs;
		if (qcow2_pwrite(q, blk, cs, t[bi], err) < 0)
			return -1;
	}
	for (uint64_t i = 0; i < entries; i++)
		t[i] = htobe64(t[i]);
	if (qcow2_pwrite(q, t, entries * 8, start, err) < 0 || qcow2_barrier(q, err) < 0)
		return -1;
	for (uint64_t i = 0; i < entries; i++)
		t[i] = be64toh(t[i]);
	/* Offset and size together: 12 bytes in one sector, written at once. */
	be_off = htobe64(start);
	be_clusters = htobe32((uint32_t)tclusters);
	memcpy(hdr, &be_off, 8);
	memcpy(hdr + 8, &be_clusters, 4);
	if (qcow2_pwrite(q, hdr, sizeof(hdr), 48, err) < 0 || qcow2_barrier(q, err) < 0)
		return -1;
	old_off = q->rt_offset;
	old_clusters = q->rt_clusters;
	free(q->rt);
	q->rt = steal_ptr(t);
	q->rt_entries = entries;
	q->rt_offset = start;
	q->rt_clusters = (uint32_t)tclusters;
	q->next_free = end;
	/* The old table is free now: a crash before this leaks it, no more. */
	for (uint64_t i = 0; i < old_clusters; i++)
		if (qcow2_refcount_set(q, old_off + i * cs, 0, err) < 0)
			return -1;
	return 0;
}

int qcow2_refcount_set(struct qcow2 *q, uint64_t host, uint16_t value, struct error *err)
{
	uint64_t bi = block_index(q, host), idx = (host >> q->cluster_bits) % q->rb_entries;
	uint8_t *b;

	for (;;) {
		if (bi >= q->rt_entries) {
			if (grow_table(q, bi, err) < 0)
				return -1;
		} else if (q->rt[bi] == 0) {
			if (new_block(q, bi, err) < 0)
				return -1;
		} else {
			break;
		}
	}
	b = qcow2_cache_get(q, &q->rb_cache, q->rt[bi], err);
	if (!b)
		return -1;
	put16(b + idx * 2, value);
	return qcow2_pwrite(q, b + idx * 2, 2, q->rt[bi] + idx * 2, err);
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host, struct error *err)
{
	*host = q->next_free;
	q->next_free += q->cluster_size;
	return qcow2_refcount_set(q, *host, 1, err);
}

int qcow2_refcount_end(struct qcow2 *q, uint64_t *end, struct error *err)
{
	*end = 0;
	for (uint64_t bi = 0; bi < q->rt_entries; bi++) {
		uint64_t i;

		if (!q->rt[bi])
			continue;
		if (q->rt[bi] + q->cluster_size > *end)
			*end = q->rt[bi] + q->cluster_size;
		if (disk_pread_full(q->fd, q->buf, q->cluster_size, q->rt[bi]) < 0)
			return error_set(err, errno,
					 "disk image '%s': cannot read a refcount block", q->path);
		for (i = q->rb_entries; i > 0; i--)
			if (q->buf[2 * i - 2] | q->buf[2 * i - 1])
				break;
		if (i > 0 && ((bi * q->rb_entries + i) << q->cluster_bits) > *end)
			*end = (bi * q->rb_entries + i) << q->cluster_bits;
	}
	return 0;
}
