/*
 * qcow2 images (qcow2.h has the layout and the crash-safety rule): opening
 * one and its backing file, mapping guest offsets through L1 and L2, reads,
 * writes with copy-on-write from the backing file, zeroed and discarded
 * clusters.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/disk/qcow2.h"

enum qcow2_kind { Q_UNALLOC, Q_ZERO, Q_DATA };

struct qcow2_map {
	enum qcow2_kind kind;
	uint64_t host; /* the data cluster; a zero cluster may keep one too */
};

static struct qcow2 *to_q(struct disk *d)
{
	return (struct qcow2 *)d;
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off, struct error *err)
{
	q->unsynced = true;
	if (disk_pwrite_full(q->fd, buf, len, off) < 0)
		return error_set(err, errno, "cannot write disk image '%s' at %llu", q->path,
				 (unsigned long long)off);
	return 0;
}

int qcow2_barrier(struct qcow2 *q, struct error *err)
{
	if (!q->unsynced)
		return 0;
	if (disk_datasync(q->fd) < 0)
		return error_set(err, errno, "cannot flush disk image '%s'", q->path);
	q->unsynced = false;
	return 0;
}

static int corrupt(struct qcow2 *q, const char *what, uint64_t goff, struct error *err)
{
	return error_set(err, 0, "disk image '%s' is corrupt: %s (guest offset %llu)", q->path,
			 what, (unsigned long long)goff);
}

static int decode(struct qcow2 *q, uint64_t e, uint64_t goff, struct qcow2_map *m,
		  struct error *err)
{
	if (e & QCOW2_COMPRESSED)
		return error_set(err, 0, "disk image '%s': compressed clusters are not supported",
				 q->path);
	m->host = e & QCOW2_OFFSET_MASK;
	if (m->host & (q->cluster_size - 1))
		return corrupt(q, "an L2 entry is not cluster-aligned", goff, err);
	if (q->version >= 3 && (e & QCOW2_ZERO))
		m->kind = Q_ZERO;
	else
		m->kind = m->host ? Q_DATA : Q_UNALLOC;
	return 0;
}

static uint64_t l1_index(const struct qcow2 *q, uint64_t goff)
{
	return goff >> (2 * q->cluster_bits - 3);
}

static uint64_t l2_index(const struct qcow2 *q, uint64_t goff)
{
	return (goff >> q->cluster_bits) & (q->l2_entries - 1);
}

/* The L2 table for goff, 0 when there is none. */
static int l2_table(struct qcow2 *q, uint64_t goff, uint64_t *l2off, struct error *err)
{
	*l2off = q->l1[l1_index(q, goff)] & QCOW2_OFFSET_MASK;
	if (*l2off & (q->cluster_size - 1))
		return corrupt(q, "an L1 entry is not cluster-aligned", goff, err);
	return 0;
}

static int lookup(struct qcow2 *q, uint64_t goff, struct qcow2_map *m, struct error *err)
{
	uint64_t l2off, e;
	uint8_t *t;

	if (l2_table(q, goff, &l2off, err) < 0)
		return -1;
	if (!l2off) {
		m->kind = Q_UNALLOC;
		m->host = 0;
		return 0;
	}
	t = qcow2_cache_get(q, &q->l2_cache, l2off, err);
	if (!t)
		return -1;
	memcpy(&e, t + l2_index(q, goff) * 8, 8);
	return decode(q, be64toh(e), goff, m, err);
}

static int set_l2(struct qcow2 *q, uint64_t l2off, uint64_t goff, uint64_t e, struct error *err)
{
	uint8_t *t = qcow2_cache_get(q, &q->l2_cache, l2off, err);
	uint64_t i = l2_index(q, goff);

	if (!t)
		return -1;
	e = htobe64(e);
	memcpy(t + i * 8, &e, 8);
	return qcow2_pwrite(q, &e, 8, l2off + i * 8, err);
}

/* The same, in the cached table only: written at the next flush, after a barrier. */
static int set_l2_later(struct qcow2 *q, uint64_t l2off, uint64_t goff, uint64_t e,
			struct error *err)
{
	uint8_t *t = qcow2_cache_get(q, &q->l2_cache, l2off, err);

