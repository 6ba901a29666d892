/*
 * A device of hutch's machine (kvmtool's device__register, Firecracker's
 * split of device and transport): the port and MMIO ranges it claims, its
 * interrupt line, its reset and release, and the few services of the VM it
 * may call. A device knows nothing of struct vm: adding one is a file with
 * a *_create() that fills a struct device, plus one line in vm.c; a device
 * with an ACPI description appears in the DSDT by itself.
 */
#ifndef HUTCH_VMM_DEVICE_H
#define HUTCH_VMM_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"
#include "vmm/memory.h"

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_EXITED,		/* guest init reported the command's status on the exit port */
	VM_STOP_POWEROFF,	/* ACPI S5 */
	VM_STOP_REBOOT,		/* i8042 reset or KVM_SYSTEM_EVENT_RESET */
	VM_STOP_PANIC,		/* pvpanic */
	VM_STOP_TRIPLE_FAULT,	/* KVM_EXIT_SHUTDOWN */
	VM_STOP_INTERNAL_ERROR, /* KVM could not run the guest */
	VM_STOP_INTERRUPTED,	/* the host asked: Ctrl-C, SIGTERM, the console escape */
	VM_STOP_HOST_ERROR,	/* hutch itself failed while running */
};

/* What a device may ask of the VM it is part of; safe from any thread. */
struct vm_services {
	void *vm;
	/* Raise or lower an interrupt line of the in-kernel irqchip. */
	void (*set_irq)(void *vm, unsigned irq, bool level);
	/* Stop the VM; the first reason wins, detail says it to the user. */
	void (*stop)(void *vm, enum vm_stop_reason reason, const char *detail);
	/* The guest command's exit status (0-255) is in: the run is over. */
	void (*guest_exited)(void *vm, unsigned status);
	/* Guest init has reported in (the boot-time marker). */
	void (*guest_marker)(void *vm);
	/* The host terminal's size as rows << 16 | columns, 0 if none. */
	uint32_t (*console_size)(void *vm);
	/*
	 * Call fn(arg, fd, ready) from the VM's event loop (the main thread)
	 * whenever fd is ready for events: an ioeventfd, a backend's socket.
	 * Before the vCPUs start; unwatch() before the device closes fd.
	 */
	int (*watch)(void *vm, int fd, uint32_t events, evloop_fn *fn, void *arg,
		     struct error *err);
	void (*unwatch)(void *vm, int fd);
	/*
	 * For devices placed as they come (virtio-mmio), before the vCPUs
	 * start: an interrupt line of their own, and size bytes of the MMIO
	 * window aligned to align (vmm/alloc.h).
	 */
	int (*alloc_irq)(void *vm, const char *who, unsigned *irq, struct error *err);
	int (*alloc_mmio)(void *vm, const char *who, uint64_t size, uint64_t align, uint64_t *addr,
			  struct error *err);
	/*
	 * Guest RAM. The struct is the VM's own and stays where it is; it is
	 * filled in after the devices are created, so look at it only once
	 * the guest runs (a virtio driver setting DRIVER_OK).
	 */
	const struct guest_memory *(*memory)(void *vm);
	/*
	 * KVM_IOEVENTFD: a guest write of len bytes of value datamatch at
	 * guest-physical addr signals fd instead of exiting to the VMM;
	 * assign false takes it back (before the device closes fd).
	 */
	int (*ioeventfd)(void *vm, int fd, uint64_t addr, unsigned len, uint64_t datamatch,
			 bool assign, struct error *err);
	/* KVM_IRQFD: a write to fd pulses interrupt line gsi (an edge); assign false takes it back.
	 */
	int (*irqfd)(void *vm, int fd, unsigned gsi, bool assign, struct error *err);
};

enum device_space { DEVICE_PIO, DEVICE_MMIO };

#define DEVICE_MAX_RANGES 2

struct device_range {
	enum device_space space;
	uint64_t base, len;
	bus_access_fn *access; /* called with the device's priv */
};

/*
 * How the guest's firmware tables name a device (the DSDT on x86): an AML
 * Device(name) with _HID hid and _UID uid; its _CRS comes from the device's
 * ranges and line. hid NULL: the device is not in the tables.
 */
struct device_acpi {
	char name[5];	 /* four characters, "COM1" */
	const char *hid; /* "PNP0501" (an EISA id) or a string id, "LNRO0005" */
	uint8_t uid;
};

struct device {
	const char *name;
	struct device_acpi acpi;
	unsigned nr_ranges;
	struct device_range ranges[DEVICE_MAX_RANGES];
	int irq;    /* its interrupt line, -1 if none */
	void *priv; /* the device's own state */
	/* Back to power-on state (a later reboot); NULL: nothing to reset. */
	void (*reset)(struct device *dev);
	/* Free priv; NULL: nothing to free. */
	void (*release)(struct device *dev);
};

/* A new device named name with priv as its state, no ranges, no IRQ. */
struct device *device_new(const char *name, void *priv);
/* Claim [base, base + len) of space for dev, served by access. */
void device_add_range(struct device *dev, enum device_space space, uint64_t base, uint64_t len,
		      bus_access_fn *access);
/* Put dev's ranges on the port and MMIO buses; ranges may not overlap others. */
int device_attach(struct device *dev, struct bus *pio, struct bus *mmio, struct error *err);
/* Release dev's state and dev itself; NULL is fine. */
void device_free(struct device *dev);

#endif
