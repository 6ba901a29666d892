/*
 * The pure parts of hutch's VMM: bzImage header checks, the e820 map, the
 * ACPI tables (checksums, one LAPIC per vCPU), the size parser, guest
 * address bounds and the cpio writer for the run request.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <elf.h>

#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/bootparam.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/cpio.h"
#include "vmm/devices/devices.h"
#include "vmm/memory.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"

#define MIB ((uint64_t)1 << 20)

/* A minimal image that passes the checks: header fields as a 6.x kernel has them. */
static uint8_t *fake_bzimage(size_t len, uint16_t version, uint8_t xloadflags)
{
	uint8_t *img = calloc(1, len);
	struct setup_header h;

	memset(&h, 0, sizeof(h));
	h.setup_sects = 3;
	h.boot_flag = BOOT_FLAG_MAGIC;
	h.header = BOOT_HDR_MAGIC;
	h.version = version;
	h.loadflags = BOOT_LOADFLAG_LOADED_HIGH;
	h.xloadflags = xloadflags;
	h.initrd_addr_max = 0x7fffffff;
	h.cmdline_size = 2047;
	h.init_size = 16 * MIB;
	h.jump = 0x6aeb; /* byte 0x201 = 0x6a: header ends at 0x26c */
	memcpy(img + BOOT_SETUP_HEADER_OFFSET, &h, sizeof(h));
	return img;
}

static void bzimage_accepted(void **state)
{
	uint8_t *img = fake_bzimage(8192, 0x020f, BOOT_XLF_KERNEL_64);
	struct vmm_kernel k;
	struct error err;

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, 8192, &k, &err), 0);
	assert_int_equal(k.protocol, 0x020f);
	assert_int_equal(k.segments[0].offset, 4 * 512);
	assert_int_equal(k.nr_segments, 1);
	assert_int_equal(k.entry, 0x100200);
	assert_int_equal(k.segments[0].filesz, 8192 - 4 * 512);
	assert_int_equal(k.load_addr, 0x100000);
	assert_int_equal(k.cmdline_max, 2047);
	free(img);
}

static void bzimage_rejects_other_files(void **state)
{
	uint8_t junk[4096];
	struct vmm_kernel k;
	struct error err;

	memset(junk, 0x7f, sizeof(junk));
	assert_int_equal(vmm_arch_kernel_parse(junk, sizeof(junk), sizeof(junk), &k, &err), -1);
	assert_string_equal(err.msg, "not an ELF or bzImage kernel: no ELF magic, no 'HdrS' boot header");
	assert_int_equal(vmm_arch_kernel_parse(junk, 100, 100, &k, &err), -1);
	assert_string_equal(err.msg, "not an ELF or bzImage kernel: only 100 bytes");
}

static void bzimage_rejects_old_protocol(void **state)
{
	uint8_t *img = fake_bzimage(8192, 0x020a, BOOT_XLF_KERNEL_64);
	struct vmm_kernel k;
	struct error err;

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, 8192, &k, &err), -1);
	assert_string_equal(err.msg, "kernel uses boot protocol 2.10, hutch needs 2.12 or newer");
	free(img);
	img = fake_bzimage(8192, 0x020f, 0);
	assert_int_equal(vmm_arch_kernel_parse(img, 8192, 8192, &k, &err), -1);
	assert_string_equal(err.msg, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
	free(img);
	img = fake_bzimage(1024, 0x020f, BOOT_XLF_KERNEL_64);
	assert_int_equal(vmm_arch_kernel_parse(img, 1024, 1024, &k, &err), -1);
	assert_non_null(strstr(err.msg, "truncated bzImage"));
	free(img);
	/* Found by fuzz_kernel: a setup with 300 bytes after it, none at the entry point. */
	img = fake_bzimage(2348, 0x020f, BOOT_XLF_KERNEL_64);
	assert_int_equal(vmm_arch_kernel_parse(img, 2348, 2348, &k, &err), -1);
	assert_string_equal(err.msg,
			    "truncated bzImage: 300 bytes after its setup, none at its 64-bit entry point");
	free(img);
}

/*
 * A vmlinux-like ELF: segment 0 executable at 16 MiB (4 KiB of 0xc3 in the
 * file), segment 1 data at 18 MiB (100 bytes of 0x5a, 8 KiB in memory), a
 * PT_NOTE between them; entry at the start of segment 0, as Linux's is.
 */
