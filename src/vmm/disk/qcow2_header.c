/*
 * qcow2 headers: reading one (every field checked before it is used, the
 * image is untrusted) and writing a new overlay. Refused with one line:
 * what this implementation does not do (encryption, compression types,
 * external data files, extended L2 entries, refcounts other than 16 bits,
 * unknown incompatible features, named from the image's feature-name table
 * when it has one) and images left dirty or marked corrupt by QEMU.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/disk/qcow2.h"

static uint32_t be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static int __attribute__((format(printf, 3, 4)))
bad(struct qcow2 *q, struct error *err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set(err, 0, "disk image '%s': %s", q->path, msg);
}

/* A feature's name from the image's feature-name table, or "bit N". */
static void feature_name(const uint8_t *names, size_t len, unsigned type, unsigned bit, char *out,
			 size_t outlen)
{
	for (size_t i = 0; names && i + 48 <= len; i += 48) {
		if (names[i] == type && names[i + 1] == bit) {
			snprintf(out, outlen, "'%.46s'", (const char *)names + i + 2);
			return;
		}
	}
	snprintf(out, outlen, "bit %u", bit);
}

static int check_incompat(struct qcow2 *q, const uint8_t *names, size_t names_len,
			  struct error *err)
{
	uint64_t f = q->incompat;
	char name[64];

	if (f & QCOW2_INCOMPAT_CORRUPT)
		return bad(q, err, "marked corrupt by QEMU (try qemu-img check -r all)");
	if (f & QCOW2_INCOMPAT_DIRTY)
		return bad(
		    q, err,
		    "dirty: left open by a program that stopped (try qemu-img check -r all)");
	if (f & QCOW2_INCOMPAT_DATA_FILE)
		return bad(q, err, "external data files are not supported");
	if (f & QCOW2_INCOMPAT_COMPRESSION)
		return bad(q, err, "compression types other than zlib are not supported");
	if (f & QCOW2_INCOMPAT_EXTL2)
		return bad(q, err, "extended L2 entries (subclusters) are not supported");
	for (unsigned bit = 0; bit < 64; bit++) {
		if (f & (1ull << bit)) {
			feature_name(names, names_len, 0, bit, name, sizeof(name));
			return bad(q, err, "unknown incompatible feature %s", name);
		}
	}
	return 0;
}

/* The extensions between the header and end (the backing name or the cluster's end). */
static int read_extensions(struct qcow2 *q, const uint8_t *h, uint64_t start, uint64_t end,
			   struct error *err)
{
	const uint8_t *names = NULL;
	size_t names_len = 0;
	uint64_t off = start;

	while (off + 8 <= end) {
		uint32_t type = be32(h + off), len = be32(h + off + 4);
		const uint8_t *data = h + off + 8;

		if (type == QCOW2_EXT_END)
			break;
		if (len > end - off - 8)
			return bad(q, err, "header extension 0x%08x runs past the header", type);
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (len == 3 && memcmp(data, "raw", 3) == 0)
				q->backing_format = DISK_FORMAT_RAW;
			else if (len == 5 && memcmp(data, "qcow2", 5) == 0)
				q->backing_format = DISK_FORMAT_QCOW2;
			else
				return bad(q, err, "backing file format '%.*s' is not supported",
					   (int)(len < 32 ? len : 32), (const char *)data);
			break;
		case QCOW2_EXT_FEATURE_NAMES:
			names = data;
			names_len = len;
			break;
		case QCOW2_EXT_CRYPTO:
			return bad(q, err, "encrypted images are not supported");
		default: /* bitmaps and what is newer than us: not needed to read or write */
			break;
		}
		off += 8 + qcow2_round_up(len, 8);
	}
	return check_incompat(q, names, names_len, err);
}

static int read_table(struct qcow2 *q, uint64_t off, uint64_t entries, uint64_t **out,
		      const char *what, struct error *err)
{
	uint64_t *t = xcalloc(entries ? entries : 1, 8);

	if (disk_pread_full(q->fd, t, entries * 8, off) < 0) {
		free(t);
		return error_set(err, errno, "disk image '%s': cannot read the %s", q->path, what);
	}
	for (uint64_t i = 0; i < entries; i++)
		t[i] = be64toh(t[i]);
	*out = t;
	return 0;
}

