/*
 * libFuzzer target: the kernel file a user names with `hutch vm run
 * --kernel` (vmm_arch_kernel_parse(): an ELF vmlinux or a bzImage). The
 * input is the whole file; the parser sees its first VMM_KERNEL_HEAD_MAX
 * bytes and its length, as vm_boot_prepare() gives them. A kernel that is
 * accepted must describe only what vm_load_kernel_segments() can load
 * safely (checked below), or the input counts as a crash.
 *
 *   make fuzz && build/tests/fuzz/fuzz_kernel tests/fuzz/corpus/kernel
 *
 * tests/run-all runs it for a bounded time; a crash it finds becomes a
 * case in tests/unit/test_vm_boot.c.
 */
#include <stdint.h>
#include <string.h>

#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/layout.h"
#include "fuzz.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t head_len = size < VMM_KERNEL_HEAD_MAX ? size : VMM_KERNEL_HEAD_MAX;
	struct vmm_kernel k;
	struct error err;
	bool entry_in = false;

	if (vmm_arch_kernel_parse(data, head_len, size, &k, &err) < 0) {
		/* Refusals are one line. */
		CHECK(err.msg[0] && !strchr(err.msg, '\n'));
		return 0;
	}
	CHECK(k.nr_segments >= 1 && k.nr_segments <= VMM_KERNEL_MAX_SEGMENTS);
	CHECK(k.head == data && k.head_len <= size && k.file_len == size);
	for (unsigned i = 0; i < k.nr_segments; i++) {
		const struct vmm_kernel_segment *s = &k.segments[i];

		/* Inside the file, and inside low RAM without wrapping. */
		CHECK(s->filesz <= s->memsz);
		CHECK(s->offset <= size && s->filesz <= size - s->offset);
		CHECK(s->gpa >= X86_HIGH_MEM);
		CHECK(s->memsz <= X86_MMIO_GAP_START && s->gpa <= X86_MMIO_GAP_START - s->memsz);
		/* Inside what the initrd placement keeps clear of. */
		CHECK(s->gpa >= k.load_addr && s->gpa + s->memsz <= k.load_addr + k.init_size ||
		      k.format == VMM_KERNEL_BZIMAGE);
		for (unsigned j = 0; j < i; j++)
			CHECK(s->gpa + s->memsz <= k.segments[j].gpa ||
			      k.segments[j].gpa + k.segments[j].memsz <= s->gpa);
		if (k.entry >= s->gpa && k.entry - s->gpa < s->memsz)
			entry_in = true;
	}
	CHECK(entry_in);
	CHECK(vmm_arch_min_memory(&k, 0) > k.load_addr);
	return 0;
}