#define ELF_LEN (0x3000)
static uint8_t *fake_elf(Elf64_Ehdr **eh, Elf64_Phdr **ph)
{
	uint8_t *img = calloc(1, ELF_LEN);
	Elf64_Ehdr *e = (Elf64_Ehdr *)img;
	Elf64_Phdr *p = (Elf64_Phdr *)(img + sizeof(*e));

	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_entry = 16 * MIB;
	e->e_phoff = sizeof(*e);
	e->e_phentsize = sizeof(*p);
	e->e_phnum = 3;
	p[0] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x1000,
			    .p_vaddr = 0xffffffff81000000ULL, .p_paddr = 16 * MIB, .p_filesz = 0x1000,
			    .p_memsz = 0x1000};
	p[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 0x1000, .p_paddr = 0, .p_filesz = 16,
			    .p_memsz = 16};
	p[2] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = 0x2000,
			    .p_vaddr = 0xffffffff81200000ULL, .p_paddr = 18 * MIB, .p_filesz = 100,
			    .p_memsz = 0x2000};
	memset(img + 0x1000, 0xc3, 0x1000);
	memset(img + 0x2000, 0x5a, 100);
	*eh = e;
	*ph = p;
	return img;
}

static void elf_kernel_accepted(void **state)
{
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *img = fake_elf(&eh, &ph);
	struct vmm_kernel k;
	struct error err;

	assert_int_equal(vmm_arch_kernel_parse(img, ELF_LEN, ELF_LEN, &k, &err), 0);
	assert_int_equal(k.format, VMM_KERNEL_ELF);
	assert_int_equal(k.nr_segments, 2);
	assert_int_equal(k.segments[0].offset, 0x1000);
	assert_int_equal(k.segments[0].gpa, 16 * MIB);
	assert_int_equal(k.segments[1].gpa, 18 * MIB);
	assert_int_equal(k.segments[1].filesz, 100);
	assert_int_equal(k.segments[1].memsz, 0x2000);
	assert_int_equal(k.entry, 16 * MIB);
	assert_int_equal(k.load_addr, 16 * MIB);
	assert_int_equal(k.init_size, 2 * MIB + 0x2000);
	assert_int_equal(k.cmdline_max, 2047);
	/* The kernel ends where its last segment does: the initrd may go right above. */
	assert_int_equal(vmm_arch_min_memory(&k, 0), 16 * MIB + 3 * MIB + 32 * MIB);
	free(img);
}

/* Parse img after change() broke it; expect the message that names the fault. */
static void elf_refused(void (*change)(Elf64_Ehdr *, Elf64_Phdr *), size_t len, const char *msg)
{
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *img = fake_elf(&eh, &ph);
	struct vmm_kernel k;
	struct error err;

	change(eh, ph);
	assert_int_equal(vmm_arch_kernel_parse(img, len, len, &k, &err), -1);
	if (!strstr(err.msg, msg))
		fail_msg("expected '%s', got '%s'", msg, err.msg);
	assert_null(strchr(err.msg, '\n'));
	free(img);
}

static void no_change(Elf64_Ehdr *e, Elf64_Phdr *p) {}
static void class32(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_ident[EI_CLASS] = ELFCLASS32; }
static void arm64(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_machine = EM_AARCH64; }
static void shared_object(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_type = ET_DYN; }
static void no_phdrs(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_phnum = 0; }
static void phdrs_past_end(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_phnum = 0xffff; }
static void phoff_huge(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_phoff = UINT64_MAX - 8; }
static void filesz_over_memsz(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_memsz = 99; }
static void segment_past_end(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_filesz = 0x1001; p[2].p_memsz = 0x2000; }
static void offset_wraps(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_offset = UINT64_MAX - 10; }
static void below_1mib(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_paddr = 0x7000; }
static void past_3gib(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_paddr = 0xc0000000ULL - 0x1000; }
static void paddr_wraps(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_paddr = UINT64_MAX - 0xfff; }
static void overlap(Elf64_Ehdr *e, Elf64_Phdr *p) { p[2].p_paddr = 16 * MIB + 0x800; }
static void no_load(Elf64_Ehdr *e, Elf64_Phdr *p) { p[0].p_type = p[2].p_type = PT_NOTE; }
static void virtual_entry(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_entry = 0xffffffff81000000ULL; }
static void entry_in_data(Elf64_Ehdr *e, Elf64_Phdr *p) { e->e_entry = 18 * MIB; }

