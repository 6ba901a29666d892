#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/devices/devices.h"
#include "vmm/device.h"
#include "common/banned.h"

/* ACPI 6.4, 5.2.5.3 */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(offsetof(struct acpi_rsdp, xsdt_address) == 24, "RSDP.XsdtAddress offset");

/* ACPI 6.4, 5.2.6 */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header size");

/* ACPI 6.4, 5.2.3.2 Generic Address Structure */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* ACPI 6.4, 5.2.9, Table 5.9 */
struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT.IAPC_BOOT_ARCH offset");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT.Flags offset");
_Static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT minor version offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT.X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT.SLEEP_CONTROL offset");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT hypervisor id");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT size");

/* Table 5.10 IA-PC boot architecture flags: no VGA, no CMOS RTC, and (bit 1 clear) no 8042. */
#define FADT_BOOT_NO_VGA (1u << 2)
#define FADT_BOOT_NO_CMOS_RTC (1u << 5)
/* Table 5.10 fixed feature flags. */
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* ACPI 6.4, 5.2.12 */
struct acpi_madt {
	struct acpi_header header;
	uint32_t local_apic_address;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");
#define MADT_PCAT_COMPAT 1

struct madt_local_apic {
	uint8_t type; /* 0 */
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_local_apic) == 8, "MADT LAPIC entry size");
#define MADT_LAPIC_ENABLED 1

struct madt_io_apic {
	uint8_t type; /* 1 */
	uint8_t length;
	uint8_t io_apic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_io_apic) == 12, "MADT IOAPIC entry size");

struct madt_irq_override {
	uint8_t type; /* 2 */
	uint8_t length;
	uint8_t bus;
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_irq_override) == 10, "MADT interrupt override size");

struct madt_lapic_nmi {
	uint8_t type; /* 4 */
	uint8_t length;
	uint8_t processor_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI entry size");

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)(0 - sum);
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, "HUTCH ", 6);
	memcpy(h->oem_table_id, "HUTCHVM ", 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "HTCH", 4);
	h->creator_revision = 1;
}

static void table_finish(uint8_t *table)
{
	struct acpi_header *h = (struct acpi_header *)table;

	h->checksum = 0;
	h->checksum = acpi_checksum(table, h->length);
}

/*
 * AML (ACPI 6.4 chapter 20): a PkgLength counts itself and what follows.
 * Writes the encoding of a package whose body is body_len bytes; returns its size.
 */
static size_t aml_pkglength(uint8_t *out, size_t body_len)
{
	size_t total = body_len + 1;

	if (total <= 0x3f) {
		out[0] = (uint8_t)total;
		return 1;
	}
	total = body_len + 2;
	if (total <= 0xfff) {
		out[0] = (uint8_t)(0x40 | (total & 0xf));
		out[1] = (uint8_t)(total >> 4);
		return 2;
	}
	total = body_len + 3;
	out[0] = (uint8_t)(0x80 | (total & 0xf));
	out[1] = (uint8_t)(total >> 4);
	out[2] = (uint8_t)(total >> 12);
	return 3;
}

/* out gets opcode bytes, a PkgLength and body; returns the size written. */
static size_t aml_package(uint8_t *out, const uint8_t *op, size_t op_len, const uint8_t *body,
			  size_t body_len)
{
	size_t n = op_len;

	memcpy(out, op, op_len);
	n += aml_pkglength(out + n, body_len);
	memcpy(out + n, body, body_len);
	return n + body_len;
}

#define AML_NAME_OP 0x08
#define AML_STRING_PREFIX 0x0d
#define AML_BYTE_PREFIX 0x0a
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_SCOPE_OP 0x10
#define AML_ZERO_OP 0x00

#define AML_DWORD_PREFIX 0x0c

/* Append n bytes to out at *len. */
static void aml_put(uint8_t *out, size_t *len, const void *p, size_t n)
{
	memcpy(out + *len, p, n);
	*len += n;
}

