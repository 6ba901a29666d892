/*
 * A 16550A UART (the PC's COM ports): transmit goes straight to a host fd,
 * receive is fed by the host console loop, and the IRQ follows the
 * interrupt-pending state so the guest driver runs interrupt-driven.
 */
#ifndef HUTCH_VMM_DEVICES_SERIAL_H
#define HUTCH_VMM_DEVICES_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"

struct serial;

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_COM2_BASE 0x2f8
#define SERIAL_COM2_IRQ 3
#define SERIAL_NR_PORTS 8

/*
 * A UART at port base raising irq; bytes the guest sends are written to
 * out_fd. device_free() releases it.
 */
struct device *serial_create(const struct vm_services *vm, uint16_t base, unsigned irq, int out_fd,
			     const char *name);
/* The UART of a device serial_create() made, for the console loop. */
struct serial *serial_of(const struct device *dev);

/* Queue host input for the guest; returns how many bytes fit (0 when full). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* Room left in the receive queue; 0 while the guest has receive interrupts off. */
size_t serial_rx_room(struct serial *s);

#endif
