/*
 * The virtio-mmio transport, version 2 only (virtio 1.x section 4.2): the
 * register file, feature negotiation, the status state machine, the
 * queues' configuration (final at DRIVER_OK), queue notifications and the
 * interrupt.
 *
 * Notifications: one eventfd a queue, registered with KVM_IOEVENTFD on
 * QueueNotify with the queue's index as datamatch, so a notify costs the
 * vCPU no exit to the VMM; each is watched in the VM's event loop, which
 * calls the device type's notify(). A QueueNotify write that reaches the
 * bus anyway (an index no queue has) is served, or refused, right here.
 *
 * The interrupt: KVM_IRQFD on the device's line, edge-triggered as the
 * DSDT declares it (arch/x86_64/acpi.c: Interrupt(Edge, ActiveHigh), what
 * Linux's virtio_mmio driver takes): a write to the eventfd is one edge,
 * from any thread, without a vCPU exit or a resample fd. Linux's handler
 * reads InterruptStatus, acknowledges what it read and then serves every
 * queue, so a second edge while the first is being handled is latched by
 * the IOAPIC and nothing is lost. (A level line through set_irq would cost
 * a KVM_IRQ_LINE to raise it and another on the vCPU's InterruptACK.)
 *
 * Locking: the registers are written by the vCPU threads and the queues are
 * served from the event loop; one recursive lock a device covers both, so
 * a device type's notify() runs with it held and may call back into
 * virtio_interrupt() or virtio_broken().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/virtio/virtio.h"
#include "common/banned.h"

/* Registers (section 4.2.2). */
#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_VENDOR_ID 0x00c
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_SHM_SEL 0x0ac
#define REG_SHM_LEN_LOW 0x0b0
#define REG_SHM_BASE_HIGH 0x0bc
#define REG_CONFIG_GENERATION 0x0fc
#define REG_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION 2
#define HUTCH_VENDOR_ID 0x68747563 /* "hutc" */
#define VIRTIO_MMIO_SIZE 0x200

#define INT_VRING 1
#define INT_CONFIG 2

/* The transport features hutch offers besides the device type's own. */
#define TRANSPORT_FEATURES                                                                         \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |                         \
	 (1ULL << VIRTIO_F_EVENT_IDX))

struct notifier {
	struct virtio_dev *vdev;
	unsigned q;
	int fd;		 /* the ioeventfd, -1 if none */
	bool registered; /* with KVM */
};

struct virtio_dev {
	const struct vm_services *vm;
	const struct virtio_device_ops *ops;
	void *priv;
	const char *name;
	uint64_t base;
	unsigned irq;
	int irq_fd;
	bool irqfd_registered;
	pthread_mutex_t lock;

	/* Driver-visible state, back to zero on a reset. */
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t isr;
	uint32_t config_generation; /* kept across resets */
	bool queue_ready[VIRTIO_MAX_QUEUES];
	struct virtq queues[VIRTIO_MAX_QUEUES];

	struct notifier notifiers[VIRTIO_MAX_QUEUES];
	struct virtio_events events;
	bool logged;
};

static uint64_t offered(const struct virtio_dev *v)
{
	return v->ops->features | TRANSPORT_FEATURES;
}