static void elf_kernel_refusals_name_the_problem(void **state)
{
	elf_refused(no_change, 40, "truncated ELF kernel: only 40 bytes");
	elf_refused(class32, ELF_LEN, "ELF kernel is not for x86-64");
	elf_refused(arm64, ELF_LEN, "ELF kernel is not for x86-64");
	elf_refused(shared_object, ELF_LEN, "not an executable kernel (e_type 3)");
	elf_refused(no_phdrs, ELF_LEN, "program headers are missing or truncated");
	elf_refused(phdrs_past_end, ELF_LEN, "program headers are missing or truncated");
	elf_refused(phoff_huge, ELF_LEN, "program headers are missing or truncated");
	elf_refused(filesz_over_memsz, ELF_LEN, "segment 2 is larger in the file (100 bytes)");
	elf_refused(segment_past_end, ELF_LEN, "truncated ELF kernel: segment 2 lies past");
	elf_refused(no_change, 0x2000 + 99, "truncated ELF kernel: segment 2 lies past");
	elf_refused(offset_wraps, ELF_LEN, "truncated ELF kernel: segment 2 lies past");
	elf_refused(below_1mib, ELF_LEN, "segment 2 loads at 0x7000, below 1 MiB");
	elf_refused(past_3gib, ELF_LEN, "segment 2 reaches past 3 GiB");
	elf_refused(paddr_wraps, ELF_LEN, "segment 2 reaches past 3 GiB");
	elf_refused(overlap, ELF_LEN, "segments overlap at 0x1000800");
	elf_refused(no_load, ELF_LEN, "no loadable segment");
	elf_refused(virtual_entry, ELF_LEN, "entry point 0xffffffff81000000 is not in an executable");
	elf_refused(entry_in_data, ELF_LEN, "entry point 0x1200000 is not in an executable");
}

/* hutch reads the program headers from the file's head only; the segments may lie anywhere. */
static void elf_program_headers_must_be_in_the_head(void **state)
{
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *img = fake_elf(&eh, &ph);
	struct vmm_kernel k;
	struct error err;

	/* Segments past the head, headers in it: fine. */
	assert_int_equal(vmm_arch_kernel_parse(img, 0x1000, ELF_LEN, &k, &err), 0);
	assert_int_equal(k.segments[1].offset, 0x2000);
	eh->e_phoff = 0x1000;
	memcpy(img + 0x1000, ph, 3 * sizeof(*ph));
	assert_int_equal(vmm_arch_kernel_parse(img, 0x1000, ELF_LEN, &k, &err), -1);
	assert_string_equal(err.msg, "ELF kernel's program headers lie past its first 64 KiB");
	free(img);
}

static void elf_kernel_with_too_many_segments_is_refused(void **state)
{
	size_t n = VMM_KERNEL_MAX_SEGMENTS + 1, len = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr);
	uint8_t *img = calloc(1, len);
	Elf64_Ehdr *e = (Elf64_Ehdr *)img;
	Elf64_Phdr *p = (Elf64_Phdr *)(img + sizeof(*e));
	struct vmm_kernel k;
	struct error err;

	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_entry = 16 * MIB;
	e->e_phoff = sizeof(*e);
	e->e_phentsize = sizeof(*p);
	e->e_phnum = (uint16_t)n;
	for (size_t i = 0; i < n; i++)
		p[i] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_X,
				    .p_paddr = 16 * MIB + i * MIB, .p_memsz = 4096};
	assert_int_equal(vmm_arch_kernel_parse(img, len, len, &k, &err), -1);
	assert_string_equal(err.msg, "ELF kernel has more than 16 loadable segments");
	free(img);
}

/*
 * Segments go from the file to their physical addresses, the rest of each
 * zeroed; the zero page says HdrS. A file that shrank after its headers were
 * read is refused, not half loaded in silence. Both ways into guest RAM: a
 * plain read into RAM that is no memfd, and (memfd) the kernel's copy from
 * the file into the memfd, which the guest's mapping must then show.
 */
