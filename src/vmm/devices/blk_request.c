/*
 * One virtio-blk request (virtio 1.x section 5.2.6) against a disk: the
 * header in the chain's first 16 device-readable bytes (across segments if
 * the driver split it), the data after it (OUT, DISCARD, WRITE_ZEROES) or
 * in the device-writable bytes before the last (IN, GET_ID), and the status
 * in the last device-writable byte. The header is copied out of guest
 * memory once and checked there; data moves between the disk and guest
 * memory in place, the request's pages handed to the disk as one list.
 * Every request is bounded by the capacity without overflow. A chain with no device-writable byte cannot
 * be answered at all: BLK_MALFORMED, for the device to count.
 */
#include <endian.h>
#include <string.h>

#include "vmm/devices/virtio_blk.h"
#include "common/banned.h"

/* Copy len device-readable bytes from offset off of c into buf; false if c has fewer. */
static bool gather(const struct virtq_chain *c, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (off > c->readable || len > c->readable - off)
		return false;
	for (unsigned i = 0; i < c->nr_segs && len > 0; i++) {
		const struct virtq_seg *s = &c->segs[i];
		size_t n;

		if (s->writable)
			break;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off < len ? s->len - off : len;
		memcpy(out, (uint8_t *)s->host + off, n);
		out += n;
		len -= n;
		off = 0;
	}
	return len == 0;
}

/*
 * The len bytes of c's readable (or writable) bytes from offset off, as a
 * list of the guest's own pages, for the disk to read into or write from
 * in place; the number of entries (at most c->nr_segs).
 */
static unsigned data_iov(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
			 struct iovec *iov)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->nr_segs && len > 0; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint64_t k;

		if (s->writable != writable)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		k = s->len - off < len ? s->len - off : len;
		iov[n++] = (struct iovec){.iov_base = (uint8_t *)s->host + off, .iov_len = k};
		len -= k;
		off = 0;
	}
	return n;
}

/* The last device-writable byte of c (the status), NULL if it has none. */
static uint8_t *status_byte(const struct virtq_chain *c)
{
	for (unsigned i = c->nr_segs; i-- > 0;) {
		const struct virtq_seg *s = &c->segs[i];

		if (!s->writable)
			break;
		if (s->len > 0)
			return (uint8_t *)s->host + s->len - 1;
	}
	return NULL;
}

/* True if [sector, sector + nsec) is inside a disk of capacity sectors. */
static bool in_capacity(const struct disk *d, uint64_t sector, uint64_t nsec)
{
	uint64_t cap = d->size / VIRTIO_BLK_SECTOR;

	return sector <= cap && nsec <= cap - sector;
}