static bool running(const struct virtio_dev *v)
{
	return (v->status & VIRTIO_STATUS_DRIVER_OK) && !(v->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* Log the first rule a driver broke on this device; count them all. */
static void count_event(struct virtio_dev *v, unsigned long *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void count_event(struct virtio_dev *v, unsigned long *counter, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	(*counter)++;
	if (v->logged)
		return;
	v->logged = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warn("%s: the guest's driver %s (further events counted, not logged)", v->name, msg);
}

static void raise_irq(struct virtio_dev *v, uint32_t why)
{
	uint64_t one = 1;

	v->isr |= why;
	if (write(v->irq_fd, &one, sizeof(one)) < 0) {
		/* Only on counter overflow: an interrupt is pending anyway. */
	}
}

static void need_reset(struct virtio_dev *v)
{
	if (v->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	v->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* Section 2.1.2: a device that sets NEEDS_RESET after DRIVER_OK sends a config change. */
	if (v->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(v, INT_CONFIG);
}

static void device_reset(struct virtio_dev *v)
{
	v->status = 0;
	v->device_features_sel = v->driver_features_sel = 0;
	v->driver_features = 0;
	v->queue_sel = 0;
	v->isr = 0;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		virtq_reset(&v->queues[i]);
		v->queue_ready[i] = false;
	}
	if (v->ops->reset)
		v->ops->reset(v->priv);
}

static void features_ok(struct virtio_dev *v)
{
	uint64_t f = v->driver_features;

	if (!(f & (1ULL << VIRTIO_F_VERSION_1))) {
		count_event(v, &v->events.bad_features, "did not accept VIRTIO_F_VERSION_1");
		return;
	}
	if (f & ~offered(v)) {
		count_event(v, &v->events.bad_features,
			    "asked for features 0x%" PRIx64 " not offered", f & ~offered(v));
		return;
	}
	v->status |= VIRTIO_STATUS_FEATURES_OK;
}

static void driver_ok(struct virtio_dev *v)
{
	const struct guest_memory *mem = v->vm->memory(v->vm->vm);
	enum virtq_error e;

	v->status |= VIRTIO_STATUS_DRIVER_OK;
	for (unsigned i = 0; i < v->ops->nr_queues; i++) {
		if (!v->queue_ready[i])
			continue;
		e = virtq_start(&v->queues[i], mem, v->ops->queue_max, v->driver_features);
		if (e != VIRTQ_OK) {
			v->events.last_error = e;
			count_event(v, &v->events.bad_queue, "configured queue %u badly: %s", i,
				    virtq_strerror(e));
			need_reset(v);
			return;
		}
	}
	if (v->ops->activate && v->ops->activate(v->priv, v) != 0) {
		count_event(v, &v->events.broken, "set DRIVER_OK but the device could not start");
		need_reset(v);
	}
}

static void write_status(struct virtio_dev *v, uint32_t val)
{
	uint32_t old = v->status & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;
	uint32_t add;

	if (val == 0) {
		device_reset(v);
		return;
	}
	val &= ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET; /* the device's bit, not the driver's */
	if ((val & old) != old) {
		count_event(v, &v->events.bad_status,
			    "cleared status bits (0x%x to 0x%x) without a reset", old, val);
		return;
	}
	add = val & ~old;
	if (add & VIRTIO_STATUS_FAILED)
		v->status |= VIRTIO_STATUS_FAILED;
	if (add & VIRTIO_STATUS_ACKNOWLEDGE)
		v->status |= VIRTIO_STATUS_ACKNOWLEDGE;
	if (add & VIRTIO_STATUS_DRIVER) {
		if (!(v->status & VIRTIO_STATUS_ACKNOWLEDGE))
			goto order;
		v->status |= VIRTIO_STATUS_DRIVER;
	}
	if (add & VIRTIO_STATUS_FEATURES_OK) {
		if (!(v->status & VIRTIO_STATUS_DRIVER))
			goto order;
		features_ok(v);
	}
	if (add & VIRTIO_STATUS_DRIVER_OK) {
		if (!(v->status & VIRTIO_STATUS_FEATURES_OK))
			goto order;
		driver_ok(v);
	}
	return;
order:
	count_event(v, &v->events.bad_status, "set status 0x%x out of order (status was 0x%x)", val,
		    old);
}

/* The queue register the driver writes, or NULL when it may not. */
static struct virtq *queue_for_write(struct virtio_dev *v)
{
	if (v->queue_sel >= v->ops->nr_queues) {
		count_event(v, &v->events.bad_access, "configured queue %u, which does not exist",
			    v->queue_sel);
		return NULL;
	}
	if (v->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) {
		count_event(v, &v->events.frozen_writes, "changed queue %u after DRIVER_OK",
			    v->queue_sel);
		return NULL;
	}
	return &v->queues[v->queue_sel];
}

static void set_low(uint64_t *r, uint32_t val)
{
	*r = (*r & 0xffffffff00000000ULL) | val;
}

static void set_high(uint64_t *r, uint32_t val)
{
	*r = (*r & 0xffffffffULL) | (uint64_t)val << 32;
}

static void notify(struct virtio_dev *v, uint32_t q)
{
	if (q >= v->ops->nr_queues) {
		count_event(v, &v->events.bad_access, "notified queue %u, which does not exist", q);
		return;
	}
	if (running(v) && v->queues[q].started && v->ops->notify)
		v->ops->notify(v->priv, v, q);
}

static void reg_write(struct virtio_dev *v, uint64_t off, uint32_t val)
{
	struct virtq *q;

	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		v->device_features_sel = val;
		return;
	case REG_DRIVER_FEATURES:
		if (v->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET)) {
			count_event(v, &v->events.frozen_writes,
				    "changed its features after FEATURES_OK");
			return;
		}
		if (v->driver_features_sel == 0)
			set_low(&v->driver_features, val);
		else if (v->driver_features_sel == 1)
			set_high(&v->driver_features, val);
		else if (val)
			v->driver_features |= 1ULL
					      << 63; /* a bit never offered: FEATURES_OK fails */
		return;
	case REG_DRIVER_FEATURES_SEL:
		v->driver_features_sel = val;
		return;
	case REG_QUEUE_SEL:
		v->queue_sel = val;
		return;
	case REG_QUEUE_NOTIFY:
		notify(v, val);
		return;
	case REG_INTERRUPT_ACK:
		v->isr &= ~val;
		return;
	case REG_STATUS:
		write_status(v, val);
		return;
	case REG_SHM_SEL:
		return;
	}
	if (!(q = queue_for_write(v)))
		return;
	switch (off) {
	case REG_QUEUE_NUM:
		/* Checked against QueueNumMax when the queue starts. */
		q->size = val > UINT16_MAX ? 0 : (uint16_t)val;
		return;
	case REG_QUEUE_READY:
		v->queue_ready[v->queue_sel] = val == 1;
		return;
	case REG_QUEUE_DESC_LOW:
		set_low(&q->desc_gpa, val);
		return;
	case REG_QUEUE_DESC_HIGH:
		set_high(&q->desc_gpa, val);
		return;
	case REG_QUEUE_DRIVER_LOW:
		set_low(&q->avail_gpa, val);
		return;
	case REG_QUEUE_DRIVER_HIGH:
		set_high(&q->avail_gpa, val);
		return;
	case REG_QUEUE_DEVICE_LOW:
		set_low(&q->used_gpa, val);
		return;
	case REG_QUEUE_DEVICE_HIGH:
		set_high(&q->used_gpa, val);
		return;
	}
	count_event(v, &v->events.bad_access,
		    "wrote register 0x%03" PRIx64 ", which is read-only or none", off);
}

static uint32_t reg_read(struct virtio_dev *v, uint64_t off)
{
	bool have_queue = v->queue_sel < v->ops->nr_queues;

	switch (off) {
	case REG_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case REG_VERSION:
		return VIRTIO_MMIO_VERSION;
	case REG_DEVICE_ID:
		return v->ops->device_id;
	case REG_VENDOR_ID:
		return HUTCH_VENDOR_ID;
	case REG_DEVICE_FEATURES:
		if (v->device_features_sel > 1)
			return 0;
		return (uint32_t)(offered(v) >> (32 * v->device_features_sel));
	case REG_QUEUE_NUM_MAX:
		return have_queue ? v->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return have_queue && v->queue_ready[v->queue_sel];
	case REG_INTERRUPT_STATUS:
		return v->isr;
	case REG_STATUS:
		return v->status;
	case REG_CONFIG_GENERATION:
		return v->config_generation;
	}
	/* No shared memory regions: their length reads as -1 (section 4.2.2). */
	if (off >= REG_SHM_LEN_LOW && off <= REG_SHM_BASE_HIGH)
		return 0xffffffff;
	count_event(v, &v->events.bad_access,
		    "read register 0x%03" PRIx64 ", which is write-only or none", off);
	return 0;
}

static void config_access(struct virtio_dev *v, uint64_t off, uint8_t *data, unsigned size,
			  bool is_write)
{
	uint64_t len = v->ops->config_len;

	if (off >= len || size > len - off) {
		count_event(v, &v->events.bad_access,
			    "accessed config byte 0x%" PRIx64 " of %" PRIu64, off, len);
		if (!is_write)
			memset(data, 0, size);
		return;
	}
	if (!is_write)
		v->ops->config_read(v->priv, (uint32_t)off, data, size);
	else if (v->ops->config_write)
		v->ops->config_write(v->priv, (uint32_t)off, data, size);
}

static void mmio_access(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct virtio_dev *v = opaque;
	uint32_t val = 0;

	pthread_mutex_lock(&v->lock);
	if (off >= REG_CONFIG) {
		config_access(v, off - REG_CONFIG, data, size, is_write);
	} else if (size != 4 || (off & 3)) {
		/* Section 4.2.2.2: the control registers are 32 bits wide and aligned. */
		count_event(v, &v->events.bad_access,
			    "used a %u-byte access at register 0x%03" PRIx64, size, off);
		if (!is_write)
			memset(data, 0, size);
	} else if (is_write) {
		memcpy(&val, data, 4);
		reg_write(v, off, val);
	} else {
		val = reg_read(v, off);
		memcpy(data, &val, 4);
	}
	pthread_mutex_unlock(&v->lock);
}

static void on_notify(void *arg, int fd, uint32_t events)
{
	struct notifier *n = arg;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0)
		return; /* EAGAIN: nothing after all */
	pthread_mutex_lock(&n->vdev->lock);
	notify(n->vdev, n->q);
	pthread_mutex_unlock(&n->vdev->lock);
}

static void release_fds(struct virtio_dev *v)
{
	struct error err = {0};

	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct notifier *n = &v->notifiers[i];

		if (n->fd < 0)
			continue;
		v->vm->unwatch(v->vm->vm, n->fd);
		if (n->registered)
			v->vm->ioeventfd(v->vm->vm, n->fd, v->base + REG_QUEUE_NOTIFY, 4, i, false,
					 &err);
		close(n->fd);
		n->fd = -1;
	}
	if (v->irq_fd >= 0) {
		if (v->irqfd_registered)
			v->vm->irqfd(v->vm->vm, v->irq_fd, v->irq, false, &err);
		close(v->irq_fd);
		v->irq_fd = -1;
	}
}

