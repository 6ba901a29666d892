/*
 * One split virtqueue (virtio 1.x, section 2.7) as the device side walks
 * it, with every check the peers' CVEs taught (docs/vm.md, design notes
 * section 6): the guest owns the rings and may change them at any moment,
 * so each guest field is read once into host memory and checked there; a
 * chain that breaks a rule ends the walk with an enum virtq_error and the
 * queue is not touched again until the driver resets the device. Nothing
 * here reads or writes outside guest RAM, whatever the guest wrote.
 */
#ifndef HUTCH_VMM_VIRTIO_VIRTQ_H
#define HUTCH_VMM_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

/* The largest queue a hutch device offers (QueueNumMax). */
#define VIRTQ_MAX_SIZE 256

enum virtq_error {
	VIRTQ_OK = 0,
	VIRTQ_BAD_SIZE,		/* zero, not a power of two, or over the maximum */
	VIRTQ_BAD_RING,		/* a ring misaligned or not inside guest RAM */
	VIRTQ_BAD_AVAIL_IDX,	/* avail.idx ran more than size ahead of what was taken */
	VIRTQ_BAD_HEAD,		/* a head index >= size */
	VIRTQ_BAD_NEXT,		/* a next index >= size */
	VIRTQ_CHAIN_TOO_LONG,	/* more descriptors than the queue (or table) holds: a loop */
	VIRTQ_BAD_BUFFER,	/* a buffer not inside one guest RAM region */
	VIRTQ_READ_AFTER_WRITE, /* a device-readable buffer after a device-writable one */
	VIRTQ_BAD_INDIRECT,	/* nested, chained, misaligned, empty or unnegotiated */
	VIRTQ_BAD_USED_LEN,	/* the device said it wrote more than the chain can hold */
};

/* One buffer of a chain, already translated to host memory and checked. */
struct virtq_seg {
	void *host;
	uint32_t len;
	bool writable; /* device-writable (VIRTQ_DESC_F_WRITE) */
};

/* One descriptor chain taken from the avail ring. */
struct virtq_chain {
	uint16_t head;
	unsigned nr_segs;
	uint64_t readable, writable; /* the bytes of each kind, summed */
	struct virtq_seg segs[VIRTQ_MAX_SIZE];
};

struct virtq {
	/* As the driver set them through the transport. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Set by virtq_start(). */
	const struct guest_memory *mem;
	bool started;
	bool indirect;	/* VIRTIO_F_INDIRECT_DESC negotiated */
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	uint16_t last_avail; /* the next avail entry to take */
	uint16_t used_idx;   /* the next used entry to fill */
	uint16_t signalled;  /* used_idx when the driver was last interrupted */
	void *desc, *avail, *used; /* the rings in host memory */
};

/*
 * Check the rings the driver configured (size <= max, alignment, all three
 * inside guest RAM) and get ready to walk them; features are the
 * negotiated ones. Returns VIRTQ_OK or why the queue cannot start.
 */
enum virtq_error virtq_start(struct virtq *q, const struct guest_memory *mem, uint16_t max,
			     uint64_t features);

/* Back to the state before virtq_start() (a device reset); keeps nothing. */
void virtq_reset(struct virtq *q);

/*
 * Take the next available chain into *c. Returns 1 with a chain, 0 if the
 * ring is empty, -1 with *why set if the guest broke a rule (the queue is
 * then unusable until reset).
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c, enum virtq_error *why);

/*
 * Return chain c to the driver through the used ring, saying the device
 * wrote written bytes into its writable buffers (<= c->writable).
 */
enum virtq_error virtq_push(struct virtq *q, const struct virtq_chain *c, uint32_t written);

/* True if the driver wants an interrupt for what was pushed since the last one. */
bool virtq_should_interrupt(struct virtq *q);

/* A short description of e for the log ("next index out of range"). */
const char *virtq_strerror(enum virtq_error e);

#endif