static void elf_kernel_loads(bool memfd)
{
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *img = fake_elf(&eh, &ph);
	uint64_t size = 64 * MIB;
	struct guest_region layout[VMM_MAX_REGIONS];
	char path[] = "/tmp/hutch-test-vmlinux.XXXXXX";
	int fd = mkstemp(path);
	struct vmm_kernel k;
	struct error err;
	struct vm vm;
	uint8_t zeros[0x2000 - 100];
	struct boot_params *zp;
	uint8_t *ram;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, ELF_LEN), ELF_LEN);
	memset(zeros, 0, sizeof(zeros));
	memset(&vm, 0, sizeof(vm));
	vm.nr_vcpus = 1;
	if (memfd) {
		unsigned n = vmm_arch_memory_layout(size, layout, VMM_MAX_REGIONS);

		assert_int_equal(guest_memory_init(&vm.mem, size, layout, n, &err), 0);
		assert_true(vm.mem.fd >= 0);
		ram = vm.mem.base;
	} else {
		ram = malloc(size);
		vm.mem.fd = -1;
		vm.mem.size = size;
		vm.mem.nr_regions = vmm_arch_memory_layout(size, vm.mem.regions, VMM_MAX_REGIONS);
		vm.mem.regions[0].host = ram;
	}
	zp = (struct boot_params *)(ram + X86_BOOT_PARAMS_ADDR);
	memset(ram, 0xee, size); /* not fresh: the loader must zero what it owes */
	/* Only the head in memory: the segments come from the file. */
	assert_int_equal(vmm_arch_kernel_parse(img, 0x1000, ELF_LEN, &k, &err), 0);
	memset(img + 0x1000, 0, ELF_LEN - 0x1000);
	assert_int_equal(vm_load_kernel_segments(&vm.mem, &k, fd, path, &err), 0);
	assert_int_equal(vmm_arch_boot_setup(&vm, &k, "console=ttyS1", 40 * MIB, 4096, &err), 0);
	for (size_t i = 0; i < 0x1000; i++)
		if (ram[16 * MIB + i] != 0xc3)
			fail_msg("segment 0 byte %zu", i);
	assert_int_equal(ram[18 * MIB + 99], 0x5a);
	assert_memory_equal(ram + 18 * MIB + 100, zeros, sizeof(zeros));
	assert_int_equal(ram[18 * MIB + 0x2000], 0xee); /* nothing past memsz */
	assert_int_equal(ram[17 * MIB], 0xee);	      /* nor between the segments */
	assert_int_equal(zp->hdr.boot_flag, BOOT_FLAG_MAGIC);
	assert_int_equal(zp->hdr.header, BOOT_HDR_MAGIC);
	assert_int_equal(zp->hdr.version, 0x020f);
	assert_int_equal(zp->hdr.type_of_loader, BOOT_TYPE_OF_LOADER_UNDEFINED);
	assert_int_equal(zp->hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	assert_string_equal((char *)ram + X86_CMDLINE_ADDR, "console=ttyS1");
	assert_int_equal(zp->hdr.ramdisk_image, 40 * MIB);
	assert_int_equal(zp->hdr.ramdisk_size, 4096);
	assert_int_equal(zp->sentinel, 0);
	assert_int_equal(zp->e820_entries, 3);
	assert_int_equal(zp->acpi_rsdp_addr, X86_ACPI_ADDR);

	assert_int_equal(ftruncate(fd, 0x2000 + 50), 0);
	assert_int_equal(vm_load_kernel_segments(&vm.mem, &k, fd, path, &err), -1);
	assert_non_null(strstr(err.msg, "got shorter while it was loaded"));
	/* Never outside RAM, whichever way. */
	errno = 0;
	assert_int_equal(guest_memory_read_file(&vm.mem, size - 10, fd, 0, 11), -1);
	assert_int_equal(errno, ERANGE);
	close(fd);
	unlink(path);
	if (memfd)
		guest_memory_release(&vm.mem);
	else
		free(ram);
	free(img);
}

static void elf_kernel_is_laid_out_with_a_zero_page(void **state)
{
	elf_kernel_loads(false);
}

static void elf_kernel_is_copied_into_the_memfd(void **state)
{
	elf_kernel_loads(true);
}

static uint64_t e820_sum(uint64_t size, unsigned *n_out, struct boot_e820_entry *t)
{
	struct guest_memory mem;
	uint64_t sum = 0;
	unsigned n;

	memset(&mem, 0, sizeof(mem));
	mem.size = size;
	mem.nr_regions = vmm_arch_memory_layout(size, mem.regions, VMM_MAX_REGIONS);
	n = x86_e820_build(&mem, t, E820_MAX_ENTRIES_ZEROPAGE);
	for (unsigned i = 0; i < n; i++) {
		sum += t[i].size;
		if (i)
			assert_true(t[i].addr >= t[i - 1].addr + t[i - 1].size);
	}
	*n_out = n;
	return sum;
}

