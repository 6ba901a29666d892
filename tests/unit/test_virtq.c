/*
 * The split virtqueue walker (vmm/virtio/virtq.c) over a guest RAM of two
 * regions with a hole between them, the rings written here as a driver
 * (or a hostile guest) would: the good paths, and each enum virtq_error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/virtio/virtio.h"
#include "vmm/virtio/virtq.h"

#define MIB (1ULL << 20)
#define QSIZE 8
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x10000
#define HIGH (16 * MIB) /* the second region */

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static const struct guest_region layout[] = {
    {.gpa = 0, .size = 1 * MIB},
    {.gpa = HIGH, .size = 1 * MIB},
};

struct fixture {
	struct guest_memory mem;
	struct virtq q;
	struct virtq_chain c;
};

static uint8_t *gp(struct fixture *f, uint64_t gpa)
{
	return guest_ptr(&f->mem, gpa, 1);
}

static void set_desc(struct fixture *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = gp(f, table + 16 * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void set16(struct fixture *f, uint64_t gpa, uint16_t v)
{
	memcpy(gp(f, gpa), &v, 2);
}

static uint16_t get16(struct fixture *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(f, gpa), 2);
	return v;
}

static uint32_t get32(struct fixture *f, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(f, gpa), 4);
	return v;
}

/* Offer head as avail entry n (0-based) and publish n + 1 entries. */
static void offer(struct fixture *f, unsigned n, uint16_t head)
{
	set16(f, AVAIL + 4 + 2 * (n % QSIZE), head);
	set16(f, AVAIL + 2, (uint16_t)(n + 1));
}

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct error err = {0};

	assert_int_equal(guest_memory_init(&f->mem, 2 * MIB, layout, 2, &err), 0);
	f->q.size = QSIZE;
	f->q.desc_gpa = DESC;
	f->q.avail_gpa = AVAIL;
	f->q.used_gpa = USED;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_memory_release(&f->mem);
	test_free(f);
	return 0;
}

static void start(struct fixture *f, uint64_t features)
{
	assert_int_equal(virtq_start(&f->q, &f->mem, QSIZE, features), VIRTQ_OK);
}

/* A device reset, the driver configuring the same rings again, and a start. */
static void restart(struct fixture *f, uint64_t features)
{
	virtq_reset(&f->q);
	f->q.size = QSIZE;
	f->q.desc_gpa = DESC;
	f->q.avail_gpa = AVAIL;
	f->q.used_gpa = USED;
	start(f, features);
}

/* Pop expecting the walk to fail with e, then the queue to stay shut. */
static void pop_fails(struct fixture *f, enum virtq_error e)
{
	enum virtq_error why;

	assert_int_equal(virtq_pop(&f->q, &f->c, &why), -1);
	assert_int_equal(why, e);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0);
}

static void start_refuses(struct fixture *f, uint16_t size, uint64_t desc, uint64_t avail,
			  uint64_t used, enum virtq_error e)
{
	f->q.size = size;
	f->q.desc_gpa = desc;
	f->q.avail_gpa = avail;
	f->q.used_gpa = used;
	assert_int_equal(virtq_start(&f->q, &f->mem, QSIZE, 0), e);
	assert_int_equal(f->q.started, e == VIRTQ_OK);
}

static void bad_sizes_are_refused(void **state)
{
	struct fixture *f = *state;

	start_refuses(f, 0, DESC, AVAIL, USED, VIRTQ_BAD_SIZE);
	start_refuses(f, 6, DESC, AVAIL, USED, VIRTQ_BAD_SIZE);
	start_refuses(f, 16, DESC, AVAIL, USED, VIRTQ_BAD_SIZE); /* over max */
	f->q.size = 512;
	assert_int_equal(virtq_start(&f->q, &f->mem, 1024, 0),
			 VIRTQ_BAD_SIZE); /* over VIRTQ_MAX_SIZE */
	start_refuses(f, 4, DESC, AVAIL, USED, VIRTQ_OK);
}

