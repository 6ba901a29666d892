#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/devices/serial.h"
#include "vmm/device.h"
#include "common/banned.h"

/* Register offsets and bits: the 16550A datasheet, Linux include/uapi/linux/serial_reg.h. */
enum {
	UART_RX = 0,
	UART_TX = 0,
	UART_DLL = 0,
	UART_IER = 1,
	UART_DLM = 1,
	UART_IIR = 2,
	UART_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE_FIFO 0x01
#define FCR_CLEAR_RCVR 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

#define RX_QUEUE 64

struct serial {
	const struct vm_services *vm;
	pthread_mutex_t lock;
	unsigned irq;
	int out_fd;
	bool out_failed;
	bool irq_level;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_int; /* THR-empty interrupt pending until IIR reports it or THR is written */
	uint8_t rx[RX_QUEUE];
	unsigned rx_head, rx_len;
};

static uint8_t iir_locked(struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE_FIFO) ? IIR_FIFO_ENABLED : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_int)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

static void update_irq_locked(struct serial *s)
{
	bool level = !(iir_locked(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		s->vm->set_irq(s->vm->vm, s->irq, level);
	}
}

static void rx_push_locked(struct serial *s, uint8_t byte)
{
	if (s->rx_len == RX_QUEUE)
		return; /* overrun: the byte is lost, as on real hardware */
	s->rx[(s->rx_head + s->rx_len) % RX_QUEUE] = byte;
	s->rx_len++;
}

static uint8_t rx_pop_locked(struct serial *s)
{
	uint8_t b;

	if (!s->rx_len)
		return 0;
	b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_QUEUE;
	s->rx_len--;
	return b;
}

static void transmit_locked(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_push_locked(s, byte);
		return;
	}
	if (s->out_failed)
		return;
	/* Written synchronously: the guest's output order is preserved byte for byte. */
	if (write_all(s->out_fd, &byte, 1) < 0) {
		s->out_failed = true;
		char why[128];
		snprintf(why, sizeof(why), "cannot write the guest's output: %s", strerror(errno));
		s->vm->stop(s->vm->vm, VM_STOP_HOST_ERROR, why);
	}
}

static uint8_t read_reg_locked(struct serial *s, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RX:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		return rx_pop_locked(s);
	case UART_IER:
		if (s->lcr & LCR_DLAB)
			return s->dlm;
		return s->ier;
	case UART_IIR:
		v = iir_locked(s);
		/* Reading IIR while it reports THR empty acknowledges that interrupt. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_int = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		/* Transmission is instant: THR and the shifter are always empty. */
		return LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
	case UART_MSR:
		if (s->mcr & MCR_LOOP) {
			/* Loopback wires the modem outputs back to the inputs (8250 autoconfig
			 * tests it). */
			v = 0;
			if (s->mcr & MCR_RTS)
				v |= MSR_CTS;
			if (s->mcr & MCR_DTR)
				v |= MSR_DSR;
			if (s->mcr & MCR_OUT1)
				v |= MSR_RI;
			if (s->mcr & MCR_OUT2)
				v |= MSR_DCD;
			return v;
		}
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default:
		return s->scr;
	}
}

static void write_reg_locked(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case UART_TX:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		transmit_locked(s, v);
		s->thr_int = true; /* the THR is empty again at once */
		return;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		/* Enabling the THR-empty interrupt with THR empty raises it (16550A behaviour). */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_int = true;
		s->ier = v & (IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
		return;
	case UART_FCR:
		s->fcr = v;
		if (v & FCR_CLEAR_RCVR)
			s->rx_len = 0;
		return;
	case UART_LCR:
		s->lcr = v;
		return;
	case UART_MCR:
		s->mcr = v & 0x1f;
		return;
	case UART_LSR:
	case UART_MSR:
		return; /* read-only */
	default:
		s->scr = v;
	}
}

static void serial_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	/* Wider accesses touch consecutive registers, byte by byte. */
	for (unsigned i = 0; i < size; i++) {
		unsigned reg = (unsigned)(offset + i) % SERIAL_NR_PORTS;
		if (is_write)
			write_reg_locked(s, reg, data[i]);
		else
			data[i] = read_reg_locked(s, reg);
	}
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

/* Power-on state: what Linux's 8250 autoconfig expects to find. */
static void serial_reset(struct device *dev)
{
	struct serial *s = dev->priv;

	pthread_mutex_lock(&s->lock);
	s->ier = s->lcr = s->scr = s->dll = s->dlm = s->fcr = 0;
	s->mcr = MCR_OUT2;
	s->thr_int = false;
	s->rx_head = s->rx_len = 0;
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_release(struct device *dev)
{
	struct serial *s = dev->priv;

	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct device *serial_create(const struct vm_services *vm, uint16_t base, unsigned irq, int out_fd,
			     const char *name)
{
	struct serial *s = xcalloc(1, sizeof(*s));
	struct device *dev = device_new(name, s);

	s->vm = vm;
	s->irq = irq;
	s->out_fd = out_fd;
	s->mcr = MCR_OUT2;
	pthread_mutex_init(&s->lock, NULL);
	dev->irq = (int)irq;
	/* EisaId("PNP0501"), a 16550A: Linux's 8250_pnp driver binds it. The PC's COMn is ttyS(n-1). */
	dev->acpi.hid = "PNP0501";
	dev->acpi.uid = base == SERIAL_COM1_BASE ? 1 : 2;
	snprintf(dev->acpi.name, sizeof(dev->acpi.name), "COM%u", (unsigned)dev->acpi.uid);
	dev->reset = serial_reset;
	dev->release = serial_release;
	device_add_range(dev, DEVICE_PIO, base, SERIAL_NR_PORTS, serial_access);
	return dev;
}

struct serial *serial_of(const struct device *dev)
{
	return dev->priv;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_len < RX_QUEUE)
		rx_push_locked(s, buf[n++]);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_room(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	/* Until the guest enables receive interrupts nobody would read the bytes. */
	room = (s->ier & IER_RDI) ? RX_QUEUE - s->rx_len : 0;
	pthread_mutex_unlock(&s->lock);
	return room;
}