static void e820_covers_exactly_guest_memory(void **state)
{
	struct boot_e820_entry t[E820_MAX_ENTRIES_ZEROPAGE];
	unsigned n;

	assert_int_equal(e820_sum(256 * MIB, &n, t), 256 * MIB);
	assert_int_equal(n, 3);
	assert_int_equal(t[1].type, E820_RESERVED); /* BIOS area, ACPI tables */
	assert_int_equal(t[2].addr, 0x100000);
	/* Above 3 GiB the rest goes above the 4 GiB MMIO hole. */
	assert_int_equal(e820_sum(5ULL << 30, &n, t), 5ULL << 30);
	assert_int_equal(n, 4);
	assert_int_equal(t[3].addr, 4ULL << 30);
	assert_int_equal(t[3].size, 2ULL << 30);
}

static void acpi_tables_have_valid_checksums_and_one_lapic_per_cpu(void **state)
{
	static uint8_t buf[0x20000];
	static const struct vm_services svc;
	struct device *pvpanic = pvpanic_create(&svc);
	const struct device *devs[] = {pvpanic};
	struct error err;
	long len = acpi_build(buf, sizeof(buf), 0xe0000, 4, devs, 1, &err);
	uint64_t xsdt, entries[2];
	uint32_t xsdt_len;

	assert_true(len > 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(buf, 20), 0);
	assert_int_equal(acpi_checksum(buf, 36), 0);
	memcpy(&xsdt, buf + 24, 8);
	xsdt -= 0xe0000;
	assert_memory_equal(buf + xsdt, "XSDT", 4);
	memcpy(&xsdt_len, buf + xsdt + 4, 4);
	assert_int_equal(xsdt_len, 36 + 16);
	assert_int_equal(acpi_checksum(buf + xsdt, xsdt_len), 0);
	memcpy(entries, buf + xsdt + 36, 16);
	for (int i = 0; i < 2; i++) {
		uint8_t *t = buf + entries[i] - 0xe0000;
		uint32_t tlen;
		memcpy(&tlen, t + 4, 4);
		assert_int_equal(acpi_checksum(t, tlen), 0);
		if (!memcmp(t, "FACP", 4)) {
			uint32_t flags;
			uint64_t dsdt;
			uint32_t dlen;
			assert_int_equal(tlen, 276);
			memcpy(&flags, t + 112, 4);
			assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
			memcpy(&dsdt, t + 140, 8);
			memcpy(&dlen, buf + dsdt - 0xe0000 + 4, 4);
			assert_memory_equal(buf + dsdt - 0xe0000, "DSDT", 4);
			assert_int_equal(acpi_checksum(buf + dsdt - 0xe0000, dlen), 0);
			assert_non_null(memmem(buf + dsdt - 0xe0000, dlen, "_S5_", 4));
			assert_non_null(memmem(buf + dsdt - 0xe0000, dlen, "QEMU0001", 8));
		} else {
			unsigned lapics = 0;
			assert_memory_equal(t, "APIC", 4);
			for (uint32_t off = 44; off < tlen; off += t[off + 1]) {
				assert_true(t[off + 1] >= 2);
				if (t[off] == 0) {
					assert_int_equal(t[off + 3], lapics); /* APIC id */
					lapics++;
				}
			}
			assert_int_equal(lapics, 4);
		}
	}
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xe0000, 0, devs, 1, &err), -1);
	assert_int_equal(acpi_build(buf, 64, 0xe0000, 1, devs, 1, &err), -1);
	device_free(pvpanic);
}

static void guest_ptr_checks_bounds_without_overflow(void **state)
{
	static uint8_t ram[8192];
	struct guest_memory mem;

	memset(&mem, 0, sizeof(mem));
	mem.nr_regions = 1;
	mem.regions[0] = (struct guest_region){.gpa = 0x1000, .size = sizeof(ram), .host = ram};
	assert_ptr_equal(guest_ptr(&mem, 0x1000, 16), ram);
	assert_ptr_equal(guest_ptr(&mem, 0x1000 + 8191, 1), ram + 8191);
	assert_null(guest_ptr(&mem, 0x1000 + 8191, 2));
	assert_null(guest_ptr(&mem, 0xfff, 1));
	assert_null(guest_ptr(&mem, 0x1000, UINT64_MAX));
	assert_null(guest_ptr(&mem, UINT64_MAX, 2));
}

