#include <elf.h>
#include <inttypes.h>
#include <string.h>

#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/vm.h"
#include "common/banned.h"

#define MIB ((uint64_t)1 << 20)

unsigned vmm_arch_memory_layout(uint64_t size, struct guest_region *regions, unsigned max)
{
	unsigned n = 0;

	(void)max; /* two regions at most, VMM_MAX_REGIONS */
	regions[n++] = (struct guest_region){
	    .gpa = 0, .size = size < X86_MMIO_GAP_START ? size : X86_MMIO_GAP_START};
	if (size > X86_MMIO_GAP_START)
		regions[n++] = (struct guest_region){.gpa = X86_MMIO_GAP_END,
						     .size = size - X86_MMIO_GAP_START};
	return n;
}

void vmm_arch_device_space(struct vmm_device_space *space)
{
	*space = (struct vmm_device_space){
	    .irq_first = X86_DEVICE_IRQ_FIRST,
	    .irq_count = X86_DEVICE_IRQ_COUNT,
	    .mmio_base = X86_DEVICE_MMIO_BASE,
	    .mmio_size = X86_DEVICE_MMIO_SIZE,
	};
}

unsigned x86_e820_build(const struct guest_memory *mem, struct boot_e820_entry *table, unsigned cap)
{
	unsigned n = 0;

	if (cap < 4 || mem->nr_regions == 0 || mem->regions[0].size <= X86_HIGH_MEM)
		return 0;
	/*
	 * All of guest RAM appears in the map, so the guest sees exactly
	 * --memory: the BIOS area below 1 MiB is RAM marked reserved (the ACPI
	 * tables live there), everything else is usable.
	 */
	table[n++] = (struct boot_e820_entry){0, X86_EBDA_START, E820_RAM};
	table[n++] =
	    (struct boot_e820_entry){X86_EBDA_START, X86_HIGH_MEM - X86_EBDA_START, E820_RESERVED};
	table[n++] =
	    (struct boot_e820_entry){X86_HIGH_MEM, mem->regions[0].size - X86_HIGH_MEM, E820_RAM};
	for (unsigned i = 1; i < mem->nr_regions; i++)
		table[n++] =
		    (struct boot_e820_entry){mem->regions[i].gpa, mem->regions[i].size, E820_RAM};
	return n;
}

static int bzimage_parse(const uint8_t *image, size_t head_len, uint64_t len,
			 struct vmm_kernel *k, struct error *err)
{
	struct setup_header hdr;
	size_t setup_len;

	if (head_len < BOOT_SETUP_HEADER_OFFSET + sizeof(hdr))
		return error_set(err, 0, "not an ELF or bzImage kernel: only %zu bytes", head_len);
	memcpy(&hdr, image + BOOT_SETUP_HEADER_OFFSET, sizeof(hdr));
	if (hdr.boot_flag != BOOT_FLAG_MAGIC || hdr.header != BOOT_HDR_MAGIC)
		return error_set(err, 0, "not an ELF or bzImage kernel: no ELF magic, no 'HdrS' boot header");
	if (hdr.version < X86_MIN_BOOT_PROTOCOL)
		return error_set(err, 0,
				 "kernel uses boot protocol %u.%02u, hutch needs %u.%02u or newer",
				 hdr.version >> 8, hdr.version & 0xff, X86_MIN_BOOT_PROTOCOL >> 8,
				 X86_MIN_BOOT_PROTOCOL & 0xff);
	if (!(hdr.loadflags & BOOT_LOADFLAG_LOADED_HIGH))
		return error_set(err, 0, "not a bzImage kernel: a zImage loads below 1 MiB");
	if (!(hdr.xloadflags & BOOT_XLF_KERNEL_64))
		return error_set(err, 0, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
	/* boot.rst: setup_sects 0 means 4; the real-mode part includes the boot sector. */
	setup_len = ((size_t)(hdr.setup_sects ? hdr.setup_sects : 4) + 1) * 512;
	if (setup_len >= len)
		return error_set(err, 0, "truncated bzImage: %zu bytes of setup, %" PRIu64 " in all",
				 setup_len, len);
	/* boot.rst: the 64-bit entry point is 0x200 into the protected-mode part. */
	if (len - setup_len <= X86_BZIMAGE_ENTRY_64)
		return error_set(err, 0,
				 "truncated bzImage: %" PRIu64
				 " bytes after its setup, none at its 64-bit entry point",
				 len - setup_len);
	/* The protected-mode part goes to 1 MiB, decompresses itself and moves to 16 MiB. */
	k->format = VMM_KERNEL_BZIMAGE;
	k->segments[0] = (struct vmm_kernel_segment){.offset = setup_len,
						     .gpa = X86_HIGH_MEM,
						     .filesz = len - setup_len,
						     .memsz = len - setup_len};
	k->nr_segments = 1;
	k->entry = X86_HIGH_MEM + X86_BZIMAGE_ENTRY_64; /* startup_64 of the protected-mode part */
	k->protocol = hdr.version;
	k->load_addr = X86_HIGH_MEM;
	k->init_size = hdr.init_size;
	k->initrd_max = hdr.initrd_addr_max;
	k->cmdline_max = hdr.cmdline_size;
	if (k->init_size < len - setup_len)
		k->init_size = len - setup_len;
	return 0;
}

int vmm_arch_kernel_parse(const uint8_t *head, size_t head_len, uint64_t file_len,
			  struct vmm_kernel *k, struct error *err)
{
	int r;

