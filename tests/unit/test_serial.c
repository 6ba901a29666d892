/*
 * The 16550A UART of hutch vm (vmm/devices/serial.c), driven the way the
 * guest drives it: byte accesses to its eight ports through the VM's port
 * bus. What the guest sends must reach the console fd byte for byte, and
 * the registers must behave as Linux's 8250 driver expects (its autoconfig
 * probes the scratch register, loopback and the FIFO bits of IIR).
 *
 * The device asks the VM for its interrupt line and for a stop through
 * the VM services (vmm/device.h); here those are the test's own, so that
 * it sees each change of the line and each stop without a VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/devices/serial.h"

enum { RBR_THR_DLL = 0, IER_DLM, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define BASE SERIAL_COM1_BASE
#define IRQ SERIAL_COM1_IRQ

struct uart {
	struct vm_services vm;
	struct bus pio, mmio;
	struct device *dev;
	struct serial *s;
	int out[2]; /* what the guest transmits arrives in out[0] */
};

/* The interrupt line as the device last set it, and how often it changed. */
static int irq_level = -1;
static unsigned irq_changes;
/* The stops the device asked for, the last one's reason and detail. */
static unsigned stops;
static enum vm_stop_reason stop_reason;
static char stop_detail[256];

static void set_irq(void *vm, unsigned irq, bool level)
{
	assert_int_equal(irq, IRQ);
	irq_level = level;
	irq_changes++;
}

static void stop(void *vm, enum vm_stop_reason reason, const char *detail)
{
	stops++;
	stop_reason = reason;
	snprintf(stop_detail, sizeof(stop_detail), "%s", detail);
}

