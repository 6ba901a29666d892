/*
 * virtio-blk requests (vmm/devices/blk_request.c) against a fake disk in
 * memory, with chains made by hand as virtq_pop() would hand them over:
 * every request type does what 5.2.6 says, a header split across segments
 * is read whole, every request is bounded by the capacity (overflowing
 * sector numbers included), a read-only disk takes no write, discard and
 * write-zeroes are refused where the disk cannot, and a chain that is too
 * short or has no status byte is answered (or returned) without a write.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/devices/virtio_blk.h"

#define DISK_SECTORS 64
#define DISK_BYTES (DISK_SECTORS * VIRTIO_BLK_SECTOR)

struct fake_disk {
	struct disk d;
	uint8_t data[DISK_BYTES];
	unsigned reads, writes, flushes, discards, zeroes;
	bool fail; /* every call fails, as a host I/O error */
	void *first_base; /* where the last read or write's data began in memory */
};

static struct fake_disk *fake(struct disk *d)
{
	return (struct fake_disk *)d;
}

static int fake_readv(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		      struct error *err)
{
	size_t len = iov_length(iov, n);
	struct iov_cursor c;

	assert_true(off <= DISK_BYTES && len <= DISK_BYTES - off);
	if (fake(d)->fail)
		return error_set(err, 0, "fake read error");
	fake(d)->reads++;
	fake(d)->first_base = n ? iov[0].iov_base : NULL;
	iov_cursor_init(&c, iov, n);
	assert_int_equal(iov_copy_in(&c, fake(d)->data + off, len), len);
	return 0;
}

static int fake_writev(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		       struct error *err)
{
	size_t len = iov_length(iov, n);
	struct iov_cursor c;

	assert_true(off <= DISK_BYTES && len <= DISK_BYTES - off);
	if (fake(d)->fail)
		return error_set(err, 0, "fake write error");
	fake(d)->writes++;
	fake(d)->first_base = n ? iov[0].iov_base : NULL;
	iov_cursor_init(&c, iov, n);
	assert_int_equal(iov_copy_out(&c, fake(d)->data + off, len), len);
	return 0;
}

static int fake_flush(struct disk *d, struct error *err)
{
	if (fake(d)->fail)
		return error_set(err, 0, "fake flush error");
	fake(d)->flushes++;
	return 0;
}

static int fake_discard(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	assert_true(off <= DISK_BYTES && len <= DISK_BYTES - off);
	fake(d)->discards++;
	memset(fake(d)->data + off, 0, len);
	return 0;
}

static int fake_zeroes(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	assert_true(off <= DISK_BYTES && len <= DISK_BYTES - off);
	fake(d)->zeroes++;
	memset(fake(d)->data + off, 0, len);
	return 0;
}

static void fake_close(struct disk *d)
{
}

static const struct disk_ops fake_ops = {
    .readv = fake_readv,
    .writev = fake_writev,
    .flush = fake_flush,
    .discard = fake_discard,
    .write_zeroes = fake_zeroes,
    .close = fake_close,
};

static struct fake_disk *new_disk(void)
{
	struct fake_disk *f = calloc(1, sizeof(*f));

	f->d = (struct disk){
	    .ops = &fake_ops, .size = DISK_BYTES, .can_discard = true, .can_write_zeroes = true};
	memcpy(f->d.id, "fake-disk-serial-0001", sizeof(f->d.id) - 1);
	for (size_t i = 0; i < DISK_BYTES; i++)
		f->data[i] = (uint8_t)(i * 13 + 1);
	return f;
}

/* A chain built segment by segment, readable ones first, as virtq_pop() checks. */
struct req {
	struct virtq_chain c;
	uint8_t hdr[VIRTIO_BLK_HDR_LEN];
	uint8_t buf[4][2048];
	uint8_t status;
};

static void seg(struct req *r, void *host, uint32_t len, bool writable)
{
	struct virtq_seg *s = &r->c.segs[r->c.nr_segs++];

	*s = (struct virtq_seg){.host = host, .len = len, .writable = writable};
	if (writable)
		r->c.writable += len;
	else
		r->c.readable += len;
}