/* IN and OUT: the data is a whole number of sectors inside the capacity. */
static uint8_t rw(struct disk *d, bool ro, const struct virtq_chain *c, bool in, uint64_t sector,
		  uint32_t *data_written, enum blk_outcome *out, struct error *err)
{
	/* IN: every writable byte but the status; OUT: every readable byte after the header. */
	uint64_t len = in ? c->writable - 1 : c->readable - VIRTIO_BLK_HDR_LEN;
	uint64_t off = sector * VIRTIO_BLK_SECTOR;
	struct iovec iov[VIRTQ_MAX_SIZE];
	unsigned n;

	if (!in && ro)
		return VIRTIO_BLK_S_IOERR;
	/* The used ring's length is 32 bits: no request moves 4 GiB. */
	if (len >= UINT32_MAX || len % VIRTIO_BLK_SECTOR ||
	    !in_capacity(d, sector, len / VIRTIO_BLK_SECTOR))
		return VIRTIO_BLK_S_IOERR;
	/*
	 * Linux sends a request's data as a segment per page: one list for the
	 * disk. A read counts every data byte as written, failed or not (the
	 * guest's pages may hold part of it; QEMU counts the same).
	 */
	n = in ? data_iov(c, true, 0, len, iov) : data_iov(c, false, VIRTIO_BLK_HDR_LEN, len, iov);
	if (in)
		*data_written = (uint32_t)len; /* <= c->writable - 1 < 2^32 */
	if ((in ? d->ops->readv(d, iov, n, off, err) : d->ops->writev(d, iov, n, off, err)) < 0) {
		*out = BLK_HOST_ERROR;
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t get_id(const struct disk *d, const struct virtq_chain *c, uint32_t *data_written)
{
	uint64_t len = c->writable - 1;

	if (len > VIRTIO_BLK_ID_BYTES)
		len = VIRTIO_BLK_ID_BYTES;
	for (unsigned i = 0, pos = 0; i < c->nr_segs && pos < len; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint64_t n = s->len < len - pos ? s->len : len - pos;

		if (!s->writable)
			continue;
		memcpy(s->host, d->id + pos, n);
		pos += (unsigned)n;
	}
	*data_written = (uint32_t)len;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: one to VIRTIO_BLK_MAX_DWZ_SEGS ranges after the header. */
static uint8_t discard_or_zero(struct disk *d, bool ro, const struct virtq_chain *c, bool zero,
			       enum blk_outcome *out, struct error *err)
{
	uint64_t payload = c->readable - VIRTIO_BLK_HDR_LEN;
	uint64_t n = payload / VIRTIO_BLK_DWZ_LEN;
	struct {
		uint64_t sector;
		uint32_t num_sectors, flags;
	} __attribute__((packed)) r[VIRTIO_BLK_MAX_DWZ_SEGS];

	if (zero ? !d->can_write_zeroes : !d->can_discard)
		return VIRTIO_BLK_S_UNSUPP;
	if (payload % VIRTIO_BLK_DWZ_LEN || n == 0 || n > VIRTIO_BLK_MAX_DWZ_SEGS)
		return VIRTIO_BLK_S_IOERR;
	/* Every range copied and checked before any is done: all or nothing. */
	if (!gather(c, VIRTIO_BLK_HDR_LEN, r, n * VIRTIO_BLK_DWZ_LEN))
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t flags = le32toh(r[i].flags);

		r[i].sector = le64toh(r[i].sector);
		r[i].num_sectors = le32toh(r[i].num_sectors);
		/* 5.2.6.2: unmap is for write-zeroes only; other flag bits are reserved. */
		if (flags & ~(zero ? VIRTIO_BLK_WZ_F_UNMAP : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		if (r[i].num_sectors > VIRTIO_BLK_MAX_DWZ_SECTORS ||
		    !in_capacity(d, r[i].sector, r[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	if (ro)
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = r[i].sector * VIRTIO_BLK_SECTOR;
		uint64_t len = (uint64_t)r[i].num_sectors * VIRTIO_BLK_SECTOR;
		int ret = zero ? d->ops->write_zeroes(d, off, len, err)
			       : d->ops->discard(d, off, len, err);

		if (ret < 0) {
			*out = BLK_HOST_ERROR;
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

enum blk_outcome blk_request(struct disk *d, bool ro, const struct virtq_chain *c,
			     uint32_t *written, struct error *err)
{
	enum blk_outcome out = BLK_DONE;
	uint8_t *status = status_byte(c), hdr[VIRTIO_BLK_HDR_LEN];
	uint32_t type, data_written = 0;
	uint64_t sector;
	uint8_t st;

	*written = 0;
	if (!status)
		return BLK_MALFORMED;
	if (!gather(c, 0, hdr, sizeof(hdr))) {
		/* No whole header: the type is unknown, so is what to do. */
		*status = VIRTIO_BLK_S_IOERR;
		*written = 1;
		return BLK_DONE;
	}
	memcpy(&type, hdr, sizeof(type));
	memcpy(&sector, hdr + 8, sizeof(sector));
	type = le32toh(type);
	sector = le64toh(sector);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		st = rw(d, ro, c, type == VIRTIO_BLK_T_IN, sector, &data_written, &out, err);
		break;
	case VIRTIO_BLK_T_FLUSH:
		st = VIRTIO_BLK_S_OK;
		if (!ro && d->ops->flush(d, err) < 0) {
			out = BLK_HOST_ERROR;
			st = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		st = get_id(d, c, &data_written);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = discard_or_zero(d, ro, c, type == VIRTIO_BLK_T_WRITE_ZEROES, &out, err);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	*status = st;
	*written = data_written + 1;
	return out;
}

uint64_t blk_features(const struct disk *d, bool ro)
{
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
		     1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_FLUSH;

	if (ro)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	if (d->can_discard && !ro)
		f |= 1ULL << VIRTIO_BLK_F_DISCARD;
	if (d->can_write_zeroes && !ro)
		f |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

void blk_config(const struct disk *d, uint16_t queue_size, struct virtio_blk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(d->size / VIRTIO_BLK_SECTOR);
	/* Two descriptors of a chain are the header and the status. */
	cfg->seg_max = htole32(queue_size > 2 ? queue_size - 2u : 1u);
	cfg->size_max = htole32(1u << 20);
	cfg->blk_size = htole32(VIRTIO_BLK_SECTOR);
	cfg->num_queues = htole16(1);
	cfg->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DWZ_SECTORS);
	cfg->max_discard_seg = htole32(VIRTIO_BLK_MAX_DWZ_SEGS);
	cfg->discard_sector_alignment = htole32(1);
	cfg->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DWZ_SECTORS);
	cfg->max_write_zeroes_seg = htole32(VIRTIO_BLK_MAX_DWZ_SEGS);
	cfg->write_zeroes_may_unmap = 0;
}