int qcow2_read_header(struct qcow2 *q, struct error *err)
{
	uint8_t h[QCOW2_V3_HEADER_LENGTH];
	uint64_t size, l1_need, ext_end, backing_off;
	uint32_t backing_len, refcount_order;
	struct stat st;

	if (fstat(q->fd, &st) < 0)
		return error_set(err, errno, "cannot stat disk image '%s'", q->path);
	if (disk_pread_full(q->fd, h, sizeof(h), 0) < 0)
		return error_set(err, errno, "cannot read disk image '%s'", q->path);
	if (be32(h) != QCOW2_MAGIC)
		return bad(q, err, "not a qcow2 image (no QFI\\xfb magic)");
	q->version = be32(h + 4);
	if (q->version != 2 && q->version != 3)
		return bad(q, err, "qcow2 version %u is not supported", q->version);
	q->header_length = q->version == 2 ? QCOW2_V2_HEADER_LENGTH : be32(h + 100);
	if ((uint64_t)st.st_size <
		(q->version == 3 ? QCOW2_V3_HEADER_LENGTH : QCOW2_V2_HEADER_LENGTH) ||
	    (uint64_t)st.st_size < q->header_length)
		return bad(q, err, "truncated: the file is shorter than its header");
	backing_off = be64(h + 8);
	backing_len = be32(h + 16);
	q->cluster_bits = be32(h + 20);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return bad(q, err, "cluster size 2^%u is not between 512 bytes and 2 MiB",
			   q->cluster_bits);
	q->cluster_size = 1ull << q->cluster_bits;
	q->l2_entries = q->cluster_size / 8;
	q->rb_entries = q->cluster_size * 8 / (1u << QCOW2_REFCOUNT_ORDER);
	size = be64(h + 24);
	if (be32(h + 32) != 0)
		return bad(q, err, "encrypted images are not supported");
	q->l1_size = be32(h + 36);
	q->l1_offset = be64(h + 40);
	q->rt_offset = be64(h + 48);
	q->rt_clusters = be32(h + 56);
	q->nb_snapshots = be32(h + 60);
	if (q->version == 3) {
		q->incompat = be64(h + 72);
		q->compat = be64(h + 80);
		q->autoclear = be64(h + 88);
		refcount_order = be32(h + 96);
		if (q->header_length < QCOW2_V3_HEADER_LENGTH || q->header_length % 8 ||
		    q->header_length > q->cluster_size)
			return bad(q, err, "invalid header length %llu",
				   (unsigned long long)q->header_length);
	} else {
		refcount_order = QCOW2_REFCOUNT_ORDER;
	}
	if (refcount_order != QCOW2_REFCOUNT_ORDER)
		return bad(q, err, "%u-bit refcounts are not supported (only 16-bit)",
			   1u << (refcount_order < 31 ? refcount_order : 31));

	/* The virtual size, and an L1 table that maps all of it. */
	if (size > (1ull << 56))
		return bad(q, err, "virtual size %llu is too large", (unsigned long long)size);
	l1_need = (size + q->cluster_size * q->l2_entries - 1) / (q->cluster_size * q->l2_entries);
	if (q->l1_size < l1_need)
		return bad(q, err, "the L1 table (%u entries) does not cover the virtual size",
			   q->l1_size);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return bad(q, err, "the L1 table is too large");
	if (q->l1_size && (q->l1_offset == 0 || q->l1_offset & (q->cluster_size - 1) ||
			   q->l1_offset > (1ull << 56)))
		return bad(q, err, "invalid L1 table offset");
	if (q->rt_clusters == 0 ||
	    (uint64_t)q->rt_clusters * q->cluster_size > QCOW2_MAX_REFTABLE_BYTES)
		return bad(q, err, "invalid refcount table size");
	if (q->rt_offset == 0 || q->rt_offset & (q->cluster_size - 1) ||
	    q->rt_offset > (1ull << 56))
		return bad(q, err, "invalid refcount table offset");
	q->rt_entries = (uint64_t)q->rt_clusters * q->cluster_size / 8;
	q->d.size = size;

	/* Extensions and the backing file's name, all inside the first cluster. */
	q->buf = xmalloc(q->cluster_size);
	if (disk_pread_full(q->fd, q->buf, q->cluster_size, 0) < 0)
		return error_set(err, errno, "cannot read disk image '%s'", q->path);
	ext_end = q->cluster_size;
	if (backing_off) {
		/* Inside the first cluster, whose size may be smaller than the longest name. */
		if (backing_len == 0 || backing_len > QCOW2_MAX_BACKING_NAME ||
		    backing_len > q->cluster_size || backing_off < q->header_length ||
		    backing_off > q->cluster_size - backing_len)
			return bad(q, err, "invalid backing file name offset or length");
		memcpy(q->backing_name, q->buf + backing_off, backing_len);
		q->backing_name[backing_len] = '\0';
		if (strlen(q->backing_name) != backing_len)
			return bad(q, err, "the backing file name has a NUL byte");
		ext_end = backing_off;
	}
	if (read_extensions(q, q->buf, q->header_length, ext_end, err) < 0)
		return -1;

	if (read_table(q, q->l1_offset, q->l1_size, &q->l1, "L1 table", err) < 0 ||
	    read_table(q, q->rt_offset, q->rt_entries, &q->rt, "refcount table", err) < 0)
		return -1;
	for (uint32_t i = 0; i < q->l1_size; i++)
		if (q->l1[i] & QCOW2_L1_RESERVED)
			return bad(q, err, "L1 entry %u has reserved bits set", i);
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if (q->rt[i] & (q->cluster_size - 1) || q->rt[i] > (1ull << 56))
			return bad(q, err, "refcount table entry %llu is not a cluster offset",
				   (unsigned long long)i);
	return 0;
}

