/*
 * A virtio device on hutch's machine: what the device type implements
 * (struct virtio_device_ops: its id, features, config space, queues and what
 * to do when one is notified) and what it may call on its transport. The
 * transport is virtio-mmio version 2 (virtio 1.x "modern" only,
 * virtio/mmio.c): it owns the registers, feature negotiation, the status
 * state machine, the queues' configuration (frozen at DRIVER_OK), queue
 * notifications (an ioeventfd each, served by the VM's event loop) and the
 * interrupt (an irqfd). A device type is one file (devices/virtio_rng.c,
 * devices/virtio_blk.c) with a *_create() that calls virtio_mmio_create(),
 * plus one registration line in vm.c.
 */
#ifndef HUTCH_VMM_VIRTIO_VIRTIO_H
#define HUTCH_VMM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/device.h"
#include "vmm/virtio/virtq.h"

/* Device ids (virtio 1.x section 5). */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

/* Transport feature bits the transport itself offers and handles. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev; /* the transport's state for one device */

struct virtio_device_ops {
	uint32_t device_id;
	uint64_t features; /* the device type's own feature bits (below 24, say) */
	unsigned nr_queues;
	uint16_t queue_max;  /* <= VIRTQ_MAX_SIZE */
	uint32_t config_len; /* bytes of device-specific config space */
	/* Read len bytes at off (< config_len, in range) of the config space. */
	void (*config_read)(void *priv, uint32_t off, void *buf, uint32_t len);
	/* NULL: the config space is read-only, writes are ignored. */
	void (*config_write)(void *priv, uint32_t off, const void *buf, uint32_t len);
	/*
	 * The driver set DRIVER_OK: features are final (virtio_features()),
	 * queues started. Non-zero refuses (the device is marked NEEDS_RESET).
	 */
	int (*activate)(void *priv, struct virtio_dev *vdev);
	/*
	 * The driver notified queue q; called from the VM's event loop (or a
	 * vCPU thread) with the device's lock held, like every callback here.
	 */
	void (*notify)(void *priv, struct virtio_dev *vdev, unsigned q);
	/* The driver reset the device: drop in-flight state. May be NULL. */
	void (*reset)(void *priv);
	/* Free priv when the VM goes. May be NULL. */
	void (*release)(void *priv);
};

/*
 * Make a virtio-mmio device named name (for the log and the DSDT) whose
 * type is ops with state priv, placed in the VM's MMIO window with a line
 * of its own, described in the DSDT as LNRO0005. Returns the struct device
 * for vm_add_device(), or NULL with err (priv is then released by ops).
 */
struct device *virtio_mmio_create(const struct vm_services *vm, const char *name,
				  const struct virtio_device_ops *ops, void *priv,
				  struct error *err);

/* The negotiated features (valid from activate on). */
uint64_t virtio_features(const struct virtio_dev *vdev);

/* Queue q of vdev (q < nr_queues), started at DRIVER_OK. */
struct virtq *virtio_queue(struct virtio_dev *vdev, unsigned q);

/* Guest memory, for device types that read or write guest buffers directly. */
const struct guest_memory *virtio_memory(const struct virtio_dev *vdev);

/* Chains were pushed on queue q: interrupt the driver if it wants one. */
void virtio_interrupt(struct virtio_dev *vdev, unsigned q);

/*
 * The guest broke the rules on queue q (why): count it, log it once, mark
 * the device NEEDS_RESET and stop serving it until the driver resets it.
 */
void virtio_broken(struct virtio_dev *vdev, unsigned q, enum virtq_error why);

/*
 * The device's lock (recursive), held around every register access and
 * callback. A device type that pops or pushes chains outside its callbacks
 * (an I/O thread) holds it around those calls: a reset from a vCPU may
 * otherwise take the queue away in the middle of one.
 */
void virtio_lock(struct virtio_dev *vdev);
void virtio_unlock(struct virtio_dev *vdev);

/* Device status bits (virtio 1.x section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/*
 * What a driver did against the rules, counted per device since it was
 * made (resets do not clear them); the first one of all is logged.
 */
struct virtio_events {
	unsigned long broken;	     /* virtio_broken(): a queue's rules, a refused activate */
	unsigned long bad_queue;     /* a queue's rings refused at DRIVER_OK (virtq_start) */
	unsigned long frozen_writes; /* queue or feature registers written when they are final */
	unsigned long bad_features;  /* FEATURES_OK refused: no VERSION_1, or bits not offered */
	unsigned long bad_status;    /* a status write out of order or clearing bits */
	unsigned long bad_access;    /* a register access of the wrong size, place or direction */
	enum virtq_error last_error; /* the latest queue error, VIRTQ_OK if none */
};

/* The transport state of a device virtio_mmio_create() made (its priv). */
struct virtio_dev *virtio_of(struct device *dev);

/* Its events so far (a snapshot). */
struct virtio_events virtio_events(struct virtio_dev *vdev);

/* The device status register as the driver would read it. */
uint32_t virtio_status(struct virtio_dev *vdev);

#endif