static void vdev_release(struct device *dev)
{
	struct virtio_dev *v = dev->priv;

	release_fds(v);
	if (v->ops->release)
		v->ops->release(v->priv);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static int setup_fds(struct virtio_dev *v, struct error *err)
{
	const struct vm_services *vm = v->vm;

	v->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->irq_fd < 0)
		return error_set(err, errno, "cannot create an eventfd");
	if (vm->irqfd(vm->vm, v->irq_fd, v->irq, true, err) < 0)
		return -1;
	v->irqfd_registered = true;
	for (unsigned i = 0; i < v->ops->nr_queues; i++) {
		struct notifier *n = &v->notifiers[i];

		n->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->fd < 0)
			return error_set(err, errno, "cannot create an eventfd");
		if (vm->ioeventfd(vm->vm, n->fd, v->base + REG_QUEUE_NOTIFY, 4, i, true, err) < 0)
			return -1;
		n->registered = true;
		if (vm->watch(vm->vm, n->fd, EPOLLIN, on_notify, n, err) < 0)
			return -1;
	}
	return 0;
}

struct device *virtio_mmio_create(const struct vm_services *vm, const char *name,
				  const struct virtio_device_ops *ops, void *priv,
				  struct error *err)
{
	pthread_mutexattr_t attr;
	struct virtio_dev *v;
	struct device *dev;