/* _HID: an EISA id ("PNP0501": three capitals, four hex digits) as a DWordConst, else a string. */
static int aml_hid(uint8_t *out, size_t *len, const char *hid)
{
	size_t n = strlen(hid);
	bool eisa = n == 7;

	for (size_t i = 0; eisa && i < 7; i++)
		eisa = i < 3 ? (hid[i] >= 'A' && hid[i] <= 'Z') : isxdigit((unsigned char)hid[i]);
	if (eisa) {
		unsigned v = (unsigned)(hid[0] - 0x40) << 10 | (unsigned)(hid[1] - 0x40) << 5 |
			     (unsigned)(hid[2] - 0x40);
		unsigned product = (unsigned)strtoul(hid + 3, NULL, 16);
		const uint8_t id[] = {AML_DWORD_PREFIX, (uint8_t)(v >> 8), (uint8_t)v,
				      (uint8_t)(product >> 8), (uint8_t)product};
		aml_put(out, len, id, sizeof(id));
		return 0;
	}
	/* A hardware id is 7 or 8 characters (ACPI 6.4, 6.1.5). */
	if (n < 7 || n > 8)
		return -1;
	out[(*len)++] = AML_STRING_PREFIX;
	aml_put(out, len, hid, n + 1);
	return 0;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * A device's resources (ACPI 6.4, 6.4): IO(Decode16, base, base, 1, len) for
 * each port range, Memory32Fixed(ReadWrite, base, len) for each MMIO range;
 * its line as IRQNoFlags() {irq} when it is an ISA one (0-15) on a port
 * device, as the UARTs always were, else as Interrupt(ResourceConsumer,
 * Edge, ActiveHigh, Exclusive) {irq}, as virtio-mmio drivers expect; the end
 * tag. Returns the length, or 0 if a range does not fit its descriptor.
 */
static size_t aml_resources(uint8_t *out, const struct device *dev)
{
	size_t r = 0;

	for (unsigned i = 0; i < dev->nr_ranges; i++) {
		const struct device_range *rg = &dev->ranges[i];

		if (rg->space == DEVICE_PIO) {
			if (rg->base > 0xffff || rg->len > 0xff)
				return 0;
			out[r] = 0x47;
			out[r + 1] = 0x01;
			put_le(out + r + 2, rg->base, 2);
			put_le(out + r + 4, rg->base, 2);
			out[r + 6] = 0x01;
			out[r + 7] = (uint8_t)rg->len;
			r += 8;
		} else {
			if (rg->base > UINT32_MAX || rg->len > UINT32_MAX - rg->base)
				return 0;
			out[r] = 0x86;
			put_le(out + r + 1, 9, 2);
			out[r + 3] = 0x01; /* read-write */
			put_le(out + r + 4, rg->base, 4);
			put_le(out + r + 8, rg->len, 4);
			r += 12;
		}
	}
	if (dev->irq >= 0 && dev->irq < 16 && dev->nr_ranges && dev->ranges[0].space == DEVICE_PIO) {
		out[r] = 0x22;
		put_le(out + r + 1, 1u << dev->irq, 2);
		r += 3;
	} else if (dev->irq >= 0) {
		out[r] = 0x89;
		put_le(out + r + 1, 6, 2);
		out[r + 3] = 0x03; /* consumer, edge-triggered, active-high, exclusive */
		out[r + 4] = 1;	   /* one interrupt */
		put_le(out + r + 5, (uint64_t)dev->irq, 4);
		r += 9;
	}
	out[r++] = 0x79;
	out[r++] = 0x00;
	return r;
}

/*
 * Device(NAME) { Name(_HID, hid) Name(_UID, uid) Name(_CRS, ResourceTemplate() {...}) }
 * from a device's ACPI description and its ranges and line. Returns the
 * length, or 0 if the description cannot be encoded.
 */
static size_t aml_device(uint8_t *out, const struct device *dev)
{
	static const uint8_t dev_op[] = {0x5b, 0x82}; /* DeviceOp */
	static const uint8_t buf_op[] = {AML_BUFFER_OP};
	uint8_t body[128], res[DEVICE_MAX_RANGES * 12 + 9 + 2], crs[sizeof(res) + 2];
	size_t b = 0, r, c = 0;

	if (strlen(dev->acpi.name) != 4)
		return 0;
	aml_put(body, &b, dev->acpi.name, 4);
	aml_put(body, &b, (const uint8_t[]){AML_NAME_OP, '_', 'H', 'I', 'D'}, 5);
	if (aml_hid(body, &b, dev->acpi.hid) < 0)
		return 0;
	aml_put(body, &b,
		(const uint8_t[]){AML_NAME_OP, '_', 'U', 'I', 'D', AML_BYTE_PREFIX, dev->acpi.uid},
		7);
	r = aml_resources(res, dev);
	if (r == 0)
		return 0;
	/* Buffer(size) { bytes }: BufferSize as a ByteConst, then the bytes. */
	crs[c++] = AML_BYTE_PREFIX;
	crs[c++] = (uint8_t)r;
	aml_put(crs, &c, res, r);
	aml_put(body, &b, (const uint8_t[]){AML_NAME_OP, '_', 'C', 'R', 'S'}, 5);
	b += aml_package(body + b, buf_op, 1, crs, c);
	return aml_package(out, dev_op, 2, body, b);
}

/* Most AML one device takes: DeviceOp, a PkgLength and the body of aml_device(). */
#define AML_DEVICE_MAX (2 + 2 + 128)
/* _S5_ (13 bytes), then ScopeOp, its PkgLength and the scope. */
#define DSDT_AML_MAX (13 + 1 + 3 + 5 + DSDT_MAX_DEVICES * AML_DEVICE_MAX)

/*
 * The DSDT's AML body into out (DSDT_AML_MAX bytes): the S5 state, then each
 * device that has an ACPI description, in the order they were added.
 * Returns its length, or 0 with err if a description cannot be encoded.
 */
static size_t dsdt_body(uint8_t *out, const struct device *const *devices, unsigned nr_devices,
			struct error *err)
{
	static const uint8_t s5_elems[] = {4,		AML_BYTE_PREFIX, 5,
					   AML_ZERO_OP, AML_ZERO_OP,	 AML_ZERO_OP};
	static const uint8_t s5_name[] = {AML_NAME_OP, '_', 'S', '5', '_'};
	static const uint8_t pkg_op[] = {AML_PACKAGE_OP};
	static const uint8_t scope_op[] = {AML_SCOPE_OP};
	uint8_t scope[5 + DSDT_MAX_DEVICES * AML_DEVICE_MAX];
	size_t n = 0, s = 0;

	if (nr_devices > DSDT_MAX_DEVICES)
		return error_set(err, 0, "the DSDT describes at most %d devices, not %u",
				 DSDT_MAX_DEVICES, nr_devices),
		       0;
	/* Name(_S5_, Package() {5, 0, 0, 0}): SLP_TYP 5 in our sleep control register. */
	aml_put(out, &n, s5_name, sizeof(s5_name));
	n += aml_package(out + n, pkg_op, 1, s5_elems, sizeof(s5_elems));

	/*
	 * The UARTs must be ACPI devices: in hardware-reduced mode Linux has no
	 * legacy PIC and so no ISA IRQs 0-15 unless firmware names their GSIs.
	 */
	aml_put(scope, &s, "\\_SB_", 5);
	for (unsigned i = 0; i < nr_devices; i++) {
		size_t d;

		if (!devices[i]->acpi.hid)
			continue;
		d = aml_device(scope + s, devices[i]);
		if (d == 0)
			return error_set(err, 0, "device '%s' has an ACPI description the DSDT cannot hold",
					 devices[i]->name),
			       0;
		s += d;
	}
	n += aml_package(out + n, scope_op, 1, scope, s);
	return n;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

long acpi_build(uint8_t *buf, size_t cap, uint64_t base, unsigned nr_cpus,
		const struct device *const *devices, unsigned nr_devices, struct error *err)
{
	size_t rsdp_off = 0, xsdt_off, fadt_off, madt_off, dsdt_off, end;
	size_t xsdt_len = sizeof(struct acpi_header) + 2 * sizeof(uint64_t);
	size_t madt_len = sizeof(struct acpi_madt) + nr_cpus * sizeof(struct madt_local_apic) +
			  sizeof(struct madt_io_apic) + sizeof(struct madt_irq_override) +
			  sizeof(struct madt_lapic_nmi);
	uint8_t aml[DSDT_AML_MAX];
	size_t aml_len = dsdt_body(aml, devices, nr_devices, err);
	size_t dsdt_len = sizeof(struct acpi_header) + aml_len;
	struct acpi_rsdp *rsdp;
	struct acpi_fadt *fadt;
	struct acpi_madt *madt;
	uint8_t *p;

	if (aml_len == 0)
		return -1;
	if (nr_cpus == 0 || nr_cpus > ACPI_MAX_CPUS)
		return error_set(err, 0, "the MADT describes 1 to %d vCPUs, not %u", ACPI_MAX_CPUS,
				 nr_cpus);
	xsdt_off = align8(rsdp_off + sizeof(struct acpi_rsdp));
	fadt_off = align8(xsdt_off + xsdt_len);
	madt_off = align8(fadt_off + sizeof(struct acpi_fadt));
	dsdt_off = align8(madt_off + madt_len);
	end = dsdt_off + dsdt_len;
	if (end > cap)
		return error_set(err, 0, "ACPI tables need %zu bytes, only %zu reserved", end, cap);
	memset(buf, 0, end);

	/* DSDT */
	header_init((struct acpi_header *)(buf + dsdt_off), "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(buf + dsdt_off + sizeof(struct acpi_header), aml, aml_len);
	table_finish(buf + dsdt_off);

	/* FADT, revision 6.4, hardware-reduced: no PM blocks, no SCI, sleep via registers. */
	fadt = (struct acpi_fadt *)(buf + fadt_off);
	header_init(&fadt->header, "FACP", sizeof(*fadt), 6);
	fadt->minor_version = 4;
	fadt->flags = FADT_HW_REDUCED_ACPI;
	fadt->iapc_boot_arch = FADT_BOOT_NO_VGA | FADT_BOOT_NO_CMOS_RTC;
	fadt->x_dsdt = base + dsdt_off;
	fadt->sleep_control_reg =
	    (struct acpi_gas){ACPI_GAS_SYSTEM_IO, 8, 0, ACPI_GAS_ACCESS_BYTE, ACPI_SLEEP_PORT};
	fadt->sleep_status_reg = fadt->sleep_control_reg;
	memcpy(&fadt->hypervisor_vendor_id, "HUTCHVM ", 8);
	table_finish(buf + fadt_off);

	/* MADT */
	madt = (struct acpi_madt *)(buf + madt_off);
	header_init(&madt->header, "APIC", (uint32_t)madt_len, 5);
	madt->local_apic_address = (uint32_t)X86_LAPIC_ADDR;
	/* KVM's in-kernel irqchip includes the dual 8259: Linux masks it when told it is there. */
	madt->flags = MADT_PCAT_COMPAT;
	p = buf + madt_off + sizeof(*madt);
	for (unsigned i = 0; i < nr_cpus; i++) {
		struct madt_local_apic lapic = {0, sizeof(lapic), (uint8_t)i, (uint8_t)i,
						MADT_LAPIC_ENABLED};
		memcpy(p, &lapic, sizeof(lapic));
		p += sizeof(lapic);
	}
	{
		struct madt_io_apic ioapic = {1, sizeof(ioapic), 0, 0, (uint32_t)X86_IOAPIC_ADDR,
					      0};
		/* KVM routes the PIT (ISA IRQ 0) to IOAPIC pin 2, as PCs do. */
		struct madt_irq_override iso = {2, sizeof(iso), 0, 0, 2, 0};
		/* LINT1 of every CPU is NMI (processor uid 0xff = all). */
		struct madt_lapic_nmi nmi = {4, sizeof(nmi), 0xff, 0, 1};

		memcpy(p, &ioapic, sizeof(ioapic));
		p += sizeof(ioapic);
		memcpy(p, &iso, sizeof(iso));
		p += sizeof(iso);
		memcpy(p, &nmi, sizeof(nmi));
	}
	table_finish(buf + madt_off);

	/* XSDT */
	header_init((struct acpi_header *)(buf + xsdt_off), "XSDT", (uint32_t)xsdt_len, 1);
	{
		uint64_t entries[2] = {base + fadt_off, base + madt_off};
		memcpy(buf + xsdt_off + sizeof(struct acpi_header), entries, sizeof(entries));
	}
	table_finish(buf + xsdt_off);

	/* RSDP, revision 2 (ACPI 2.0+): points at the XSDT only. */
	rsdp = (struct acpi_rsdp *)(buf + rsdp_off);
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, "HUTCH ", 6);
	rsdp->revision = 2;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = base + xsdt_off;
	rsdp->checksum = acpi_checksum(buf + rsdp_off, 20);
	rsdp->extended_checksum = acpi_checksum(buf + rsdp_off, sizeof(*rsdp));
	return (long)end;
}