	if (!t)
		return -1;
	e = htobe64(e);
	memcpy(t + l2_index(q, goff) * 8, &e, 8);
	qcow2_cache_dirty(&q->l2_cache, l2off);
	return 0;
}

/* The L2 table for goff, made (zeroed, then pointed at by L1) if missing. */
static int ensure_l2(struct qcow2 *q, uint64_t goff, uint64_t *l2off, struct error *err)
{
	uint64_t i = l1_index(q, goff), e;
	uint8_t *t;

	if (l2_table(q, goff, l2off, err) < 0)
		return -1;
	if (*l2off)
		return 0;
	if (qcow2_alloc_cluster(q, l2off, err) < 0)
		return -1;
	t = qcow2_cache_new(q, &q->l2_cache, *l2off, err);
	if (!t || qcow2_pwrite(q, t, q->cluster_size, *l2off, err) < 0 || qcow2_barrier(q, err) < 0)
		return -1;
	e = htobe64(*l2off | QCOW2_COPIED);
	if (qcow2_pwrite(q, &e, 8, q->l1_offset + i * 8, err) < 0)
		return -1;
	q->l1[i] = *l2off | QCOW2_COPIED;
	return 0;
}

static bool has_backing(const struct qcow2 *q, uint64_t goff)
{
	return q->backing && goff < q->backing->size;
}

/* Bytes [goff, goff + len) of the backing file; zeros past its end or without one. */
static int read_backing(struct qcow2 *q, uint8_t *p, size_t len, uint64_t goff, struct error *err)
{
	size_t n = 0;

	if (q->backing && goff < q->backing->size) {
		n = q->backing->size - goff < len ? (size_t)(q->backing->size - goff) : len;
		if (disk_read(q->backing, p, n, goff, err) < 0)
			return -1;
	}
	memset(p + n, 0, len - n);
	return 0;
}

/*
 * The run (qcow2.h) moved: read into its pages from the image or the
 * backing file, or written from them to the image. Empty afterwards.
 */
static int run_flush(struct qcow2 *q, bool write, struct error *err)
{
	struct qcow2_run *r = &q->run;
	int ret = 0;

	if (r->len == 0)
		return 0;
	if (r->backing) {
		ret = q->backing->ops->readv(q->backing, r->v, r->n, r->at, err);
	} else if (write) {
		q->unsynced = true;
		if (disk_pwritev_full(q->fd, r->v, r->n, r->at) < 0)
			ret = error_set(err, errno, "cannot write disk image '%s' at %llu", q->path,
					(unsigned long long)r->at);
	} else if (disk_preadv_full(q->fd, r->v, r->n, r->at) < 0) {
		ret = error_set(err, errno, "cannot read disk image '%s' at %llu", q->path,
				(unsigned long long)r->at);
	}
	r->len = 0;
	r->n = 0;
	return ret;
}

/*
 * The next len bytes of c join the run, at image offset at (a guest offset
 * in the backing file if backing); a run they do not continue is moved
 * first, and so is a full one.
 */
static int run_add(struct qcow2 *q, struct iov_cursor *c, bool backing, uint64_t at, size_t len,
		   bool write, struct error *err)
{
	struct qcow2_run *r = &q->run;

	while (len > 0) {
		size_t k;

		if (r->len && (r->backing != backing || r->at + r->len != at) &&
		    run_flush(q, write, err) < 0)
			return -1;
		if (r->len == 0) {
			r->backing = backing;
			r->at = at;
		}
		k = iov_take(c, len, r->v, &r->n, QCOW2_RUN_SEGS);
		if (k == 0 && r->n < QCOW2_RUN_SEGS) /* c is shorter than the request said */
			return error_set(err, EINVAL, "disk image '%s': a short request", q->path);
		r->len += k;
		at += k;
		len -= k;
		if (len && run_flush(q, write, err) < 0)
			return -1;
	}
	return 0;
}

/*
 * Reads walk the request a cluster at a time; clusters that follow each
 * other in the image file (or all come from the backing file) are read
 * with one call.
 */
static int q_readv(struct disk *d, const struct iovec *iov, unsigned niov, uint64_t off,
		   struct error *err)
{
	struct qcow2 *q = to_q(d);
	size_t len = iov_length(iov, niov);
	struct iov_cursor c;