static void bad_rings_are_refused(void **state)
{
	struct fixture *f = *state;

	start_refuses(f, QSIZE, DESC + 8, AVAIL, USED, VIRTQ_BAD_RING);
	start_refuses(f, QSIZE, DESC, AVAIL + 1, USED, VIRTQ_BAD_RING);
	start_refuses(f, QSIZE, DESC, AVAIL, USED + 2, VIRTQ_BAD_RING);
	/* Running off the end of a region into the hole, and beyond RAM. */
	start_refuses(f, QSIZE, MIB - 64, AVAIL, USED, VIRTQ_BAD_RING);
	start_refuses(f, QSIZE, DESC, MIB - 20, USED, VIRTQ_BAD_RING); /* used_event outside */
	start_refuses(f, QSIZE, DESC, AVAIL, MIB - 64, VIRTQ_BAD_RING);
	start_refuses(f, QSIZE, DESC, AVAIL, 4 * MIB, VIRTQ_BAD_RING);
	/* Addresses that wrap when the ring's length is added. */
	start_refuses(f, QSIZE, UINT64_MAX - 15, AVAIL, USED, VIRTQ_BAD_RING);
	start_refuses(f, QSIZE, DESC, AVAIL, UINT64_MAX - 3, VIRTQ_BAD_RING);
	/* Exactly at the end of the second region is fine. */
	start_refuses(f, QSIZE, HIGH + MIB - 128, HIGH + MIB - 22, HIGH + MIB - 72, VIRTQ_OK);
}

static void a_chain_is_taken_and_returned(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0); /* empty */
	set_desc(f, DESC, 3, BUF, 16, F_NEXT, 5);
	set_desc(f, DESC, 5, HIGH + 100, 512, F_NEXT | F_WRITE, 0);
	set_desc(f, DESC, 0, BUF + 4096, 1, F_WRITE, 0);
	offer(f, 0, 3);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(why, VIRTQ_OK);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.nr_segs, 3);
	assert_ptr_equal(f->c.segs[0].host, gp(f, BUF));
	assert_false(f->c.segs[0].writable);
	assert_ptr_equal(f->c.segs[1].host, gp(f, HIGH + 100));
	assert_int_equal(f->c.segs[1].len, 512);
	assert_true(f->c.segs[2].writable);
	assert_int_equal(f->c.readable, 16);
	assert_int_equal(f->c.writable, 513);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0);

	assert_int_equal(virtq_push(&f->q, &f->c, 513), VIRTQ_OK);
	assert_int_equal(get16(f, USED + 2), 1);
	assert_int_equal(get32(f, USED + 4), 3);
	assert_int_equal(get32(f, USED + 8), 513);
	assert_true(virtq_should_interrupt(&f->q));
	assert_false(virtq_should_interrupt(&f->q)); /* nothing new since */

	/* The avail and used indexes wrap around the ring and past 65535. */
	for (unsigned n = 1; n < 70000; n++) {
		set_desc(f, DESC, n % QSIZE, BUF, 4, 0, 0);
		offer(f, n, (uint16_t)(n % QSIZE));
		assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
		assert_int_equal(f->c.head, n % QSIZE);
		assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
	}
	assert_int_equal(get16(f, USED + 2), (uint16_t)70000);
}

static void several_avail_entries_at_once(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	for (unsigned i = 0; i < QSIZE; i++) {
		set_desc(f, DESC, i, BUF + i, 1, F_WRITE, 0);
		set16(f, AVAIL + 4 + 2 * i, (uint16_t)(QSIZE - 1 - i));
	}
	set16(f, AVAIL + 2, QSIZE); /* exactly size ahead: allowed */
	for (unsigned i = 0; i < QSIZE; i++) {
		assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
		assert_int_equal(f->c.head, QSIZE - 1 - i);
	}
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0);
}

static void avail_idx_too_far_ahead(void **state)
{
	struct fixture *f = *state;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 1, 0, 0);
	set16(f, AVAIL + 2, QSIZE + 1);
	pop_fails(f, VIRTQ_BAD_AVAIL_IDX);
	/* Behind what was taken is as bad: 0xffff ahead. */
	restart(f, 0);
	set16(f, AVAIL + 2, 0xffff);
	pop_fails(f, VIRTQ_BAD_AVAIL_IDX);
}

static void head_out_of_range(void **state)
{
	struct fixture *f = *state;

	start(f, 0);
	offer(f, 0, QSIZE);
	pop_fails(f, VIRTQ_BAD_HEAD);
}

static void next_out_of_range(void **state)
{
	struct fixture *f = *state;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 1, F_NEXT, QSIZE);
	offer(f, 0, 0);
	pop_fails(f, VIRTQ_BAD_NEXT);
}

static void a_looping_chain_ends(void **state)
{
	struct fixture *f = *state;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 1, F_NEXT, 1);
	set_desc(f, DESC, 1, BUF, 1, F_NEXT, 0);
	offer(f, 0, 0);
	pop_fails(f, VIRTQ_CHAIN_TOO_LONG);
}

