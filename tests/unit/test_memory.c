/*
 * Guest RAM (vmm/memory.c) is a memfd mapped shared: what the VMM writes
 * through guest_ptr() is in the file at the region's offset (so another
 * process mapping the fd sees the guest's RAM), the file is exactly the
 * guest's size and sealed so that nobody holding it can shrink or grow it.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/memory.h"

#define MIB (1ULL << 20)

/* Two regions with a hole between them, as x86 lays out RAM around its MMIO gap. */
static const struct guest_region layout[] = {
    {.gpa = 0, .size = 4 * MIB},
    {.gpa = 64 * MIB, .size = 2 * MIB},
};

static void ram_is_the_memfd_at_each_regions_offset(void **state)
{
	struct guest_memory mem;
	struct error err = {0};
	uint8_t *p, buf[5] = {0};
	struct stat st;

	assert_int_equal(guest_memory_init(&mem, 6 * MIB, layout, 2, &err), 0);
	assert_true(mem.fd >= 0);
	assert_int_equal(fstat(mem.fd, &st), 0);
	assert_int_equal(st.st_size, 6 * MIB);
	/* The second region starts in the file right after the first. */
	p = guest_ptr(&mem, 64 * MIB + 100, 5);
	assert_non_null(p);
	memcpy(p, "hello", 5);
	assert_int_equal(pread(mem.fd, buf, 5, 4 * MIB + 100), 5);
	assert_memory_equal(buf, "hello", 5);
	/* And the other way: a write to the file is what the guest reads. */
	assert_int_equal(pwrite(mem.fd, "x", 1, 7), 1);
	assert_int_equal(*(uint8_t *)guest_ptr(&mem, 7, 1), 'x');
	guest_memory_release(&mem);
	assert_null(mem.base);
	assert_int_equal(mem.fd, -1);
}

static void the_file_cannot_be_resized_or_unsealed(void **state)
{
	struct guest_memory mem;
	struct error err = {0};
	int seals;

	assert_int_equal(guest_memory_init(&mem, 6 * MIB, layout, 2, &err), 0);
	seals = fcntl(mem.fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_true(seals & F_SEAL_SEAL);
	assert_int_equal(ftruncate(mem.fd, MIB), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(mem.fd, 8 * MIB), -1);
	assert_int_equal(fcntl(mem.fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	/* Close-on-exec: a program hutch starts does not inherit guest RAM by accident. */
	assert_true(fcntl(mem.fd, F_GETFD) & FD_CLOEXEC);
	guest_memory_release(&mem);
}

static void a_layout_larger_than_the_memory_is_refused(void **state)
{
	struct guest_memory mem;
	struct error err = {0};

	assert_int_equal(guest_memory_init(&mem, 5 * MIB, layout, 2, &err), -1);
	assert_string_equal(err.msg, "the guest memory layout is larger than its memory");
	assert_null(mem.base);
	assert_int_equal(mem.fd, -1);
}

static void releasing_memory_never_set_up_closes_nothing(void **state)
{
	struct guest_memory mem;
	int p[2];

	/* A struct with no mapping (a fresh, zeroed struct vm has fd 0) owns no fd. */
	assert_int_equal(pipe(p), 0);
	memset(&mem, 0, sizeof(mem));
	mem.fd = p[0];
	guest_memory_release(&mem);
	assert_true(fcntl(p[0], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ram_is_the_memfd_at_each_regions_offset),
	    cmocka_unit_test(the_file_cannot_be_resized_or_unsealed),
	    cmocka_unit_test(a_layout_larger_than_the_memory_is_refused),
	    cmocka_unit_test(releasing_memory_never_set_up_closes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