	iov_cursor_init(&c, iov, niov);
	q->run.len = q->run.n = 0;
	while (len > 0) {
		uint64_t in = off & (q->cluster_size - 1);
		size_t n = q->cluster_size - in < len ? (size_t)(q->cluster_size - in) : len;
		size_t below = 0;
		struct qcow2_map m = {0};

		if (lookup(q, off, &m, err) < 0)
			return -1;
		if (m.kind == Q_DATA) {
			if (run_add(q, &c, false, m.host + in, n, false, err) < 0)
				return -1;
		} else {
			if (m.kind == Q_UNALLOC && has_backing(q, off))
				below = q->backing->size - off < n ? (size_t)(q->backing->size - off) : n;
			if (below && run_add(q, &c, true, off, below, false, err) < 0)
				return -1;
			iov_zero(&c, n - below);
		}
		off += n;
		len -= n;
	}
	return run_flush(q, false, err);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A data cluster written in place must not be the header or a table the header points at. */
static int check_data_cluster(struct qcow2 *q, uint64_t host, uint64_t goff, struct error *err)
{
	if (host < q->cluster_size ||
	    overlaps(host, q->cluster_size, q->l1_offset, q->l1_size * 8ull) ||
	    overlaps(host, q->cluster_size, q->rt_offset, q->rt_clusters * q->cluster_size))
		return corrupt(q, "a data cluster overlaps the image's metadata", goff, err);
	return 0;
}

/* The L2 entries of the clusters the run wrote, set now that it is written (in the cache). */
static int apply_pending(struct qcow2 *q, struct error *err)
{
	unsigned n = q->npending;

	q->npending = 0;
	if (run_flush(q, true, err) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct qcow2_l2_update *u = &q->pending[i];

		if (set_l2_later(q, u->l2off, u->goff, u->host | QCOW2_COPIED, err) < 0)
			return -1;
	}
	return 0;
}

/*
 * Write the next len bytes of c at goff, inside one cluster. A cluster in
 * place is written over; a new one (or a zeroed one's own) is written
 * whole: from the guest's pages when they cover it, else copied from below
 * first with them over the copy. A new cluster's L2 entry is set (and
 * written at the next flush) only after its data is written.
 */
static int write_chunk(struct qcow2 *q, struct iov_cursor *c, size_t len, uint64_t goff,
		       struct error *err)
{
	uint64_t in = goff & (q->cluster_size - 1), l2off, target;
	struct qcow2_map m = {0};

	if (ensure_l2(q, goff, &l2off, err) < 0 || lookup(q, goff, &m, err) < 0)
		return -1;
	if (m.kind == Q_DATA) {
		if (check_data_cluster(q, m.host, goff, err) < 0)
			return -1;
		return run_add(q, c, false, m.host + in, len, true, err);
	}
	if (m.kind == Q_ZERO && m.host) {
		if (check_data_cluster(q, m.host, goff, err) < 0)
			return -1;
		target = m.host;
	} else if (qcow2_alloc_cluster(q, &target, err) < 0) {
		return -1;
	}
	if (q->npending == QCOW2_PENDING && apply_pending(q, err) < 0)
		return -1;
	q->pending[q->npending++] = (struct qcow2_l2_update){l2off, goff, target};
	if (len == q->cluster_size)
		return run_add(q, c, false, target, len, true, err);
	if (m.kind == Q_UNALLOC) {
		if (read_backing(q, q->buf, q->cluster_size, goff - in, err) < 0)
			return -1;
	} else {
		memset(q->buf, 0, q->cluster_size);
	}
	iov_copy_out(c, q->buf + in, len);
	return qcow2_pwrite(q, q->buf, q->cluster_size, target, err);
}

static int write_iov(struct qcow2 *q, const struct iovec *iov, unsigned niov, uint64_t off,
		     struct error *err)
{
	size_t len = iov_length(iov, niov);
	struct iov_cursor c;