	memset(k, 0, sizeof(*k));
	if (head_len > file_len)
		head_len = (size_t)file_len;
	if (head_len >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0)
		r = x86_elf_parse(head, head_len, file_len, k, err);
	else
		r = bzimage_parse(head, head_len, file_len, k, err);
	if (r < 0)
		return -1;
	k->head = head;
	k->head_len = head_len;
	k->file_len = file_len;
	if (k->cmdline_max >= X86_CMDLINE_MAX)
		k->cmdline_max = X86_CMDLINE_MAX - 1;
	return 0;
}

/* The first byte above what the kernel needs while it decompresses and starts. */
static uint64_t kernel_end(const struct vmm_kernel *k)
{
	uint64_t start = k->load_addr;

	/* A bzImage decompresses to its run address, at or above 16 MiB. */
	if (k->format == VMM_KERNEL_BZIMAGE && start < X86_KERNEL_MIN_RUN_ADDR)
		start = X86_KERNEL_MIN_RUN_ADDR;
	return start + k->init_size;
}

uint64_t vmm_arch_min_memory(const struct vmm_kernel *k, uint64_t initrd_len)
{
	/*
	 * The decompressed kernel, the initrd, the initramfs unpacked from it
	 * (as large again) and some 32 MiB for the kernel's own allocations.
	 */
	uint64_t need = kernel_end(k) + 2 * initrd_len + 32 * MIB;

	return (need + MIB - 1) & ~(MIB - 1);
}

int vmm_arch_initrd_addr(const struct vmm_kernel *k, const struct guest_memory *mem, uint64_t len,
			 uint64_t *addr, struct error *err)
{
	uint64_t top = mem->regions[0].size; /* initrds stay in low memory, below 3 GiB */
	uint64_t lowest = kernel_end(k);

	if (k->initrd_max && top > (uint64_t)k->initrd_max + 1)
		top = (uint64_t)k->initrd_max + 1;
	if (len > top || ((top - len) & ~0xfffULL) < lowest)
		return error_set(err, 0,
				 "an initrd of %llu MiB does not fit in %llu MiB of guest memory "
				 "next to the kernel",
				 (unsigned long long)((len + MIB - 1) / MIB),
				 (unsigned long long)(mem->size / MIB));
	*addr = (top - len) & ~0xfffULL;
	return 0;
}

static int setup_page_tables(struct guest_memory *mem, struct error *err)
{
	uint64_t *pml4 = guest_ptr(mem, X86_PML4_ADDR, 4096);
	uint64_t *pdpt = guest_ptr(mem, X86_PDPT_ADDR, 4096);
	uint64_t *pd = guest_ptr(mem, X86_PD_ADDR, 4096 * X86_PD_PAGES);

	if (!pml4 || !pdpt || !pd)
		return error_set(err, 0, "no guest memory for the boot page tables");
	/* Identity map of the first 4 GiB with 2 MiB pages: present, writable (and PS). */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT_ADDR | 0x3;
	for (unsigned i = 0; i < X86_PD_PAGES; i++)
		pdpt[i] = (X86_PD_ADDR + i * 4096ULL) | 0x3;
	for (unsigned i = 0; i < 512 * X86_PD_PAGES; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;
	return 0;
}

static int setup_gdt(struct guest_memory *mem, struct error *err)
{
	/* boot.rst 64-bit protocol: __BOOT_CS is 0x10, __BOOT_DS is 0x18. */
	static const uint64_t gdt[] = {
	    0,
	    0,
	    0x00af9b000000ffffULL, /* 0x10: 64-bit code, present, DPL 0 */
	    0x00cf93000000ffffULL, /* 0x18: flat data */
	    0x00008b0000000067ULL, /* 0x20: busy TSS, so that TR is valid */
	};
	void *p = guest_ptr(mem, X86_GDT_ADDR, sizeof(gdt));

	if (!p)
		return error_set(err, 0, "no guest memory for the GDT");
	memcpy(p, gdt, sizeof(gdt));
	return 0;
}

int vmm_arch_boot_setup(struct vm *vm, const struct vmm_kernel *k, const char *cmdline,
			uint64_t initrd_addr, uint64_t initrd_len, struct error *err)
{
	struct guest_memory *mem = &vm->mem;
	struct boot_params *zp = guest_ptr(mem, X86_BOOT_PARAMS_ADDR, sizeof(*zp));
	size_t cmdline_len = strlen(cmdline);
	char *cl = guest_ptr(mem, X86_CMDLINE_ADDR, cmdline_len + 1);
	uint8_t *acpi = guest_ptr(mem, X86_ACPI_ADDR, X86_ACPI_MAX);
	size_t hdr_len;
	long acpi_len;

	if (!zp || !cl || !acpi)
		return error_set(err, 0, "guest memory too small for the kernel");
	if (cmdline_len > k->cmdline_max)
		return error_set(err, 0, "kernel command line is %zu bytes, the kernel takes %llu",
				 cmdline_len, (unsigned long long)k->cmdline_max);
	memcpy(cl, cmdline, cmdline_len + 1);

	memset(zp, 0, sizeof(*zp));
	if (k->format == VMM_KERNEL_BZIMAGE) {
		/* boot.rst: copy the setup header as the kernel ships it, 0x202 + byte at 0x201 long. */
		hdr_len = 0x202 + (size_t)k->head[0x201] - BOOT_SETUP_HEADER_OFFSET;
		if (hdr_len > sizeof(zp->hdr))
			hdr_len = sizeof(zp->hdr);
		memcpy(&zp->hdr, k->head + BOOT_SETUP_HEADER_OFFSET, hdr_len);
	} else {
		/*
		 * A vmlinux has no setup header: the fields a boot loader
		 * would find in one, as Firecracker writes them. Linux's
		 * startup_64 reads only what follows.
		 */
		zp->hdr.boot_flag = BOOT_FLAG_MAGIC;
		zp->hdr.header = BOOT_HDR_MAGIC;
		zp->hdr.version = X86_ELF_BOOT_PROTOCOL;
		zp->hdr.loadflags = BOOT_LOADFLAG_LOADED_HIGH;
		zp->hdr.kernel_alignment = X86_KERNEL_MIN_RUN_ADDR;
		zp->hdr.cmdline_size = (uint32_t)k->cmdline_max;
	}
	zp->hdr.type_of_loader = BOOT_TYPE_OF_LOADER_UNDEFINED;
	zp->hdr.vid_mode = 0xffff; /* "normal" */
	zp->hdr.cmd_line_ptr = X86_CMDLINE_ADDR;
	zp->hdr.ramdisk_image = (uint32_t)initrd_addr;
	zp->hdr.ramdisk_size = (uint32_t)initrd_len;
	zp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
	zp->ext_ramdisk_size = (uint32_t)(initrd_len >> 32);
	zp->e820_entries = (uint8_t)x86_e820_build(mem, zp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (!zp->e820_entries)
		return error_set(err, 0, "guest memory too small for an e820 map");

	acpi_len = acpi_build(acpi, X86_ACPI_MAX, X86_ACPI_ADDR, vm->nr_vcpus,
			      (const struct device *const *)vm->devices, vm->nr_devices, err);
	if (acpi_len < 0)
		return -1;
	/* Read since protocol 2.14; older kernels find the RSDP by scanning 0xe0000. */
	zp->acpi_rsdp_addr = X86_ACPI_ADDR;

	if (setup_gdt(mem, err) < 0 || setup_page_tables(mem, err) < 0)
		return -1;
	return 0;
}

const char *vmm_arch_default_cmdline(void)
{
	/*
	 * console on ttyS1 (stderr); reboot through the i8042 so hutch sees it; panic
	 * reboots at once (pvpanic has told hutch already); two UARTs only, no
	 * PCI and no i8042 probing: nothing probes ports hutch does not emulate.
	 */
	return "console=ttyS1 reboot=k panic=-1 pci=off 8250.nr_uarts=2 i8042.noaux i8042.nomux "
	       "i8042.dumbkbd i8042.nopnp";
}
