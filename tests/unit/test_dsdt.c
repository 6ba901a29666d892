/*
 * The DSDT is generated from the registered devices (arch/x86_64/acpi.c):
 * each device with an ACPI description becomes a Device() whose _CRS is
 * made from its ranges and line. The machine's fixed devices must give the
 * very bytes the hand-written DSDT had (the guest's drivers bind as
 * before); a virtio-mmio device must come out as LNRO0005 with
 * Memory32Fixed and Interrupt; what cannot be encoded is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/arch/x86_64/acpi.h"
#include "vmm/device.h"
#include "vmm/devices/devices.h"
#include "vmm/devices/serial.h"

static uint8_t buf[0x20000];

/* The DSDT's AML (after its 36-byte header) in the tables acpi_build() made. */
static const uint8_t *dsdt_aml(long len, uint32_t *aml_len)
{
	uint64_t dsdt;
	uint32_t dlen;

	assert_true(len > 0);
	/* FADT.X_DSDT: the FADT is the XSDT's first entry. */
	{
		uint64_t xsdt, fadt;
		memcpy(&xsdt, buf + 24, 8);
		memcpy(&fadt, buf + (xsdt - 0xe0000) + 36, 8);
		memcpy(&dsdt, buf + (fadt - 0xe0000) + 140, 8);
	}
	assert_memory_equal(buf + dsdt - 0xe0000, "DSDT", 4);
	memcpy(&dlen, buf + dsdt - 0xe0000 + 4, 4);
	assert_int_equal(acpi_checksum(buf + dsdt - 0xe0000, dlen), 0);
	*aml_len = dlen - 36;
	return buf + dsdt - 0xe0000 + 36;
}

static const struct vm_services svc;

/* The AML of the DSDT hutch wrote by hand before it was generated (COM1, COM2, pvpanic). */
static const uint8_t fixed_devices_aml[] = {
    0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00,
    0x00, 0x10, 0x43, 0x09, 0x5c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x2c,
    0x43, 0x4f, 0x4d, 0x31, 0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0,
    0x05, 0x01, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x0a, 0x01, 0x08, 0x5f, 0x43,
    0x52, 0x53, 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03,
    0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00, 0x5b, 0x82, 0x2c, 0x43, 0x4f,
    0x4d, 0x32, 0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x05, 0x01,
    0x08, 0x5f, 0x55, 0x49, 0x44, 0x0a, 0x02, 0x08, 0x5f, 0x43, 0x52, 0x53,
    0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x02, 0xf8, 0x02, 0x01, 0x08,
    0x22, 0x08, 0x00, 0x79, 0x00, 0x5b, 0x82, 0x2e, 0x50, 0x45, 0x56, 0x54,
    0x08, 0x5f, 0x48, 0x49, 0x44, 0x0d, 0x51, 0x45, 0x4d, 0x55, 0x30, 0x30,
    0x30, 0x31, 0x00, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x0a, 0x00, 0x08, 0x5f,
    0x43, 0x52, 0x53, 0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0x05, 0x05, 0x05,
    0x05, 0x01, 0x01, 0x79, 0x00,
};

static void the_fixed_devices_give_the_dsdt_they_always_had(void **state)
{
	struct device *devs[] = {
	    serial_create(&svc, SERIAL_COM1_BASE, SERIAL_COM1_IRQ, -1, "ttyS0"),
	    serial_create(&svc, SERIAL_COM2_BASE, SERIAL_COM2_IRQ, -1, "ttyS1"),
	    ctlport_create(&svc),
	    pvpanic_create(&svc),
	    i8042_create(&svc),
	    acpi_pm_create(&svc),
	};
	struct error err = {0};
	uint32_t aml_len;
	const uint8_t *aml;
	long len = acpi_build(buf, sizeof(buf), 0xe0000, 2, (const struct device *const *)devs, 6,
			      &err);

	aml = dsdt_aml(len, &aml_len);
	assert_int_equal(aml_len, sizeof(fixed_devices_aml));
	assert_memory_equal(aml, fixed_devices_aml, sizeof(fixed_devices_aml));
	for (unsigned i = 0; i < 6; i++)
		device_free(devs[i]);
}