static void header(struct req *r, uint32_t type, uint64_t sector)
{
	uint32_t t = htole32(type), zero = 0;
	uint64_t s = htole64(sector);

	memcpy(r->hdr, &t, 4);
	memcpy(r->hdr + 4, &zero, 4);
	memcpy(r->hdr + 8, &s, 8);
}

/* The usual three-part chain: header, data (len bytes of buf[0]), status. */
static struct req *simple(uint32_t type, uint64_t sector, uint32_t len, bool data_writable)
{
	struct req *r = calloc(1, sizeof(*r));

	header(r, type, sector);
	seg(r, r->hdr, sizeof(r->hdr), false);
	if (len)
		seg(r, r->buf[0], len, data_writable);
	r->status = 0xee;
	seg(r, &r->status, 1, true);
	return r;
}

static uint8_t serve(struct fake_disk *f, bool ro, struct req *r, uint32_t *written)
{
	struct error err = {0};

	assert_int_equal(blk_request(&f->d, ro, &r->c, written, &err), BLK_DONE);
	return r->status;
}

static void in_reads_the_sectors_into_the_writable_buffers(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = simple(VIRTIO_BLK_T_IN, 3, 1024, true);
	uint32_t w;

	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(w, 1024 + 1);
	assert_memory_equal(r->buf[0], f->data + 3 * 512, 1024);
	free(r);
	free(f);
}

static void out_writes_the_readable_data_after_the_header(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = simple(VIRTIO_BLK_T_OUT, 10, 512, false);
	uint32_t w;

	memset(r->buf[0], 0x5a, 512);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(w, 1);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(f->data[10 * 512 + i], 0x5a);
	assert_int_not_equal(f->data[9 * 512 + 511], 0x5a);
	assert_int_not_equal(f->data[11 * 512], 0x5a);
	free(r);
	free(f);
}

/* Header in two segments (10 + 6 bytes), the first also carrying nothing else. */
static void a_header_split_across_segments_is_read_whole(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = calloc(1, sizeof(*r));
	uint32_t w;

	header(r, VIRTIO_BLK_T_OUT, 2);
	/* Bytes past the first segment's end are not the header's. */
	memcpy(r->buf[3], r->hdr, 10);
	memset(r->buf[3] + 10, 0xff, 6);
	seg(r, r->buf[3], 10, false);
	/* The rest of the header and the start of the data share a segment. */
	memcpy(r->buf[1], r->hdr + 10, 6);
	memset(r->buf[1] + 6, 0x11, 506);
	seg(r, r->buf[1], 512, false);
	memset(r->buf[2], 0x22, 6);
	seg(r, r->buf[2], 6, false);
	seg(r, &r->status, 1, true);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(f->data[2 * 512], 0x11);
	assert_int_equal(f->data[2 * 512 + 505], 0x11);
	assert_int_equal(f->data[2 * 512 + 506], 0x22);
	assert_int_equal(f->data[2 * 512 + 511], 0x22);
	free(r);
	free(f);
}

/* IN data in two writable segments and the status byte at the end of the second. */
static void in_fills_several_segments_and_the_status_is_the_last_writable_byte(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = calloc(1, sizeof(*r));
	uint32_t w;

	header(r, VIRTIO_BLK_T_IN, 0);
	seg(r, r->hdr, sizeof(r->hdr), false);
	seg(r, r->buf[0], 100, true);
	r->buf[1][412] = 0xee;
	seg(r, r->buf[1], 413, true); /* 412 data bytes and the status */
	assert_int_equal(blk_request(&f->d, false, &r->c, &w, &(struct error){0}), BLK_DONE);
	assert_int_equal(r->buf[1][412], VIRTIO_BLK_S_OK);
	assert_int_equal(w, 513);
	assert_memory_equal(r->buf[0], f->data, 100);
	assert_memory_equal(r->buf[1], f->data + 100, 412);
	free(r);
	free(f);
}

/*
 * A write's data in several segments (a page each, as Linux sends it)
 * reaches the disk in one call, so that a qcow2 overlay gets whole
 * clusters to write; so does a read. Both use the guest's pages in place,
 * never a copy.
 */
