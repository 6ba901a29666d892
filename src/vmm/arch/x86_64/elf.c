/*
 * Uncompressed ELF kernels: Linux's vmlinux, as Firecracker and Cloud
 * Hypervisor boot it. Each PT_LOAD segment goes to its physical address
 * (p_paddr) and the boot vCPU starts at e_entry in 64-bit mode with RSI
 * pointing at the zero page, the 64-bit boot protocol's entry state: the
 * kernel's own startup_64, with no decompressor in front of it.
 *
 * Everything here is read from a file the user named; every field is
 * checked before anything is loaded, and each check names what is wrong.
 */
#include <elf.h>
#include <inttypes.h>
#include <string.h>

#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/layout.h"
#include "common/banned.h"

/* Linux's COMMAND_LINE_SIZE on x86, less its NUL: what a vmlinux takes. */
#define ELF_CMDLINE_MAX 2047
/* The initrd_addr_max every x86-64 bzImage declares. */
#define ELF_INITRD_MAX 0x7fffffffu

static int add_segment(struct vmm_kernel *k, const Elf64_Phdr *ph, uint64_t file_len,
		       unsigned index, struct error *err)
{
	uint64_t end;

	if (ph->p_filesz > ph->p_memsz)
		return error_set(err, 0,
				 "ELF kernel segment %u is larger in the file (%" PRIu64
				 " bytes) than in memory (%" PRIu64 ")",
				 index, (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (ph->p_offset > file_len || ph->p_filesz > file_len - ph->p_offset)
		return error_set(err, 0, "truncated ELF kernel: segment %u lies past the file's end",
				 index);
	if (ph->p_paddr < X86_HIGH_MEM)
		return error_set(err, 0,
				 "ELF kernel segment %u loads at 0x%" PRIx64
				 ", below 1 MiB, where hutch puts the boot tables",
				 index, (uint64_t)ph->p_paddr);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end) || end > X86_MMIO_GAP_START)
		return error_set(err, 0, "ELF kernel segment %u reaches past 3 GiB, the top of low RAM",
				 index);
	for (unsigned i = 0; i < k->nr_segments; i++) {
		const struct vmm_kernel_segment *s = &k->segments[i];

		if (ph->p_paddr < s->gpa + s->memsz && s->gpa < end)
			return error_set(err, 0, "ELF kernel segments overlap at 0x%" PRIx64,
					 (uint64_t)(ph->p_paddr > s->gpa ? ph->p_paddr : s->gpa));
	}
	if (k->nr_segments == VMM_KERNEL_MAX_SEGMENTS)
		return error_set(err, 0, "ELF kernel has more than %u loadable segments",
				 VMM_KERNEL_MAX_SEGMENTS);
	k->segments[k->nr_segments++] = (struct vmm_kernel_segment){
	    .offset = ph->p_offset,
	    .gpa = ph->p_paddr,
	    .filesz = ph->p_filesz,
	    .memsz = ph->p_memsz,
	};
	return 0;
}

int x86_elf_parse(const uint8_t *head, size_t head_len, uint64_t file_len, struct vmm_kernel *k,
		  struct error *err)
{
	Elf64_Ehdr eh;
	uint64_t lowest = UINT64_MAX, highest = 0;
	bool entry_ok = false;

	if (head_len < sizeof(eh))
		return error_set(err, 0, "truncated ELF kernel: only %zu bytes", head_len);
	memcpy(&eh, head, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return error_set(err, 0, "ELF kernel is not for x86-64 (64-bit, little-endian)");
	if (eh.e_type != ET_EXEC)
		return error_set(err, 0, "ELF file is not an executable kernel (e_type %u)",
				 (unsigned)eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > file_len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > file_len - eh.e_phoff)
		return error_set(err, 0, "ELF kernel's program headers are missing or truncated");
	/* Linux's follow the ELF header; hutch reads no further than the head for them. */
	if (eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > head_len)
		return error_set(err, 0, "ELF kernel's program headers lie past its first %d KiB",
				 VMM_KERNEL_HEAD_MAX / 1024);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, head + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (add_segment(k, &ph, file_len, i, err) < 0)
			return -1;
		if (ph.p_paddr < lowest)
			lowest = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > highest)
			highest = ph.p_paddr + ph.p_memsz;
		/* The entry point must be code that the file provides. */
		if ((ph.p_flags & PF_X) && eh.e_entry >= ph.p_paddr &&
		    eh.e_entry - ph.p_paddr < ph.p_filesz)
			entry_ok = true;
	}
	if (k->nr_segments == 0)
		return error_set(err, 0, "ELF kernel has no loadable segment");
	if (!entry_ok)
		return error_set(err, 0,
				 "ELF kernel's entry point 0x%" PRIx64
				 " is not in an executable segment's physical range",
				 (uint64_t)eh.e_entry);
	k->format = VMM_KERNEL_ELF;
	k->entry = eh.e_entry;
	k->protocol = X86_ELF_BOOT_PROTOCOL;
	k->load_addr = lowest;
	k->init_size = highest - lowest;
	k->initrd_max = ELF_INITRD_MAX;
	k->cmdline_max = ELF_CMDLINE_MAX;
	return 0;
}