	iov_cursor_init(&c, iov, niov);
	q->run.len = q->run.n = 0;
	q->npending = 0;
	while (len > 0) {
		uint64_t in = off & (q->cluster_size - 1);
		size_t k = q->cluster_size - in < len ? (size_t)(q->cluster_size - in) : len;

		if (write_chunk(q, &c, k, off, err) < 0) {
			/* What was written stays unreferenced: leaked clusters, no more. */
			q->npending = 0;
			return -1;
		}
		off += k;
		len -= k;
	}
	return apply_pending(q, err);
}

static int write_range(struct qcow2 *q, const uint8_t *buf, size_t len, uint64_t off,
		       struct error *err)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};

	return write_iov(q, &v, 1, off, err);
}

static int q_writev(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		    struct error *err)
{
	if (d->read_only)
		return error_set(err, EROFS, "cannot write disk image '%s'", to_q(d)->path);
	return write_iov(to_q(d), iov, n, off, err);
}

static int q_flush(struct disk *d, struct error *err)
{
	struct qcow2 *q = to_q(d);

	if (qcow2_cache_flush(q, &q->l2_cache, err) < 0)
		return -1;
	return qcow2_barrier(q, err);
}

/*
 * The cluster at goff reads as zeros from now on. A discard gives its
 * cluster back: *freed is set to it, for the caller to count 0 once the L2
 * entry is on disk (a crash in between leaks it); a write-zeroes keeps it,
 * flagged zero, for the next write.
 */
static int zero_cluster(struct qcow2 *q, uint64_t goff, bool discard, uint64_t *freed,
			struct error *err)
{
	bool below = has_backing(q, goff);
	_cleanup_free_ uint8_t *zeros = NULL;
	struct qcow2_map m = {0};
	uint64_t l2off, e;

	*freed = 0;
	if (lookup(q, goff, &m, err) < 0)
		return -1;
	if ((m.kind == Q_UNALLOC && !below) || (m.kind == Q_ZERO && (!m.host || !discard)))
		return 0;
	if (q->version < 3 && below) {
		if (discard) /* a hint: without zero flags it cannot hide the backing file */
			return 0;
		zeros = xcalloc(1, q->cluster_size);
		return write_range(q, zeros, q->cluster_size, goff, err);
	}
	if (ensure_l2(q, goff, &l2off, err) < 0)
		return -1;
	if (m.kind == Q_DATA && !discard && q->version >= 3)
		e = m.host | QCOW2_COPIED | QCOW2_ZERO;
	else
		e = below ? QCOW2_ZERO : 0;
	if (set_l2(q, l2off, goff, e, err) < 0)
		return -1;
	if (m.host && !(e & QCOW2_OFFSET_MASK))
		*freed = m.host;
	return 0;
}

/* The clusters in freed[0, n) counted 0 after one barrier for their L2 entries. */
static int free_clusters(struct qcow2 *q, const uint64_t *freed, size_t n, struct error *err)
{
	if (n == 0)
		return 0;
	if (qcow2_barrier(q, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (qcow2_refcount_set(q, freed[i], 0, err) < 0)
			return -1;
		/* The space back to the host file system, where it can. */
		fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)freed[i],
			  (off_t)q->cluster_size);
	}
	return 0;
}

#define FREE_BATCH 256

static int zero_range(struct disk *d, uint64_t off, uint64_t len, bool discard, struct error *err)
{
	struct qcow2 *q = to_q(d);
	_cleanup_free_ uint8_t *zeros = NULL;
	uint64_t freed[FREE_BATCH];
	size_t nfreed = 0;

	if (d->read_only)
		return error_set(err, EROFS, "cannot write disk image '%s'", q->path);
	while (len > 0) {
		uint64_t in = off & (q->cluster_size - 1);
		uint64_t n = q->cluster_size - in < len ? q->cluster_size - in : len;
		struct qcow2_map m = {0};

		if (n == q->cluster_size) {
			if (zero_cluster(q, off, discard, &freed[nfreed], err) < 0)
				return -1;
			if (freed[nfreed] && ++nfreed == FREE_BATCH) {
				if (free_clusters(q, freed, nfreed, err) < 0)
					return -1;
				nfreed = 0;
			}
		} else if (!discard) { /* part of a cluster: written as zeros unless it is */
			if (lookup(q, off, &m, err) < 0)
				return -1;
			if (m.kind == Q_DATA || (m.kind == Q_UNALLOC && has_backing(q, off))) {
				if (!zeros)
					zeros = xcalloc(1, q->cluster_size);
				if (write_range(q, zeros, (size_t)n, off, err) < 0)
					return -1;
			}
		}
		off += n;
		len -= n;
	}
	return free_clusters(q, freed, nfreed, err);
}