	if (ops->nr_queues == 0 || ops->nr_queues > VIRTIO_MAX_QUEUES || ops->queue_max == 0 ||
	    ops->queue_max > VIRTQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)) ||
	    ops->config_len > 0x1000 - REG_CONFIG || (ops->config_len && !ops->config_read)) {
		/* A device type's own table: a bug of hutch's, said as such. */
		if (ops->release)
			ops->release(priv);
		error_set(err, 0, "virtio device %s is described wrongly", name);
		return NULL;
	}
	v = xcalloc(1, sizeof(*v));
	v->vm = vm;
	v->ops = ops;
	v->priv = priv;
	v->name = name;
	v->irq_fd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		v->notifiers[i] = (struct notifier){.vdev = v, .q = i, .fd = -1};
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&v->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	dev = device_new(name, v);
	dev->release = vdev_release;
	if (vm->alloc_irq(vm->vm, name, &v->irq, err) < 0 ||
	    vm->alloc_mmio(vm->vm, name, 0x1000, 0x1000, &v->base, err) < 0 ||
	    setup_fds(v, err) < 0) {
		device_free(dev);
		return NULL;
	}
	dev->irq = (int)v->irq;
	/* An ACPI name of its own from its line: VR16, VR17, ... */
	snprintf(dev->acpi.name, sizeof(dev->acpi.name), "VR%02u", v->irq % 100);
	dev->acpi.hid = "LNRO0005";
	dev->acpi.uid = (uint8_t)v->irq;
	device_add_range(dev, DEVICE_MMIO, v->base, VIRTIO_MMIO_SIZE, mmio_access);
	return dev;
}