static int setup(void **state)
{
	static struct uart u;
	struct error err = {0};

	memset(&u, 0, sizeof(u));
	u.vm = (struct vm_services){.set_irq = set_irq, .stop = stop};
	bus_init(&u.pio, "pio", false);
	bus_init(&u.mmio, "mmio", false);
	if (pipe2(u.out, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	u.dev = serial_create(&u.vm, BASE, IRQ, u.out[1], "ttyS0");
	u.s = serial_of(u.dev);
	if (device_attach(u.dev, &u.pio, &u.mmio, &err) < 0) {
		print_error("%s\n", err.msg);
		return -1;
	}
	irq_level = -1;
	irq_changes = 0;
	stops = 0;
	*state = &u;
	return 0;
}

static int teardown(void **state)
{
	struct uart *u = *state;

	device_free(u->dev);
	close(u->out[0]);
	if (u->out[1] >= 0)
		close(u->out[1]);
	return 0;
}

static void outb(struct uart *u, unsigned reg, uint8_t v)
{
	assert_true(bus_access(&u->pio, BASE + reg, &v, 1, true));
}

static uint8_t inb(struct uart *u, unsigned reg)
{
	uint8_t v = 0;

	assert_true(bus_access(&u->pio, BASE + reg, &v, 1, false));
	return v;
}

/* What reached the console fd so far. */
static size_t output(struct uart *u, char *buf, size_t cap)
{
	ssize_t n = read(u->out[0], buf, cap);

	if (n < 0 && errno == EAGAIN)
		return 0;
	assert_true(n >= 0);
	return (size_t)n;
}

static void the_device_claims_its_eight_ports(void **state)
{
	struct uart *u = *state;
	uint8_t v;

	assert_int_equal(u->pio.nr_ranges, 1);
	assert_true(bus_access(&u->pio, BASE + 7, &v, 1, false));
	assert_false(bus_access(&u->pio, BASE + 8, &v, 1, false));
	assert_false(bus_access(&u->pio, BASE - 1, &v, 1, false));
}

static void transmitted_bytes_reach_the_console_in_order(void **state)
{
	struct uart *u = *state;
	static const char text[] = "hutch\r\n\0\xff";
	char buf[64];

	for (size_t i = 0; i < sizeof(text); i++) {
		/* The driver waits for THRE before each byte: it must be set at once. */
		assert_true(inb(u, LSR) & 0x20);
		outb(u, RBR_THR_DLL, (uint8_t)text[i]);
	}
	assert_int_equal(output(u, buf, sizeof(buf)), sizeof(text));
	assert_memory_equal(buf, text, sizeof(text));
}

static void the_divisor_latch_hides_thr_and_ier(void **state)
{
	struct uart *u = *state;
	char buf[8];

	outb(u, IER_DLM, 0x05);
	outb(u, LCR, 0x83); /* DLAB, 8N1 */
	assert_int_equal(inb(u, LCR), 0x83);
	outb(u, RBR_THR_DLL, 0x01); /* 115200 baud */
	outb(u, IER_DLM, 0x00);
	assert_int_equal(inb(u, RBR_THR_DLL), 0x01);
	assert_int_equal(inb(u, IER_DLM), 0x00);
	/* Divisor bytes are not output. */
	assert_int_equal(output(u, buf, sizeof(buf)), 0);

	outb(u, LCR, 0x03);
	/* IER kept its value under the latch; DLL no longer answers at 0. */
	assert_int_equal(inb(u, IER_DLM), 0x05);
	assert_int_equal(inb(u, RBR_THR_DLL), 0x00);
	outb(u, RBR_THR_DLL, 'x');
	assert_int_equal(output(u, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'x');
	/* Set again, the latch still holds the divisor. */
	outb(u, LCR, 0x83);
	assert_int_equal(inb(u, RBR_THR_DLL), 0x01);
}

static void ier_keeps_only_its_four_bits(void **state)
{
	struct uart *u = *state;

	outb(u, IER_DLM, 0xff);
	assert_int_equal(inb(u, IER_DLM), 0x0f);
	outb(u, IER_DLM, 0x00);
	assert_int_equal(inb(u, IER_DLM), 0x00);
}

static void the_scratch_register_holds_what_was_written(void **state)
{
	struct uart *u = *state;

	outb(u, SCR, 0x5a);
	assert_int_equal(inb(u, SCR), 0x5a);
	outb(u, SCR, 0xa5);
	assert_int_equal(inb(u, SCR), 0xa5);
	/* LSR and MSR are read-only: writing them changes nothing. */
	outb(u, LSR, 0x00);
	assert_int_equal(inb(u, LSR), 0x60);
}

static void lsr_reports_received_data_until_it_is_read(void **state)
{
	struct uart *u = *state;

	assert_int_equal(inb(u, LSR), 0x60); /* THRE | TEMT, no DR */
	assert_int_equal(serial_receive(u->s, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(inb(u, LSR), 0x61);
	assert_int_equal(inb(u, RBR_THR_DLL), 'a');
	assert_int_equal(inb(u, LSR) & 0x01, 0x01);
	assert_int_equal(inb(u, RBR_THR_DLL), 'b');
	assert_int_equal(inb(u, LSR), 0x60);
	/* An empty receiver reads as 0. */
	assert_int_equal(inb(u, RBR_THR_DLL), 0);
}

static void the_receive_queue_is_bounded(void **state)
{
	struct uart *u = *state;
	uint8_t in[100];

	memset(in, 'q', sizeof(in));
	/* Until the guest enables receive interrupts, no room is offered. */
	assert_int_equal(serial_rx_room(u->s), 0);
	outb(u, IER_DLM, 0x01);
	assert_int_equal(serial_rx_room(u->s), 64);
	assert_int_equal(serial_receive(u->s, in, sizeof(in)), 64);
	assert_int_equal(serial_rx_room(u->s), 0);
	assert_int_equal(serial_receive(u->s, in, 1), 0);
	/* FCR's "clear receiver" empties it. */
	outb(u, IIR_FCR, 0x03);
	assert_int_equal(inb(u, LSR) & 0x01, 0);
	assert_int_equal(serial_rx_room(u->s), 64);
}

static void iir_reports_thr_empty_once_and_the_irq_follows(void **state)
{
	struct uart *u = *state;

	assert_int_equal(inb(u, IIR_FCR), 0x01); /* no interrupt pending */
	/* Enabling the THR-empty interrupt with THR empty raises it at once. */
	outb(u, IER_DLM, 0x02);
	assert_int_equal(irq_level, 1);
	assert_int_equal(inb(u, IIR_FCR), 0x02);
	/* Reading IIR acknowledged it: the line drops. */
	assert_int_equal(irq_level, 0);
	assert_int_equal(inb(u, IIR_FCR), 0x01);
	/* Each byte transmitted empties THR again. */
	outb(u, RBR_THR_DLL, 'z');
	assert_int_equal(irq_level, 1);
	assert_int_equal(inb(u, IIR_FCR), 0x02);
	assert_int_equal(irq_level, 0);
	/* With interrupts off the line stays low whatever happens. */
	outb(u, IER_DLM, 0x00);
	irq_changes = 0;
	outb(u, RBR_THR_DLL, 'z');
	assert_int_equal(serial_receive(u->s, (const uint8_t *)"r", 1), 1);
	assert_int_equal(irq_changes, 0);
	assert_int_equal(inb(u, IIR_FCR), 0x01);
}

static void received_data_interrupts_before_thr_empty(void **state)
{
	struct uart *u = *state;

	outb(u, IIR_FCR, 0x01); /* FIFO on: IIR's top bits say so */
	assert_int_equal(inb(u, IIR_FCR), 0xc1);
	outb(u, IER_DLM, 0x03);
	assert_int_equal(serial_receive(u->s, (const uint8_t *)"k", 1), 1);
	assert_int_equal(irq_level, 1);
	/* Received data has the higher priority, and reading IIR does not clear it. */
	assert_int_equal(inb(u, IIR_FCR), 0xc4);
	assert_int_equal(inb(u, IIR_FCR), 0xc4);
	assert_int_equal(inb(u, RBR_THR_DLL), 'k');
	/* Then the THR-empty interrupt still pending from IER's write. */
	assert_int_equal(irq_level, 1);
	assert_int_equal(inb(u, IIR_FCR), 0xc2);
	assert_int_equal(irq_level, 0);
}

static void loopback_returns_output_as_input(void **state)
{
	struct uart *u = *state;
	char buf[8];

	/* Linux's autoconfig: loopback with OUT2 | RTS, MSR must show DCD | CTS. */
	outb(u, MCR, 0x1a);
	assert_int_equal(inb(u, MCR), 0x1a);
	assert_int_equal(inb(u, MSR) & 0xf0, 0x90);
	outb(u, MCR, 0x1f);
	assert_int_equal(inb(u, MSR) & 0xf0, 0xf0);
	outb(u, RBR_THR_DLL, 'L');
	assert_int_equal(output(u, buf, sizeof(buf)), 0);
	assert_int_equal(inb(u, LSR) & 0x01, 0x01);
	assert_int_equal(inb(u, RBR_THR_DLL), 'L');
	/* Out of loopback, the modem lines are up and bytes leave again. */
	outb(u, MCR, 0x0b);
	assert_int_equal(inb(u, MSR), 0xb0);
	outb(u, RBR_THR_DLL, 'o');
	assert_int_equal(output(u, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'o');
}

static void a_wide_access_touches_consecutive_registers(void **state)
{
	struct uart *u = *state;
	uint8_t w[2] = {0x00, 0x83}; /* port 2 (FCR), then port 3 (LCR) */
	uint8_t r[2];

	assert_true(bus_access(&u->pio, BASE + IIR_FCR, w, 2, true));
	assert_int_equal(inb(u, LCR), 0x83);
	outb(u, SCR, 0x77);
	assert_true(bus_access(&u->pio, BASE + MSR, r, 2, false));
	assert_int_equal(r[1], 0x77);
}

static void a_console_that_cannot_be_written_stops_the_vm(void **state)
{
	struct uart *u = *state;

	signal(SIGPIPE, SIG_IGN);
	close(u->out[0]);
	u->out[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	outb(u, RBR_THR_DLL, 'x');
	assert_int_equal(stops, 1);
	assert_int_equal(stop_reason, VM_STOP_HOST_ERROR);
	assert_string_equal(stop_detail, "cannot write the guest's output: Broken pipe");
	/* Later bytes are dropped without another attempt or another stop. */
	outb(u, RBR_THR_DLL, 'y');
	assert_int_equal(stops, 1);
	signal(SIGPIPE, SIG_DFL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(the_device_claims_its_eight_ports),
	    T(transmitted_bytes_reach_the_console_in_order),
	    T(the_divisor_latch_hides_thr_and_ier),
	    T(ier_keeps_only_its_four_bits),
	    T(the_scratch_register_holds_what_was_written),
	    T(lsr_reports_received_data_until_it_is_read),
	    T(the_receive_queue_is_bounded),
	    T(iir_reports_thr_empty_once_and_the_irq_follows),
	    T(received_data_interrupts_before_thr_empty),
	    T(loopback_returns_output_as_input),
	    T(a_wide_access_touches_consecutive_registers),
	    T(a_console_that_cannot_be_written_stops_the_vm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
