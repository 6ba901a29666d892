/*
 * The Linux x86 boot protocol structures (Documentation/arch/x86/boot.rst,
 * arch/x86/include/uapi/asm/bootparam.h). Only the fields hutch writes or
 * reads are named; the rest is padding whose offsets are asserted below.
 */
#ifndef HUTCH_VMM_ARCH_X86_64_BOOTPARAM_H
#define HUTCH_VMM_ARCH_X86_64_BOOTPARAM_H

#include <stddef.h>
#include <stdint.h>

#define BOOT_HDR_MAGIC 0x53726448u /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xaa55u
#define BOOT_LOADFLAG_LOADED_HIGH 0x01
#define BOOT_XLF_KERNEL_64 0x01
#define BOOT_TYPE_OF_LOADER_UNDEFINED 0xff

/* Where setup_header starts in the bzImage file and inside boot_params. */
#define BOOT_SETUP_HEADER_OFFSET 0x1f1

struct setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

#define SETUP_HDR_AT(field, off)                                                                   \
	_Static_assert(offsetof(struct setup_header, field) + BOOT_SETUP_HEADER_OFFSET == (off),   \
		       "setup_header." #field " offset")
SETUP_HDR_AT(boot_flag, 0x1fe);
SETUP_HDR_AT(header, 0x202);
SETUP_HDR_AT(version, 0x206);
SETUP_HDR_AT(type_of_loader, 0x210);
SETUP_HDR_AT(loadflags, 0x211);
SETUP_HDR_AT(code32_start, 0x214);
SETUP_HDR_AT(ramdisk_image, 0x218);
SETUP_HDR_AT(ramdisk_size, 0x21c);
SETUP_HDR_AT(cmd_line_ptr, 0x228);
SETUP_HDR_AT(initrd_addr_max, 0x22c);
SETUP_HDR_AT(kernel_alignment, 0x230);
SETUP_HDR_AT(xloadflags, 0x236);
SETUP_HDR_AT(cmdline_size, 0x238);
SETUP_HDR_AT(pref_address, 0x258);
SETUP_HDR_AT(init_size, 0x260);
SETUP_HDR_AT(kernel_info_offset, 0x268);
_Static_assert(sizeof(struct setup_header) == 0x26c - BOOT_SETUP_HEADER_OFFSET,
	       "setup_header size");

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_MAX_ENTRIES_ZEROPAGE 128

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry size");

/* The "zero page" handed to the kernel in RSI. */
struct boot_params {
	uint8_t screen_info[0x40];
	uint8_t apm_bios_info[0x14];
	uint8_t pad2[4];
	uint64_t tboot_addr;
	uint8_t ist_info[0x10];
	uint64_t acpi_rsdp_addr;
	uint8_t pad3[8];
	uint8_t hd0_info[16];
	uint8_t hd1_info[16];
	uint8_t sys_desc_table[0x10];
	uint8_t olpc_ofw_header[0x10];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t pad4[112];
	uint32_t cc_blob_address;
	uint8_t edid_info[0x80];
	uint8_t efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t e820_entries;
	uint8_t eddbuf_entries;
	uint8_t edd_mbr_sig_buf_entries;
	uint8_t kbd_status;
	uint8_t secure_boot;
	uint8_t pad5[2];
	uint8_t sentinel;
	uint8_t pad6[1];
	struct setup_header hdr;
	uint8_t pad7[0x290 - 0x1f1 - sizeof(struct setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct boot_e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE];
	uint8_t pad8[48];
	uint8_t eddbuf[6 * 82];
	uint8_t pad9[276];
} __attribute__((packed));

#define BOOT_PARAMS_AT(field, off)                                                                 \
	_Static_assert(offsetof(struct boot_params, field) == (off),                               \
		       "boot_params." #field " offset")
BOOT_PARAMS_AT(acpi_rsdp_addr, 0x070);
BOOT_PARAMS_AT(ext_ramdisk_image, 0x0c0);
BOOT_PARAMS_AT(ext_cmd_line_ptr, 0x0c8);
BOOT_PARAMS_AT(cc_blob_address, 0x13c);
BOOT_PARAMS_AT(e820_entries, 0x1e8);
BOOT_PARAMS_AT(sentinel, 0x1ef);
BOOT_PARAMS_AT(hdr, 0x1f1);
BOOT_PARAMS_AT(edd_mbr_sig_buffer, 0x290);
BOOT_PARAMS_AT(e820_table, 0x2d0);
BOOT_PARAMS_AT(eddbuf, 0xd00);
_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");

#endif
