/*
 * The pure parts of hutch's VMM: bzImage header checks, the e820 map, the
 * ACPI tables (checksums, one LAPIC per vCPU), the size parser, guest
 * address bounds and the cpio writer for the run request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/bootparam.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/cpio.h"
#include "vmm/devices/devices.h"
#include "vmm/memory.h"
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

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, &k, &err), 0);
	assert_int_equal(k.protocol, 0x020f);
	assert_ptr_equal(k.payload, img + 4 * 512);
	assert_int_equal(k.payload_len, 8192 - 4 * 512);
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
	assert_int_equal(vmm_arch_kernel_parse(junk, sizeof(junk), &k, &err), -1);
	assert_string_equal(err.msg, "not a bzImage kernel: no 'HdrS' boot header");
	assert_int_equal(vmm_arch_kernel_parse(junk, 100, &k, &err), -1);
	assert_string_equal(err.msg, "not a bzImage kernel: only 100 bytes");
}

static void bzimage_rejects_old_protocol(void **state)
{
	uint8_t *img = fake_bzimage(8192, 0x020a, BOOT_XLF_KERNEL_64);
	struct vmm_kernel k;
	struct error err;

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, &k, &err), -1);
	assert_string_equal(err.msg, "kernel uses boot protocol 2.10, hutch needs 2.12 or newer");
	free(img);
	img = fake_bzimage(8192, 0x020f, 0);
	assert_int_equal(vmm_arch_kernel_parse(img, 8192, &k, &err), -1);
	assert_string_equal(err.msg, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
	free(img);
	img = fake_bzimage(1024, 0x020f, BOOT_XLF_KERNEL_64);
	assert_int_equal(vmm_arch_kernel_parse(img, 1024, &k, &err), -1);
	assert_non_null(strstr(err.msg, "truncated bzImage"));
	free(img);
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

	assert_int_equal(vmm_arch_kernel_parse(img, 8192, &k, &err), 0);
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
	    cmocka_unit_test(e820_covers_exactly_guest_memory),
	    cmocka_unit_test(acpi_tables_have_valid_checksums_and_one_lapic_per_cpu),
	    cmocka_unit_test(guest_ptr_checks_bounds_without_overflow),
	    cmocka_unit_test(initrd_goes_high_and_too_large_is_refused),
	    cmocka_unit_test(cpio_newc_entries_are_aligned),
	    cmocka_unit_test(the_device_space_is_clear_of_ram_and_fixed_hardware),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