uint64_t virtio_features(const struct virtio_dev *vdev)
{
	return vdev->driver_features;
}

struct virtq *virtio_queue(struct virtio_dev *vdev, unsigned q)
{
	return q < vdev->ops->nr_queues ? &vdev->queues[q] : NULL;
}

const struct guest_memory *virtio_memory(const struct virtio_dev *vdev)
{
	return vdev->vm->memory(vdev->vm->vm);
}

void virtio_interrupt(struct virtio_dev *vdev, unsigned q)
{
	pthread_mutex_lock(&vdev->lock);
	if (q < vdev->ops->nr_queues && running(vdev) && virtq_should_interrupt(&vdev->queues[q]))
		raise_irq(vdev, INT_VRING);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_broken(struct virtio_dev *vdev, unsigned q, enum virtq_error why)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->events.last_error = why;
	count_event(vdev, &vdev->events.broken, "broke the rules of queue %u: %s", q,
		    virtq_strerror(why));
	/* Nothing more is taken from any queue, nor pushed to one, until the reset. */
	for (unsigned i = 0; i < vdev->ops->nr_queues; i++)
		vdev->queues[i].started = false;
	need_reset(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_lock(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
}

void virtio_unlock(struct virtio_dev *vdev)
{
	pthread_mutex_unlock(&vdev->lock);
}

struct virtio_dev *virtio_of(struct device *dev)
{
	return dev->priv;
}

struct virtio_events virtio_events(struct virtio_dev *vdev)
{
	struct virtio_events e;

	pthread_mutex_lock(&vdev->lock);
	e = vdev->events;
	pthread_mutex_unlock(&vdev->lock);
	return e;
}

uint32_t virtio_status(struct virtio_dev *vdev)
{
	uint32_t s;

	pthread_mutex_lock(&vdev->lock);
	s = vdev->status;
	pthread_mutex_unlock(&vdev->lock);
	return s;
}