static void a_write_in_segments_reaches_the_disk_in_one_call(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = calloc(1, sizeof(*r));
	uint32_t written = 0;

	header(r, VIRTIO_BLK_T_OUT, 8);
	seg(r, r->hdr, sizeof(r->hdr), false);
	for (int i = 0; i < 4; i++) {
		memset(r->buf[i], 0x40 + i, sizeof(r->buf[i]));
		seg(r, r->buf[i], sizeof(r->buf[i]), false);
	}
	seg(r, &r->status, 1, true);
	assert_int_equal(serve(f, false, r, &written), VIRTIO_BLK_S_OK);
	assert_int_equal(f->writes, 1);
	assert_ptr_equal(f->first_base, r->buf[0]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->data[8 * VIRTIO_BLK_SECTOR + i * 2048 + 7], 0x40 + i);
	free(r);
	r = calloc(1, sizeof(*r));
	header(r, VIRTIO_BLK_T_IN, 8);
	seg(r, r->hdr, sizeof(r->hdr), false);
	for (int i = 0; i < 4; i++)
		seg(r, r->buf[i], sizeof(r->buf[i]), true);
	seg(r, &r->status, 1, true);
	assert_int_equal(serve(f, false, r, &written), VIRTIO_BLK_S_OK);
	assert_int_equal(written, 4 * 2048 + 1); /* and the status */
	assert_int_equal(f->reads, 1);
	assert_ptr_equal(f->first_base, r->buf[0]);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r->buf[i][0], 0x40 + i);
		assert_int_equal(r->buf[i][2047], 0x40 + i);
	}
	free(r);
	free(f);
}

