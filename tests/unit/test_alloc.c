/*
 * The VM's interrupt-line and MMIO-window allocators (vmm/alloc.c): lines in
 * order until the range is used up, windows aligned, never overlapping,
 * never past the end of the window, and no overflow with sizes and
 * alignments near 2^64 (a device's size may one day come from a config).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/alloc.h"

static void lines_come_in_order_until_none_are_left(void **state)
{
	struct irq_alloc a;
	struct error err = {0};
	unsigned irq = 0;

	irq_alloc_init(&a, 16, 3);
	for (unsigned want = 16; want < 19; want++) {
		assert_int_equal(irq_alloc(&a, "virtio-blk", &irq, &err), 0);
		assert_int_equal(irq, want);
	}
	irq = 99;
	assert_int_equal(irq_alloc(&a, "virtio-rng", &irq, &err), -1);
	assert_string_equal(err.msg, "no interrupt line left for virtio-rng");
	assert_int_equal(irq, 99);
	/* Still empty on the next call: the failure does not wrap anything. */
	assert_int_equal(irq_alloc(&a, "virtio-rng", &irq, &err), -1);
}

static void an_empty_range_has_no_lines(void **state)
{
	struct irq_alloc a;
	struct error err = {0};
	unsigned irq;

	irq_alloc_init(&a, 5, 0);
	assert_int_equal(irq_alloc(&a, "x", &irq, &err), -1);
}

static void windows_are_aligned_and_disjoint(void **state)
{
	struct mmio_alloc a;
	struct error err = {0};
	uint64_t w1, w2, w3;

	mmio_alloc_init(&a, 0xd0000000, 0x10000);
	assert_int_equal(mmio_alloc(&a, "a", 0x200, 0x1000, &w1, &err), 0);
	assert_int_equal(w1, 0xd0000000);
	/* The next one starts at the next 4 KiB boundary, not right after a's 0x200 bytes. */
	assert_int_equal(mmio_alloc(&a, "b", 0x200, 0x1000, &w2, &err), 0);
	assert_int_equal(w2, 0xd0001000);
	assert_int_equal(mmio_alloc(&a, "c", 0x10, 1, &w3, &err), 0);
	assert_int_equal(w3, 0xd0001200);
}

static void the_window_end_is_a_hard_limit(void **state)
{
	struct mmio_alloc a;
	struct error err = {0};
	uint64_t w = 0;

	mmio_alloc_init(&a, 0xd0000000, 0x2000);
	assert_int_equal(mmio_alloc(&a, "a", 0x1000, 0x1000, &w, &err), 0);
	/* Exactly the room that is left fits; one byte more does not. */
	assert_int_equal(mmio_alloc(&a, "b", 0x1001, 0x1000, &w, &err), -1);
	assert_string_equal(err.msg, "no MMIO space left for b (4097 bytes)");
	assert_int_equal(mmio_alloc(&a, "b", 0x1000, 0x1000, &w, &err), 0);
	assert_int_equal(w, 0xd0001000);
	assert_int_equal(mmio_alloc(&a, "c", 1, 1, &w, &err), -1);
}

static void alignment_past_the_end_is_refused(void **state)
{
	struct mmio_alloc a;
	struct error err = {0};
	uint64_t w = 0;

	/* Rounding 0xd0000001 up to 1 GiB lands at 0x100000000, outside the window. */
	mmio_alloc_init(&a, 0xd0000000, 0x10000000);
	assert_int_equal(mmio_alloc(&a, "a", 1, 1, &w, &err), 0);
	assert_int_equal(mmio_alloc(&a, "b", 0x1000, 1ULL << 30, &w, &err), -1);
}

static void sizes_and_alignments_near_2_64_do_not_wrap(void **state)
{
	struct mmio_alloc a;
	struct error err = {0};
	uint64_t w = 0;

	mmio_alloc_init(&a, 0xfffffffffff00000ULL, 0xff000);
	assert_int_equal(mmio_alloc(&a, "a", UINT64_MAX, 1, &w, &err), -1);
	assert_int_equal(mmio_alloc(&a, "a", 0x1000, 1ULL << 63, &w, &err), -1);
	assert_int_equal(mmio_alloc(&a, "a", 0x100, 0x1000, &w, &err), 0);
	assert_int_equal(w, 0xfffffffffff00000ULL);
	assert_int_equal(mmio_alloc(&a, "b", UINT64_MAX - 0x1000, 1, &w, &err), -1);
}

static void bad_requests_are_refused(void **state)
{
	struct mmio_alloc a;
	struct error err = {0};
	uint64_t w = 0;

	mmio_alloc_init(&a, 0xd0000000, 0x10000);
	assert_int_equal(mmio_alloc(&a, "a", 0, 1, &w, &err), -1);
	assert_string_equal(err.msg, "a asks for an MMIO window of 0 bytes aligned to 1");
	assert_int_equal(mmio_alloc(&a, "a", 0x100, 0, &w, &err), -1);
	assert_int_equal(mmio_alloc(&a, "a", 0x100, 0x3000, &w, &err), -1);
	/* None of that used any of the window. */
	assert_int_equal(mmio_alloc(&a, "a", 0x10000, 1, &w, &err), 0);
	assert_int_equal(w, 0xd0000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lines_come_in_order_until_none_are_left),
	    cmocka_unit_test(an_empty_range_has_no_lines),
	    cmocka_unit_test(windows_are_aligned_and_disjoint),
	    cmocka_unit_test(the_window_end_is_a_hard_limit),
	    cmocka_unit_test(alignment_past_the_end_is_refused),
	    cmocka_unit_test(sizes_and_alignments_near_2_64_do_not_wrap),
	    cmocka_unit_test(bad_requests_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