static int q_discard(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	return zero_range(d, off, len, true, err);
}

static int q_write_zeroes(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	return zero_range(d, off, len, false, err);
}

static void q_close(struct disk *d)
{
	struct qcow2 *q = to_q(d);
	struct error err = {0};

	/* Nobody to tell of a failure: the writes since the last flush are lost then. */
	if (!q->d.read_only && q->fd >= 0)
		q_flush(d, &err);
	disk_close(q->backing);
	qcow2_cache_release(&q->l2_cache);
	qcow2_cache_release(&q->rb_cache);
	if (q->fd >= 0)
		close(q->fd);
	free(q->l1);
	free(q->rt);
	free(q->buf);
	free(q->path);
	free(q);
}

static const struct disk_ops qcow2_ops = {
    .readv = q_readv,
    .writev = q_writev,
    .flush = q_flush,
    .discard = q_discard,
    .write_zeroes = q_write_zeroes,
    .close = q_close,
};

static int open_backing(struct qcow2 *q, struct disk_chain *chain, struct error *err)
{
	_cleanup_free_ char *path = NULL;
	const char *slash = strrchr(q->path, '/');

	/* A relative name is relative to the image's folder, as QEMU has it. */
	if (q->backing_name[0] == '/' || !slash)
		path = xstrdup(q->backing_name);
	else
		path = xasprintf("%.*s/%s", (int)(slash - q->path), q->path, q->backing_name);
	chain->depth++;
	q->backing = disk_open_in_chain(path, q->backing_format, true, chain, err);
	chain->depth--;
	if (!q->backing)
		return error_prefix(err, "disk image '%s': backing file", q->path);
	return 0;
}

static int finish_open(struct qcow2 *q, struct disk_chain *chain, struct error *err)
{
	uint64_t end = 0, rc_end, file_end;
	struct stat st;

	if (qcow2_read_header(q, err) < 0)
		return -1;
	if (fstat(q->fd, &st) < 0)
		return error_set(err, errno, "cannot stat disk image '%s'", q->path);
	file_end = qcow2_round_up((uint64_t)st.st_size, q->cluster_size);
	if (qcow2_check_layout(q, file_end, &end, err) < 0)
		return -1;
	if (!q->d.read_only && q->nb_snapshots)
		return error_set(
		    err, 0,
		    "disk image '%s' has internal snapshots: it can only be opened read-only",
		    q->path);
	if (q->backing_name[0] && open_backing(q, chain, err) < 0)
		return -1;
	if (q->d.read_only)
		return 0;
	if (qcow2_refcount_end(q, &rc_end, err) < 0)
		return -1;
	if ((uint64_t)st.st_size > end)
		end = (uint64_t)st.st_size;
	if (rc_end > end)
		end = rc_end;
	q->next_free = qcow2_round_up(end, q->cluster_size);
	if (q->autoclear) {
		/* Features we do not keep up to date must be marked stale before a write. */
		uint64_t zero = 0;

		if (qcow2_pwrite(q, &zero, 8, 88, err) < 0 || qcow2_barrier(q, err) < 0)
			return -1;
		q->autoclear = 0;
	}
	q->d.can_discard = q->d.can_write_zeroes = true;
	return 0;
}

struct disk *qcow2_open_fd(int fd, const char *path, bool read_only, struct disk_chain *chain,
			   struct error *err)
{
	struct qcow2 *q = xcalloc(1, sizeof(*q));

	q->fd = fd;
	q->path = xstrdup(path);
	q->d.ops = &qcow2_ops;
	q->d.format = DISK_FORMAT_QCOW2;
	q->d.read_only = read_only;
	disk_set_id(&q->d, path);
	if (finish_open(q, chain, err) < 0) {
		q_close(&q->d);
		return NULL;
	}
	return &q->d;
}
