/*
 * The layout of a qcow2 image checked once at open, the way `qemu-img
 * check` would find it corrupt: every table inside the file, no two
 * metadata clusters (header, L1 table, refcount table and blocks, L2
 * tables) the same, no data cluster on one of them. A writer trusting such
 * an image would write a guest's data over its own tables. Compressed
 * clusters are refused here too, rather than at the guest's first read.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/disk/qcow2.h"

struct clusters {
	uint64_t *c;
	size_t n, cap;
};

static void add(struct clusters *s, uint64_t cluster)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->c = xrealloc(s->c, s->cap * sizeof(*s->c));
	}
	s->c[s->n++] = cluster;
}

static void add_range(struct clusters *s, const struct qcow2 *q, uint64_t off, uint64_t len)
{
	for (uint64_t c = off >> q->cluster_bits; len && c <= (off + len - 1) >> q->cluster_bits;
	     c++)
		add(s, c);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int corrupt(const struct qcow2 *q, const char *what, struct error *err)
{
	return error_set(err, 0, "disk image '%s' is corrupt: %s", q->path, what);
}

/* The tables the header points at, and the refcount blocks, lie inside the file. */
static int tables_in_file(const struct qcow2 *q, uint64_t file_end, struct error *err)
{
	if (q->l1_offset + q->l1_size * 8ull > file_end)
		return corrupt(q, "the L1 table lies past the end of the file", err);
	if (q->rt_offset + (uint64_t)q->rt_clusters * q->cluster_size > file_end)
		return corrupt(q, "the refcount table lies past the end of the file", err);
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if (q->rt[i] && q->rt[i] + q->cluster_size > file_end)
			return corrupt(q, "a refcount block lies past the end of the file", err);
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK;

		if (l2off & (q->cluster_size - 1))
			return corrupt(q, "an L1 entry is not cluster-aligned", err);
		if (l2off && l2off + q->cluster_size > file_end)
			return corrupt(q, "an L2 table lies past the end of the file", err);
	}
	return 0;
}

/* Each data cluster an L2 table maps: not compressed, aligned, not on metadata. */
static int check_l2(struct qcow2 *q, const struct clusters *meta, uint64_t l2off, uint64_t *end,
		    struct error *err)
{
	uint64_t e, host, c;

	if (disk_pread_full(q->fd, q->buf, q->cluster_size, l2off) < 0)
		return error_set(err, errno, "cannot read disk image '%s'", q->path);
	for (uint64_t j = 0; j < q->l2_entries; j++) {
		memcpy(&e, q->buf + j * 8, 8);
		e = be64toh(e);
		if (e & QCOW2_COMPRESSED)
			return error_set(err, 0,
					 "disk image '%s': compressed clusters are not supported",
					 q->path);
		host = e & QCOW2_OFFSET_MASK;
		if (!host)
			continue;
		if (host & (q->cluster_size - 1))
			return corrupt(q, "an L2 entry is not cluster-aligned", err);
		c = host >> q->cluster_bits;
		if (bsearch(&c, meta->c, meta->n, sizeof(*meta->c), cmp))
			return corrupt(q, "a data cluster lies on the image's metadata", err);
		if (host + q->cluster_size > *end)
			*end = host + q->cluster_size;
	}
	return 0;
}

int qcow2_check_layout(struct qcow2 *q, uint64_t file_end, uint64_t *end, struct error *err)
{
	struct clusters meta = {0};
	_cleanup_free_ uint64_t *freed = NULL;

	if (tables_in_file(q, file_end, err) < 0)
		return -1;
	add(&meta, 0);
	add_range(&meta, q, q->l1_offset, q->l1_size * 8ull);
	add_range(&meta, q, q->rt_offset, (uint64_t)q->rt_clusters * q->cluster_size);
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if (q->rt[i])
			add(&meta, q->rt[i] >> q->cluster_bits);
	for (uint32_t i = 0; i < q->l1_size; i++)
		if (q->l1[i] & QCOW2_OFFSET_MASK)
			add(&meta, (q->l1[i] & QCOW2_OFFSET_MASK) >> q->cluster_bits);
	freed = meta.c;
	qsort(meta.c, meta.n, sizeof(*meta.c), cmp);
	for (size_t i = 1; i < meta.n; i++) {
		if (meta.c[i] == meta.c[i - 1])
			return corrupt(q, "two of its tables share a cluster", err);
	}
	*end = meta.n ? (meta.c[meta.n - 1] + 1) << q->cluster_bits : 0;
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK;

		if (l2off && check_l2(q, &meta, l2off, end, err) < 0)
			return -1;
	}
	return 0;
}
