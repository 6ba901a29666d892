/*
 * virtio-rng (virtio 1.x section 5.4): one queue of device-writable
 * buffers, each filled from the host's getrandom(). No features, no config
 * space. Always present: guest entropy costs nothing until the guest asks,
 * and a guest without it can wait long at boot for its own pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "common/util.h"
#include "vmm/devices/devices.h"
#include "vmm/virtio/virtio.h"
#include "common/banned.h"

/* Bytes filled per notification at most: one guest cannot keep the event loop busy. */
#define RNG_MAX_PER_NOTIFY (1U << 20)

struct virtio_rng {
	struct virtq_chain chain; /* one at a time, from the event loop */
};

/* Fill the writable buffers of c; returns the bytes written. */
static uint32_t fill(const struct virtq_chain *c, uint32_t budget)
{
	uint32_t done = 0;

	for (unsigned i = 0; i < c->nr_segs && done < budget; i++) {
		uint8_t *p = c->segs[i].host;
		uint32_t len = c->segs[i].len, off = 0;

		if (!c->segs[i].writable)
			continue;
		if (len > budget - done)
			len = budget - done;
		while (off < len) {
			ssize_t n = getrandom(p + off, len - off, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return done + off; /* the host cannot: give what there is */
			off += (uint32_t)n;
		}
		done += len;
		if (len < c->segs[i].len)
			break; /* out of budget mid-buffer: the rest stays unwritten */
	}
	return done;
}

static void rng_notify(void *priv, struct virtio_dev *vdev, unsigned qi)
{
	struct virtio_rng *rng = priv;
	struct virtq *q = virtio_queue(vdev, qi);
	uint32_t budget = RNG_MAX_PER_NOTIFY, n;
	enum virtq_error why;
	int r;

	while (budget > 0 && (r = virtq_pop(q, &rng->chain, &why)) > 0) {
		n = fill(&rng->chain, budget);
		budget -= n;
		virtq_push(q, &rng->chain, n);
	}
	if (r < 0)
		virtio_broken(vdev, qi, why);
	virtio_interrupt(vdev, qi);
}

static void rng_release(void *priv)
{
	free(priv);
}

static const struct virtio_device_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 1,
    .queue_max = 64,
    .notify = rng_notify,
    .release = rng_release,
};

struct device *virtio_rng_create(const struct vm_services *vm, struct error *err)
{
	return virtio_mmio_create(vm, "virtio-rng", &rng_ops, xcalloc(1, sizeof(struct virtio_rng)),
				  err);
}
