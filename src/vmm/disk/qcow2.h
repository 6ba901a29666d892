/*
 * qcow2 inside src/vmm/disk: the open image's state and what its files
 * share. qcow2_header.c reads and checks the header and its extensions and
 * writes new images, qcow2_check.c checks the layout at open,
 * qcow2_refcount.c counts and allocates clusters,
 * qcow2_cache.c keeps recently used L2 tables and refcount blocks,
 * qcow2.c maps guest offsets to clusters and serves the disk_ops.
 *
 * The format is QEMU's docs/interop/qcow2.txt (version 3, version 2 too):
 * all fields big-endian; a guest offset goes through the L1 table to an L2
 * table to a data cluster; every cluster in use has a refcount, kept in
 * refcount blocks listed in the refcount table.
 *
 * Crash safety rests on one ordering: whatever an entry points at (a data
 * cluster, an L2 table, a refcount block, the clusters' refcounts) is on
 * disk before the entry is written. qcow2_barrier() is that fdatasync
 * (L2 entries for new clusters wait for the next flush, qcow2_cache.c); a
 * crash in between leaves at most clusters counted but unused (leaks,
 * which `qemu-img check` reports and tolerates), never a cluster in use
 * without its count. New clusters are always appended at the end of the
 * file, so nothing in use is ever written over.
 *
 * Not thread-safe: one caller at a time.
 */
#ifndef HUTCH_VMM_DISK_QCOW2_H
#define HUTCH_VMM_DISK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/disk/disk.h"
#include "vmm/disk/internal.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH 104
#define QCOW2_MIN_CLUSTER_BITS 9  /* 512 B */
#define QCOW2_MAX_CLUSTER_BITS 21 /* 2 MiB */
#define QCOW2_DEFAULT_CLUSTER_BITS 16
#define QCOW2_REFCOUNT_ORDER 4 /* 16-bit refcounts, the only width supported */
#define QCOW2_MAX_BACKING_NAME 1023
/* QEMU's own bounds on the tables kept in memory (block/qcow2.h). */
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)

/* Incompatible feature bits (header offset 72). */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)

/* Header extension types. */
#define QCOW2_EXT_END 0u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* L1 and L2 entries. */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_COPIED (1ull << 63)
#define QCOW2_COMPRESSED (1ull << 62)
#define QCOW2_ZERO (1ull << 0) /* L2 only, version 3 */
#define QCOW2_L1_RESERVED 0x7f000000000001ffull

struct qcow2_cache {
	unsigned n;
	uint64_t tick;
	struct {
		uint64_t off; /* host offset of the cluster, 0: empty slot */
		uint64_t used;
		bool dirty; /* changed here, not yet in the file */
		uint8_t *data;
	} slot[16];
};

/*
 * Bytes of one request that are contiguous in the image file (or, for a
 * read, in the backing file), moved by one preadv or pwritev (qcow2.c).
 */
#define QCOW2_RUN_SEGS 256
struct qcow2_run {
	bool backing;  /* at is a guest offset in the backing file, not a host one */
	uint64_t at;   /* where the run starts */
	size_t len;    /* bytes in v */
	unsigned n;
	struct iovec v[QCOW2_RUN_SEGS];
};

/* An L2 entry to set once the data it points at is written (qcow2.c). */
#define QCOW2_PENDING 64
struct qcow2_l2_update {
	uint64_t l2off, goff, host;
};

struct qcow2 {
	struct disk d;
	int fd;
	char *path;
	struct disk *backing;

	uint32_t version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	uint64_t l2_entries; /* cluster_size / 8 */
	uint64_t rb_entries; /* refcounts a refcount block holds */
	uint64_t header_length;
	uint64_t incompat, compat, autoclear;
	uint32_t nb_snapshots;

	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *l1; /* host byte order */

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_entries;
	uint64_t *rt; /* host byte order */

	char backing_name[QCOW2_MAX_BACKING_NAME + 1];
	enum disk_format backing_format; /* AUTO when the header names none */

	uint64_t next_free; /* where the next cluster is appended */
	bool unsynced;	    /* written since the last fdatasync */

	struct qcow2_cache l2_cache, rb_cache;
	uint8_t *buf; /* one cluster of scratch */

	/* The request being served. */
	struct qcow2_run run;
	struct qcow2_l2_update pending[QCOW2_PENDING];
	unsigned npending;
};

/* qcow2_header.c: read fd's header, tables and extensions into q. */
int qcow2_read_header(struct qcow2 *q, struct error *err);

/*
 * qcow2_check.c: refuse an image whose tables lie past file_end (its size
 * in whole clusters) or on each other, or whose data clusters lie on them
 * or are compressed; *end is past every cluster in use.
 */
int qcow2_check_layout(struct qcow2 *q, uint64_t file_end, uint64_t *end, struct error *err);

/*
 * qcow2_cache.c: the cluster at host offset off, read in unless cached
 * (evicting another slot may write it: NULL and err if that fails).
 */
uint8_t *qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct error *err);
/* Cache a cluster just made (all zeros) at off without reading it. */
uint8_t *qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct error *err);
/* The cached cluster at off was changed in memory only: write it before it is dropped. */
void qcow2_cache_dirty(struct qcow2_cache *c, uint64_t off);
/* A barrier, then every dirty cluster written. */
int qcow2_cache_flush(struct qcow2 *q, struct qcow2_cache *c, struct error *err);
void qcow2_cache_release(struct qcow2_cache *c);

/* qcow2_refcount.c */
int qcow2_refcount_set(struct qcow2 *q, uint64_t host, uint16_t value, struct error *err);
/* Append one cluster to the file, its refcount 1 on disk; *host its offset. */
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host, struct error *err);
/* The end of the last cluster with a non-zero refcount (0 if none). */
int qcow2_refcount_end(struct qcow2 *q, uint64_t *end, struct error *err);

/* qcow2.c: write at host offset off, remembering a barrier is due. */
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off, struct error *err);
/* fdatasync if anything was written since the last one. */
int qcow2_barrier(struct qcow2 *q, struct error *err);

static inline uint64_t qcow2_round_up(uint64_t x, uint64_t align)
{
	return (x + align - 1) & ~(align - 1);
}

#endif