/*
 * A new version 3 image over backing: cluster 0 the header, its backing
 * format extension and the backing name; 1 the refcount table; 2 the
 * refcount block counting clusters 0 to 2 and the L1 table's, which
 * follows, all zeros (a hole until written).
 */
int qcow2_create_overlay(const char *path, const char *backing, enum disk_format backing_format,
			 uint64_t size, struct error *err)
{
	const uint64_t cs = 1ull << QCOW2_DEFAULT_CLUSTER_BITS;
	const char *fmt = backing_format == DISK_FORMAT_QCOW2 ? "qcow2" : "raw";
	_cleanup_free_ char *abs = NULL;
	_cleanup_free_ uint8_t *c = NULL;
	_cleanup_close_ int fd = -1;
	uint64_t l1_size, l1_clusters, total, off, name_off;
	size_t name_len, fmt_len = strlen(fmt);

	/* Stored absolute: QEMU resolves a relative name from the overlay's folder. */
	abs = realpath(backing, NULL);
	if (!abs)
		return error_set(err, errno, "cannot create overlay '%s': backing file '%s'", path,
				 backing);
	name_len = strlen(abs);
	if (name_len > QCOW2_MAX_BACKING_NAME)
		return error_set(err, 0, "cannot create overlay '%s': backing file name too long",
				 path);
	size = qcow2_round_up(size, 512);
	l1_size = (size + cs * (cs / 8) - 1) / (cs * (cs / 8));
	if (l1_size == 0)
		l1_size = 1;
	l1_clusters = qcow2_round_up(l1_size * 8, cs) / cs;
	total = 3 + l1_clusters;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES || total > cs / 2)
		return error_set(err, 0, "cannot create overlay '%s': virtual size too large",
				 path);

	c = xcalloc(1, cs);
	put32(c, QCOW2_MAGIC);
	put32(c + 4, 3);
	put32(c + 20, QCOW2_DEFAULT_CLUSTER_BITS);
	put64(c + 24, size);
	put32(c + 36, (uint32_t)l1_size);
	put64(c + 40, 3 * cs);
	put64(c + 48, cs);
	put32(c + 56, 1);
	put32(c + 96, QCOW2_REFCOUNT_ORDER);
	put32(c + 100, QCOW2_V3_HEADER_LENGTH);
	off = QCOW2_V3_HEADER_LENGTH;
	put32(c + off, QCOW2_EXT_BACKING_FORMAT);
	put32(c + off + 4, (uint32_t)fmt_len);
	memcpy(c + off + 8, fmt, fmt_len);
	off += 8 + qcow2_round_up(fmt_len, 8);
	off += 8; /* the end-of-extensions marker: eight zero bytes */
	name_off = off;
	memcpy(c + name_off, abs, name_len);
	put64(c + 8, name_off);
	put32(c + 16, (uint32_t)name_len);

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
	if (fd < 0)
		return error_set(err, errno, "cannot create overlay '%s'", path);
	if (disk_pwrite_full(fd, c, cs, 0) < 0)
		goto fail;
	memset(c, 0, cs);
	put64(c, 2 * cs);
	if (disk_pwrite_full(fd, c, cs, cs) < 0)
		goto fail;
	memset(c, 0, cs);
	for (uint64_t i = 0; i < total; i++) {
		c[2 * i] = 0;
		c[2 * i + 1] = 1;
	}
	if (disk_pwrite_full(fd, c, cs, 2 * cs) < 0)
		goto fail;
	if (ftruncate(fd, (off_t)(total * cs)) < 0 || disk_datasync(fd) < 0)
		goto fail;
	return 0;
fail:
	error_set(err, errno, "cannot write overlay '%s'", path);
	unlink(path);
	return -1;
}
