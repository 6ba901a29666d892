/*
 * The split virtqueue walker (virtio 1.x section 2.7). The guest may change
 * the rings under us at any moment: every guest field is loaded once,
 * through a volatile pointer, into a local and checked there; the acquire
 * fence after avail.idx orders the ring and descriptor loads after it, the
 * release fence before used.idx publishes the used element first, and a
 * full fence separates our stores from the loads that decide on an
 * interrupt or a notification (section 2.7.7 and 2.7.10).
 */
#include <stddef.h>
#include <string.h>

#include "vmm/virtio/virtio.h"
#include "vmm/virtio/virtq.h"
#include "common/banned.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* A descriptor as the guest lays it out; packed: an indirect table may be at any address. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
} __attribute__((packed));

_Static_assert(sizeof(struct vring_desc) == 16, "virtq descriptor size");

/* Byte sizes of the three rings (with the event fields) for a queue of n. */
static uint64_t desc_bytes(uint64_t n)
{
	return 16 * n;
}

static uint64_t avail_bytes(uint64_t n)
{
	return 6 + 2 * n;
}

static uint64_t used_bytes(uint64_t n)
{
	return 6 + 8 * n;
}

static uint16_t load16(const void *p)
{
	return *(const volatile uint16_t *)p;
}

static void store16(void *p, uint16_t v)
{
	*(volatile uint16_t *)p = v;
}

/* The avail ring: flags, idx, ring[size], used_event. */
static uint16_t avail_flags(const struct virtq *q)
{
	return load16((const uint8_t *)q->avail);
}

static uint16_t avail_idx(const struct virtq *q)
{
	return load16((const uint8_t *)q->avail + 2);
}

static uint16_t avail_ring(const struct virtq *q, uint16_t i)
{
	return load16((const uint8_t *)q->avail + 4 + 2 * (size_t)(i & (q->size - 1)));
}

static uint16_t used_event(const struct virtq *q)
{
	return load16((const uint8_t *)q->avail + 4 + 2 * (size_t)q->size);
}

/* The used ring: flags, idx, ring[size], avail_event. */
static void set_avail_event(struct virtq *q, uint16_t v)
{
	store16((uint8_t *)q->used + 4 + 8 * (size_t)q->size, v);
}

/* Descriptor i of table t, each field loaded once into d. */
static void load_desc(const void *t, unsigned i, struct vring_desc *d)
{
	const volatile struct vring_desc *g = (const volatile struct vring_desc *)t + i;

	d->addr = g->addr;
	d->len = g->len;
	d->flags = g->flags;
	d->next = g->next;
}

static bool is_pow2(unsigned n)
{
	return n && !(n & (n - 1));
}