static void initrd_goes_high_and_too_large_is_refused(void **state)
{
	uint8_t *img = fake_bzimage(8192, 0x020f, BOOT_XLF_KERNEL_64);
	struct guest_memory mem;
	struct vmm_kernel k;
	struct error err;
	uint64_t addr;

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, 8192, &k, &err), 0);
	memset(&mem, 0, sizeof(mem));
	mem.size = 128 * MIB;
	mem.nr_regions = vmm_arch_memory_layout(mem.size, mem.regions, VMM_MAX_REGIONS);
	assert_int_equal(vmm_arch_initrd_addr(&k, &mem, 4 * MIB + 1, &addr, &err), 0);
	assert_int_equal(addr % 4096, 0);
	assert_true(addr + 4 * MIB + 1 <= 128 * MIB);
	assert_int_equal(vmm_arch_initrd_addr(&k, &mem, 120 * MIB, &addr, &err), -1);
	assert_non_null(strstr(err.msg, "does not fit in 128 MiB of guest memory"));
	assert_true(vmm_arch_min_memory(&k, 10 * MIB) >= 16 * MIB + 16 * MIB + 20 * MIB);
	free(img);
}

/* Device windows and lines must not land on RAM, firmware or the fixed devices. */
static void the_device_space_is_clear_of_ram_and_fixed_hardware(void **state)
{
	struct vmm_device_space sp;
	struct guest_region r[VMM_MAX_REGIONS];
	unsigned n = vmm_arch_memory_layout(64ULL << 30, r, VMM_MAX_REGIONS);
	uint64_t end;

	vmm_arch_device_space(&sp);
	end = sp.mmio_base + sp.mmio_size;
	assert_true(sp.mmio_size > 0 && end > sp.mmio_base);
	for (unsigned i = 0; i < n; i++)
		assert_true(end <= r[i].gpa || r[i].gpa + r[i].size <= sp.mmio_base);
	assert_true(end <= X86_IOAPIC_ADDR && end <= X86_LAPIC_ADDR &&
		    end <= X86_IDENTITY_MAP_ADDR && end <= X86_TSS_ADDR);
	/* Above the ISA lines (the UARTs' 3 and 4, the PIT's 0), inside the IOAPIC's 24. */
	assert_true(sp.irq_first >= 16 && sp.irq_count > 0 && sp.irq_first + sp.irq_count <= 24);
}

static void cpio_newc_entries_are_aligned(void **state)
{
	struct cpio c;

	cpio_init(&c);
	cpio_add_dir(&c, "hutch", 0755);
	cpio_add_file(&c, "hutch/cmd", 0644, "run\0dumb\0true\0", 14);
	cpio_finish(&c);
	assert_memory_equal(c.buf, "070701", 6);
	assert_int_equal(c.len % 4, 0);
	/* Second entry starts at the next 4-byte boundary after "hutch\0". */
	assert_memory_equal(c.buf + 116, "070701", 6); /* 110-byte header + "hutch\0" */
	assert_non_null(memmem(c.buf, c.len, "hutch/cmd", 9));
	assert_non_null(memmem(c.buf, c.len, "run\0dumb\0true\0", 14));
	assert_non_null(memmem(c.buf, c.len, "TRAILER!!!", 10));
	cpio_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bzimage_accepted),
	    cmocka_unit_test(bzimage_rejects_other_files),
	    cmocka_unit_test(bzimage_rejects_old_protocol),
	    cmocka_unit_test(elf_kernel_accepted),
	    cmocka_unit_test(elf_kernel_refusals_name_the_problem),
	    cmocka_unit_test(elf_kernel_with_too_many_segments_is_refused),
	    cmocka_unit_test(elf_program_headers_must_be_in_the_head),
	    cmocka_unit_test(elf_kernel_is_laid_out_with_a_zero_page),
	    cmocka_unit_test(elf_kernel_is_copied_into_the_memfd),
	    cmocka_unit_test(e820_covers_exactly_guest_memory),
	    cmocka_unit_test(acpi_tables_have_valid_checksums_and_one_lapic_per_cpu),
	    cmocka_unit_test(guest_ptr_checks_bounds_without_overflow),
	    cmocka_unit_test(initrd_goes_high_and_too_large_is_refused),
	    cmocka_unit_test(cpio_newc_entries_are_aligned),
	    cmocka_unit_test(the_device_space_is_clear_of_ram_and_fixed_hardware),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