static void a_chain_of_exactly_size_is_fine(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		set_desc(f, DESC, i, BUF, 1, i < QSIZE - 1 ? F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(f->c.nr_segs, QSIZE);
}

static void buffer_outside_ram(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {4 * MIB, 1},	     /* in the hole */
	    {MIB - 8, 16},	     /* across the end of region 0 */
	    {HIGH - 8, 16},	     /* across the start of region 1 */
	    {UINT64_MAX - 7, 0x100}, /* wraps */
	    {HIGH + MIB, 0},	     /* just past the end */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		restart(f, 0);
		set_desc(f, DESC, 0, BUF, 4, F_NEXT, 1);
		set_desc(f, DESC, 1, bad[i].addr, bad[i].len, F_WRITE, 0);
		offer(f, 0, 0);
		pop_fails(f, VIRTQ_BAD_BUFFER);
	}
}

static void readable_after_writable(void **state)
{
	struct fixture *f = *state;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 4, F_WRITE | F_NEXT, 1);
	set_desc(f, DESC, 1, BUF, 4, 0, 0);
	offer(f, 0, 0);
	pop_fails(f, VIRTQ_READ_AFTER_WRITE);
}

static void an_indirect_table_is_walked(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 1ULL << VIRTIO_F_INDIRECT_DESC);
	set_desc(f, BUF, 0, BUF + 0x1000, 16, F_NEXT, 2);
	set_desc(f, BUF, 2, HIGH, 100, F_WRITE | F_NEXT, 1);
	set_desc(f, BUF, 1, HIGH + 200, 10, F_WRITE, 0);
	/* The WRITE flag of the indirect descriptor itself is ignored. */
	set_desc(f, DESC, 4, BUF, 3 * 16, F_INDIRECT | F_WRITE, 0);
	offer(f, 0, 4);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(f->c.head, 4);
	assert_int_equal(f->c.nr_segs, 3);
	assert_int_equal(f->c.readable, 16);
	assert_int_equal(f->c.writable, 110);
	assert_ptr_equal(f->c.segs[2].host, gp(f, HIGH + 200));
	/* A table at an odd address is fine (only its length is checked). */
	set_desc(f, BUF + 3, 0, BUF, 1, 0, 0);
	set_desc(f, DESC, 5, BUF + 3, 16, F_INDIRECT, 0);
	offer(f, 1, 5);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(f->c.nr_segs, 1);
}

/* The indirect descriptor at head 0 is (addr, len, flags); expect e. */
static void indirect_fails(struct fixture *f, uint64_t features, uint32_t len, uint16_t flags,
			   enum virtq_error e)
{
	restart(f, features);
	set_desc(f, DESC, 0, BUF, len, flags, 1);
	set_desc(f, DESC, 1, BUF + 0x2000, 1, F_WRITE, 0);
	offer(f, 0, 0);
	pop_fails(f, e);
}

static void bad_indirect_tables(void **state)
{
	struct fixture *f = *state;
	uint64_t ind = 1ULL << VIRTIO_F_INDIRECT_DESC;

	for (unsigned i = 0; i < 4; i++)
		set_desc(f, BUF, i, BUF + 0x1000, 1, 0, 0);
	indirect_fails(f, 0, 64, F_INDIRECT, VIRTQ_BAD_INDIRECT);	     /* not negotiated */
	indirect_fails(f, ind, 64, F_INDIRECT | F_NEXT, VIRTQ_BAD_INDIRECT); /* chained */
	indirect_fails(f, ind, 40, F_INDIRECT, VIRTQ_BAD_INDIRECT);	     /* len % 16 */
	indirect_fails(f, ind, 0, F_INDIRECT, VIRTQ_BAD_INDIRECT);	     /* empty */
	indirect_fails(f, ind, 16 * (VIRTQ_MAX_SIZE + 1), F_INDIRECT, VIRTQ_BAD_INDIRECT);
	/* The table itself outside RAM. */
	restart(f, ind);
	set_desc(f, DESC, 0, MIB - 16, 32, F_INDIRECT, 0);
	offer(f, 0, 0);
	pop_fails(f, VIRTQ_BAD_BUFFER);
	/* Nested: an indirect descriptor inside the table. */
	set_desc(f, BUF, 1, BUF, 16, F_INDIRECT, 0);
	set_desc(f, BUF, 0, BUF + 0x1000, 1, F_NEXT, 1);
	indirect_fails(f, ind, 32, F_INDIRECT, VIRTQ_BAD_INDIRECT);
	/* Not the head: after a direct descriptor. */
	restart(f, ind);
	set_desc(f, DESC, 0, BUF + 0x1000, 1, F_NEXT, 1);
	set_desc(f, DESC, 1, BUF + 0x3000, 16, F_INDIRECT, 0);
	set_desc(f, BUF + 0x3000, 0, BUF, 1, 0, 0);
	offer(f, 0, 0);
	pop_fails(f, VIRTQ_BAD_INDIRECT);
	/* Inside the table: next out of the table's range, and a loop. */
	set_desc(f, BUF, 0, BUF + 0x1000, 1, F_NEXT, 2);
	indirect_fails(f, ind, 32, F_INDIRECT, VIRTQ_BAD_NEXT);
	set_desc(f, BUF, 0, BUF + 0x1000, 1, F_NEXT, 1);
	set_desc(f, BUF, 1, BUF + 0x1000, 1, F_NEXT, 0);
	indirect_fails(f, ind, 32, F_INDIRECT, VIRTQ_CHAIN_TOO_LONG);
}