enum virtq_error virtq_start(struct virtq *q, const struct guest_memory *mem, uint16_t max,
			     uint64_t features)
{
	uint16_t n = q->size;

	q->started = false;
	if (max > VIRTQ_MAX_SIZE)
		max = VIRTQ_MAX_SIZE;
	if (!is_pow2(n) || n > max)
		return VIRTQ_BAD_SIZE;
	/* Alignment: section 2.7 (descriptors 16, avail 2, used 4). */
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return VIRTQ_BAD_RING;
	q->desc = guest_ptr(mem, q->desc_gpa, desc_bytes(n));
	q->avail = guest_ptr(mem, q->avail_gpa, avail_bytes(n));
	q->used = guest_ptr(mem, q->used_gpa, used_bytes(n));
	if (!q->desc || !q->avail || !q->used) {
		q->desc = q->avail = q->used = NULL;
		return VIRTQ_BAD_RING;
	}
	q->mem = mem;
	q->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	q->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	q->last_avail = q->used_idx = q->signalled = 0;
	q->started = true;
	return VIRTQ_OK;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

/* Append [addr, addr + len) to c, checked. */
static enum virtq_error add_seg(struct virtq *q, struct virtq_chain *c, const struct vring_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	void *host;

	if (c->nr_segs == VIRTQ_MAX_SIZE)
		return VIRTQ_CHAIN_TOO_LONG;
	/* Once one is writable, all the rest are (section 2.7.4). */
	if (!writable && c->nr_segs && c->segs[c->nr_segs - 1].writable)
		return VIRTQ_READ_AFTER_WRITE;
	host = guest_ptr(q->mem, d->addr, d->len);
	if (!host)
		return VIRTQ_BAD_BUFFER;
	c->segs[c->nr_segs++] =
	    (struct virtq_seg){.host = host, .len = d->len, .writable = writable};
	if (writable)
		c->writable += d->len;
	else
		c->readable += d->len;
	return VIRTQ_OK;
}

/* The n descriptors of an indirect table at t, from entry 0. */
static enum virtq_error walk_indirect(struct virtq *q, struct virtq_chain *c, const void *t,
				      unsigned n)
{
	struct vring_desc d;
	enum virtq_error e;
	unsigned i = 0;

	for (unsigned count = 0;; count++) {
		if (count == n)
			return VIRTQ_CHAIN_TOO_LONG;
		load_desc(t, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return VIRTQ_BAD_INDIRECT; /* nested */
		if ((e = add_seg(q, c, &d)) != VIRTQ_OK)
			return e;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return VIRTQ_OK;
		if (d.next >= n)
			return VIRTQ_BAD_NEXT;
		i = d.next;
	}
}

/* The chain from head in the descriptor table. */
static enum virtq_error walk(struct virtq *q, struct virtq_chain *c, uint16_t head)
{
	struct vring_desc d;
	enum virtq_error e;
	uint16_t i = head;
	const void *t;

	for (unsigned count = 0;; count++) {
		if (count == q->size)
			return VIRTQ_CHAIN_TOO_LONG;
		load_desc(q->desc, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* One table, as the whole chain: the head, without NEXT, negotiated. */
			if (!q->indirect || count != 0 || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE)
				return VIRTQ_BAD_INDIRECT;
			t = guest_ptr(q->mem, d.addr, d.len);
			if (!t)
				return VIRTQ_BAD_BUFFER;
			return walk_indirect(q, c, t, d.len / 16);
		}
		if ((e = add_seg(q, c, &d)) != VIRTQ_OK)
			return e;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return VIRTQ_OK;
		if (d.next >= q->size)
			return VIRTQ_BAD_NEXT;
		i = d.next;
	}
}

static int broken(struct virtq *q, enum virtq_error *why, enum virtq_error e)
{
	q->started = false; /* not walked again until reset */
	*why = e;
	return -1;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c, enum virtq_error *why)
{
	uint16_t idx, head;
	enum virtq_error e;

	*why = VIRTQ_OK;
	if (!q->started)
		return 0;
	idx = avail_idx(q);
	if (idx == q->last_avail && q->event_idx) {
		/* Empty: ask for a notification at the next entry, then look again. */
		set_avail_event(q, q->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		idx = avail_idx(q);
	}
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return broken(q, why, VIRTQ_BAD_AVAIL_IDX);
	if (idx == q->last_avail)
		return 0;
	/* The ring entry and descriptors were written before idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = avail_ring(q, q->last_avail);
	if (head >= q->size)
		return broken(q, why, VIRTQ_BAD_HEAD);
	memset(c, 0, offsetof(struct virtq_chain, segs));
	c->head = head;
	if ((e = walk(q, c, head)) != VIRTQ_OK)
		return broken(q, why, e);
	q->last_avail++;
	if (q->event_idx)
		set_avail_event(q, q->last_avail);
	return 1;
}

enum virtq_error virtq_push(struct virtq *q, const struct virtq_chain *c, uint32_t written)
{
	volatile struct vring_used_elem *u;

	if (written > c->writable)
		return VIRTQ_BAD_USED_LEN;
	if (!q->started)
		return VIRTQ_OK; /* broken or reset meanwhile: nothing more goes to the guest */
	if (c->head >= q->size)
		return VIRTQ_BAD_HEAD;
	u = (volatile struct vring_used_elem *)((uint8_t *)q->used + 4) +
	    (q->used_idx & (q->size - 1));
	u->id = c->head;
	u->len = written;
	/* The element before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	store16((uint8_t *)q->used + 2, ++q->used_idx);
	return VIRTQ_OK;
}

bool virtq_should_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled, now = q->used_idx, ev;

	if (!q->started || old == now)
		return false;
	/* Our used.idx store before the driver's flags or used_event. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->signalled = now;
	if (!q->event_idx)
		return !(avail_flags(q) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	ev = used_event(q);
	/* vring_need_event(): did used.idx pass used_event with this batch? */
	return (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
}

const char *virtq_strerror(enum virtq_error e)
{
	switch (e) {
	case VIRTQ_OK:
		return "no error";
	case VIRTQ_BAD_SIZE:
		return "queue size zero, not a power of two or over the maximum";
	case VIRTQ_BAD_RING:
		return "a ring misaligned or outside guest RAM";
	case VIRTQ_BAD_AVAIL_IDX:
		return "avail index more than the queue size ahead";
	case VIRTQ_BAD_HEAD:
		return "head index out of range";
	case VIRTQ_BAD_NEXT:
		return "next index out of range";
	case VIRTQ_CHAIN_TOO_LONG:
		return "descriptor chain too long (a loop)";
	case VIRTQ_BAD_BUFFER:
		return "buffer outside guest RAM";
	case VIRTQ_READ_AFTER_WRITE:
		return "device-readable buffer after a device-writable one";
	case VIRTQ_BAD_INDIRECT:
		return "bad indirect descriptor table";
	case VIRTQ_BAD_USED_LEN:
		return "used length over the chain's writable bytes";
	}
	return "unknown virtqueue error";
}