static void a_virtio_mmio_device_is_lnro0005_with_memory32fixed_and_interrupt(void **state)
{
	struct device *d = device_new("virtio-mmio", NULL);
	const struct device *devs[] = {d};
	struct error err = {0};
	uint32_t aml_len;
	const uint8_t *aml;
	/* Device(VR00) { Name(_HID, "LNRO0005") Name(_UID, 0) Name(_CRS, ResourceTemplate() {
	 *   Memory32Fixed(ReadWrite, 0xd0000000, 0x200)
	 *   Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {16} }) } */
	static const uint8_t want[] = {
	    0x5b, 0x82, 0x3b, 'V', 'R', '0', '0',
	    0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00,
	    0x08, '_', 'U', 'I', 'D', 0x0a, 0x00,
	    0x08, '_', 'C', 'R', 'S', 0x11, 0x1a, 0x0a, 0x17,
	    0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x02, 0x00, 0x00,
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00,
	    0x79, 0x00,
	};
	long len;

	d->acpi = (struct device_acpi){.name = "VR00", .hid = "LNRO0005", .uid = 0};
	d->irq = 16;
	device_add_range(d, DEVICE_MMIO, 0xd0000000, 0x200, NULL);
	len = acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, 1, &err);
	aml = dsdt_aml(len, &aml_len);
	/* _S5_ (13 bytes), ScopeOp with a two-byte PkgLength, \_SB_, then the device. */
	assert_int_equal(aml_len, 13 + 3 + 5 + sizeof(want));
	assert_int_equal(aml[13], 0x10);
	assert_memory_equal(aml + 16, "\\_SB_", 5);
	assert_memory_equal(aml + 21, want, sizeof(want));
	device_free(d);
}

static void devices_without_a_description_are_left_out(void **state)
{
	struct device *d = device_new("plain", NULL);
	const struct device *devs[] = {d};
	struct error err = {0};
	uint32_t aml_len;

	device_add_range(d, DEVICE_PIO, 0x100, 1, NULL);
	dsdt_aml(acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, 1, &err), &aml_len);
	assert_int_equal(aml_len, 13 + 2 + 5); /* _S5_ and an empty \_SB_ */
	device_free(d);
}

static void what_cannot_be_encoded_is_refused(void **state)
{
	struct device *d = device_new("odd", NULL);
	const struct device *devs[] = {d};
	struct error err = {0};

	/* An MMIO range above 4 GiB does not fit Memory32Fixed. */
	d->acpi = (struct device_acpi){.name = "ODD0", .hid = "LNRO0005", .uid = 0};
	device_add_range(d, DEVICE_MMIO, 0x100000000ULL, 0x200, NULL);
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, 1, &err), -1);
	assert_string_equal(err.msg, "device 'odd' has an ACPI description the DSDT cannot hold");
	/* A hardware id that is neither an EISA id nor 7-8 characters. */
	d->ranges[0].base = 0xd0000000;
	d->acpi.hid = "TOOLONGID";
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, 1, &err), -1);
	/* A name that is not four characters. */
	d->acpi.hid = "LNRO0005";
	strcpy(d->acpi.name, "AB");
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, 1, &err), -1);
	device_free(d);
}

static void more_devices_than_the_dsdt_holds_are_refused(void **state)
{
	const struct device *devs[DSDT_MAX_DEVICES + 1];
	struct device *d = device_new("plain", NULL);
	struct error err = {0};

	for (unsigned i = 0; i <= DSDT_MAX_DEVICES; i++)
		devs[i] = d;
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xe0000, 1, devs, DSDT_MAX_DEVICES + 1, &err),
			 -1);
	assert_string_equal(err.msg, "the DSDT describes at most 16 devices, not 17");
	device_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_fixed_devices_give_the_dsdt_they_always_had),
	    cmocka_unit_test(a_virtio_mmio_device_is_lnro0005_with_memory32fixed_and_interrupt),
	    cmocka_unit_test(devices_without_a_description_are_left_out),
	    cmocka_unit_test(what_cannot_be_encoded_is_refused),
	    cmocka_unit_test(more_devices_than_the_dsdt_holds_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