static void used_len_over_writable(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 8, F_NEXT, 1);
	set_desc(f, DESC, 1, BUF + 8, 8, F_WRITE, 0);
	offer(f, 0, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(virtq_push(&f->q, &f->c, 9), VIRTQ_BAD_USED_LEN);
	assert_int_equal(get16(f, USED + 2), 0); /* nothing published */
	assert_int_equal(virtq_push(&f->q, &f->c, 8), VIRTQ_OK);
	assert_int_equal(get16(f, USED + 2), 1);
}

static void no_interrupt_flag(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	set16(f, AVAIL, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	set_desc(f, DESC, 0, BUF, 8, F_WRITE, 0);
	offer(f, 0, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
	assert_false(virtq_should_interrupt(&f->q));
	set16(f, AVAIL, 0);
	offer(f, 1, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
	assert_true(virtq_should_interrupt(&f->q));
}

static void event_idx(void **state)
{
	struct fixture *f = *state;
	uint64_t used_event = AVAIL + 4 + 2 * QSIZE, avail_event = USED + 4 + 8 * QSIZE;
	enum virtq_error why;

	start(f, 1ULL << VIRTIO_F_EVENT_IDX);
	set16(f, avail_event, 0x5555);
	/* An empty ring asks to be notified at the next entry. */
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0);
	assert_int_equal(get16(f, avail_event), 0);
	set_desc(f, DESC, 0, BUF, 8, F_WRITE, 0);
	set16(f, used_event, 2); /* interrupt when used.idx passes 2 */
	for (unsigned n = 0; n < 3; n++) {
		offer(f, n, 0);
		assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
		assert_int_equal(get16(f, avail_event), n + 1);
		assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
		/* used.idx 1, 2: not yet; 3 went past 2. */
		assert_int_equal(virtq_should_interrupt(&f->q), n == 2);
	}
	/* A batch that jumps over used_event still interrupts once. */
	set16(f, used_event, 3);
	for (unsigned n = 3; n < 6; n++) {
		offer(f, n, 0);
		assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
		assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
	}
	assert_true(virtq_should_interrupt(&f->q));
	assert_false(virtq_should_interrupt(&f->q));
}

static void reset_and_broken_queues_are_left_alone(void **state)
{
	struct fixture *f = *state;
	enum virtq_error why;

	start(f, 0);
	set_desc(f, DESC, 0, BUF, 8, F_WRITE, 0);
	offer(f, 0, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 1);
	virtq_reset(&f->q);
	assert_false(f->q.started);
	assert_null(f->q.desc);
	assert_int_equal(virtq_pop(&f->q, &f->c, &why), 0);
	/* A chain pushed after the reset goes nowhere. */
	assert_int_equal(virtq_push(&f->q, &f->c, 0), VIRTQ_OK);
	assert_int_equal(get16(f, USED + 2), 0);
	assert_false(virtq_should_interrupt(&f->q));
}

static void every_error_has_words(void **state)
{
	for (int e = VIRTQ_OK; e <= VIRTQ_BAD_USED_LEN; e++) {
		assert_non_null(virtq_strerror(e));
		assert_null(strstr(virtq_strerror(e), "unknown"));
		for (int o = VIRTQ_OK; o < e; o++)
			assert_string_not_equal(virtq_strerror(e), virtq_strerror(o));
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(bad_sizes_are_refused),
	    T(bad_rings_are_refused),
	    T(a_chain_is_taken_and_returned),
	    T(several_avail_entries_at_once),
	    T(avail_idx_too_far_ahead),
	    T(head_out_of_range),
	    T(next_out_of_range),
	    T(a_looping_chain_ends),
	    T(a_chain_of_exactly_size_is_fine),
	    T(buffer_outside_ram),
	    T(readable_after_writable),
	    T(an_indirect_table_is_walked),
	    T(bad_indirect_tables),
	    T(used_len_over_writable),
	    T(no_interrupt_flag),
	    T(event_idx),
	    T(reset_and_broken_queues_are_left_alone),
	    T(every_error_has_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