static void requests_past_the_capacity_get_ioerr_and_touch_nothing(void **state)
{
	static const uint64_t sectors[] = {
	    DISK_SECTORS,     DISK_SECTORS - 1,	      UINT64_MAX, UINT64_MAX - 1,
	    UINT64_MAX / 512, (UINT64_MAX / 512) + 1, 1ULL << 63,
	};
	struct fake_disk *f = new_disk();
	uint32_t w;

	for (size_t i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		struct req *in = simple(VIRTIO_BLK_T_IN, sectors[i], 1024, true);
		struct req *out = simple(VIRTIO_BLK_T_OUT, sectors[i], 1024, false);

		assert_int_equal(serve(f, false, in, &w), VIRTIO_BLK_S_IOERR);
		assert_int_equal(serve(f, false, out, &w), VIRTIO_BLK_S_IOERR);
		free(in);
		free(out);
	}
	/* The last whole sectors are fine. */
	struct req *last = simple(VIRTIO_BLK_T_OUT, DISK_SECTORS - 2, 1024, false);
	assert_int_equal(serve(f, false, last, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(f->reads, 0);
	assert_int_equal(f->writes, 1);
	free(last);
	free(f);
}

static void data_not_a_whole_number_of_sectors_gets_ioerr(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *in = simple(VIRTIO_BLK_T_IN, 0, 513, true);
	struct req *out = simple(VIRTIO_BLK_T_OUT, 0, 100, false);
	uint32_t w;

	assert_int_equal(serve(f, false, in, &w), VIRTIO_BLK_S_IOERR);
	assert_int_equal(w, 1);
	assert_int_equal(serve(f, false, out, &w), VIRTIO_BLK_S_IOERR);
	assert_int_equal(f->reads + f->writes, 0);
	free(in);
	free(out);
	free(f);
}

static void a_read_only_disk_refuses_writes_discards_and_zeroes(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *out = simple(VIRTIO_BLK_T_OUT, 0, 512, false);
	struct req *dz[2];
	uint32_t w;
	uint8_t before[DISK_BYTES];

	memcpy(before, f->data, sizeof(before));
	assert_int_equal(serve(f, true, out, &w), VIRTIO_BLK_S_IOERR);
	for (int i = 0; i < 2; i++) {
		uint8_t range[16] = {0};

		range[8] = 1; /* one sector at 0 */
		dz[i] = simple(i ? VIRTIO_BLK_T_WRITE_ZEROES : VIRTIO_BLK_T_DISCARD, 0, 16, false);
		memcpy(dz[i]->buf[0], range, sizeof(range));
		assert_int_equal(serve(f, true, dz[i], &w), VIRTIO_BLK_S_IOERR);
		free(dz[i]);
	}
	assert_memory_equal(f->data, before, sizeof(before));
	assert_int_equal(f->writes + f->discards + f->zeroes, 0);
	/* Reads and flushes still work. */
	struct req *in = simple(VIRTIO_BLK_T_IN, 0, 512, true);
	assert_int_equal(serve(f, true, in, &w), VIRTIO_BLK_S_OK);
	assert_true(blk_features(&f->d, true) & (1ULL << VIRTIO_BLK_F_RO));
	assert_false(blk_features(&f->d, false) & (1ULL << VIRTIO_BLK_F_RO));
	free(in);
	free(out);
	free(f);
}

static void flush_and_get_id(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *fl = simple(VIRTIO_BLK_T_FLUSH, 0, 0, false);
	struct req *id = simple(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true);
	struct req *short_id = simple(VIRTIO_BLK_T_GET_ID, 0, 4, true);
	uint32_t w;

	assert_int_equal(serve(f, false, fl, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(f->flushes, 1);
	assert_int_equal(serve(f, false, id, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(w, VIRTIO_BLK_ID_BYTES + 1);
	assert_memory_equal(id->buf[0], "fake-disk-serial-000", VIRTIO_BLK_ID_BYTES);
	assert_int_equal(serve(f, false, short_id, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(w, 5);
	assert_memory_equal(short_id->buf[0], "fake", 4);
	assert_int_equal(short_id->buf[0][4], 0);
	free(fl);
	free(id);
	free(short_id);
	free(f);
}

static void put_range(uint8_t *p, uint64_t sector, uint32_t n, uint32_t flags)
{
	sector = htole64(sector);
	n = htole32(n);
	flags = htole32(flags);
	memcpy(p, &sector, 8);
	memcpy(p + 8, &n, 4);
	memcpy(p + 12, &flags, 4);
}

static void discard_and_write_zeroes_clear_every_range_or_none(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = simple(VIRTIO_BLK_T_WRITE_ZEROES, 0, 32, false);
	uint32_t w;

	put_range(r->buf[0], 1, 2, VIRTIO_BLK_WZ_F_UNMAP);
	put_range(r->buf[0] + 16, 8, 1, 0);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(f->zeroes, 2);
	for (unsigned i = 512; i < 3 * 512; i++)
		assert_int_equal(f->data[i], 0);
	assert_int_not_equal(f->data[3 * 512 + 1], 0);
	assert_int_equal(f->data[8 * 512 + 100], 0);
	free(r);

	/* A second range past the end: the first is not done either. */
	r = simple(VIRTIO_BLK_T_DISCARD, 0, 32, false);
	put_range(r->buf[0], 20, 1, 0);
	put_range(r->buf[0] + 16, UINT64_MAX - 1, 4, 0);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_IOERR);
	put_range(r->buf[0] + 16, DISK_SECTORS - 1, 2, 0);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_IOERR);
	assert_int_equal(f->discards, 0);
	/* Unmap on a discard, a reserved flag: unsupported. */
	put_range(r->buf[0] + 16, 0, 1, VIRTIO_BLK_WZ_F_UNMAP);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_UNSUPP);
	put_range(r->buf[0] + 16, 0, 1, 0);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(f->discards, 2);
	free(r);

	/* A payload that is not whole ranges, or none. */
	r = simple(VIRTIO_BLK_T_DISCARD, 0, 20, false);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_IOERR);
	free(r);
	r = simple(VIRTIO_BLK_T_DISCARD, 0, 0, false);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_IOERR);
	free(r);

	/* A disk that cannot: unsupported, and not offered. */
	f->d.can_discard = f->d.can_write_zeroes = false;
	r = simple(VIRTIO_BLK_T_DISCARD, 0, 16, false);
	put_range(r->buf[0], 0, 1, 0);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_UNSUPP);
	assert_false(blk_features(&f->d, false) &
		     (1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(f->discards, 2);
	free(r);
	free(f);
}

static void an_unknown_type_is_unsupported(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = simple(0x7777, 0, 512, true);
	uint32_t w;

	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(w, 1);
	free(r);
	free(f);
}

static void a_short_header_gets_ioerr_and_no_status_byte_is_malformed(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = calloc(1, sizeof(*r));
	struct error err = {0};
	uint32_t w = 99;

	header(r, VIRTIO_BLK_T_OUT, 0);
	seg(r, r->hdr, 15, false);
	r->status = 0xee;
	seg(r, &r->status, 1, true);
	assert_int_equal(serve(f, false, r, &w), VIRTIO_BLK_S_IOERR);
	assert_int_equal(w, 1);
	free(r);

	/* Only readable buffers: nowhere to put a status. */
	r = simple(VIRTIO_BLK_T_OUT, 0, 512, false);
	r->c.nr_segs--;
	r->c.writable = 0;
	assert_int_equal(blk_request(&f->d, false, &r->c, &w, &err), BLK_MALFORMED);
	assert_int_equal(w, 0);
	free(r);

	/* A zero-length writable buffer is no status byte either. */
	r = simple(VIRTIO_BLK_T_IN, 0, 0, true);
	r->c.segs[1].len = 0;
	r->c.writable = 0;
	assert_int_equal(blk_request(&f->d, false, &r->c, &w, &err), BLK_MALFORMED);
	assert_int_equal(f->reads + f->writes, 0);
	free(r);
	free(f);
}

static void a_host_error_is_an_ioerr_for_the_guest(void **state)
{
	struct fake_disk *f = new_disk();
	struct req *r = simple(VIRTIO_BLK_T_IN, 0, 512, true);
	struct error err = {0};
	uint32_t w;

	f->fail = true;
	assert_int_equal(blk_request(&f->d, false, &r->c, &w, &err), BLK_HOST_ERROR);
	assert_int_equal(r->status, VIRTIO_BLK_S_IOERR);
	assert_string_equal(err.msg, "fake read error");
	free(r);
	free(f);
}

static void the_config_space_says_the_capacity_and_limits(void **state)
{
	struct fake_disk *f = new_disk();
	struct virtio_blk_config cfg;

	assert_int_equal(sizeof(cfg), 60);
	assert_int_equal(offsetof(struct virtio_blk_config, blk_size), 20);
	assert_int_equal(offsetof(struct virtio_blk_config, max_discard_sectors), 36);
	assert_int_equal(offsetof(struct virtio_blk_config, write_zeroes_may_unmap), 56);
	f->d.size = DISK_BYTES + 100; /* a partial last sector is not offered */
	blk_config(&f->d, 256, &cfg);
	assert_int_equal(le64toh(cfg.capacity), DISK_SECTORS);
	assert_int_equal(le32toh(cfg.seg_max), 254);
	assert_int_equal(le32toh(cfg.blk_size), 512);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(in_reads_the_sectors_into_the_writable_buffers),
	    cmocka_unit_test(out_writes_the_readable_data_after_the_header),
	    cmocka_unit_test(a_header_split_across_segments_is_read_whole),
	    cmocka_unit_test(in_fills_several_segments_and_the_status_is_the_last_writable_byte),
	    cmocka_unit_test(a_write_in_segments_reaches_the_disk_in_one_call),
	    cmocka_unit_test(requests_past_the_capacity_get_ioerr_and_touch_nothing),
	    cmocka_unit_test(data_not_a_whole_number_of_sectors_gets_ioerr),
	    cmocka_unit_test(a_read_only_disk_refuses_writes_discards_and_zeroes),
	    cmocka_unit_test(flush_and_get_id),
	    cmocka_unit_test(discard_and_write_zeroes_clear_every_range_or_none),
	    cmocka_unit_test(an_unknown_type_is_unsupported),
	    cmocka_unit_test(a_short_header_gets_ioerr_and_no_status_byte_is_malformed),
	    cmocka_unit_test(a_host_error_is_an_ioerr_for_the_guest),
	    cmocka_unit_test(the_config_space_says_the_capacity_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
