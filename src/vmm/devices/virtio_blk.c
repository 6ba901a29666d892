/*
 * The virtio-blk device type (virtio 1.x section 5.2) on the virtio-mmio
 * transport: one request queue, served in the VM's event loop when the
 * driver notifies it, each chain by blk_request(). The disk's own
 * abilities decide the features: read-only gets VIRTIO_BLK_F_RO, discard
 * and write-zeroes are offered when the format can do them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/devices/virtio_blk.h"
#include "vmm/virtio/virtio.h"
#include "common/banned.h"

#define BLK_QUEUE_SIZE VIRTQ_MAX_SIZE

struct virtio_blk {
	struct virtio_device_ops ops; /* per device: the features depend on the disk */
	struct disk *disk;
	bool ro;
	char name[16];
	struct virtio_blk_config config;
	unsigned long malformed, host_errors; /* logged the first time each */
	struct virtq_chain chain;	      /* the one being served (6 KiB: not on the stack) */
};

static void blk_config_read(void *priv, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk *b = priv;

	/* The transport checked off + len <= config_len. */
	memcpy(buf, (const uint8_t *)&b->config + off, len);
}

static void blk_notify(void *priv, struct virtio_dev *vdev, unsigned qi)
{
	struct virtio_blk *b = priv;
	struct virtq *q = virtio_queue(vdev, qi);
	enum virtq_error why = VIRTQ_OK;
	struct error err = {0};
	uint32_t written;
	bool pushed = false;
	int r;

	while ((r = virtq_pop(q, &b->chain, &why)) == 1) {
		switch (blk_request(b->disk, b->ro, &b->chain, &written, &err)) {
		case BLK_DONE:
			break;
		case BLK_MALFORMED:
			/* Its buffers go back untouched: the only one it harms is its driver. */
			if (b->malformed++ == 0)
				dprintf(STDERR_FILENO,
					"hutch: vm: %s: a request without a status byte (a guest "
					"driver bug), returned unserved\n",
					b->name);
			break;
		case BLK_HOST_ERROR:
			if (b->host_errors++ == 0)
				dprintf(STDERR_FILENO,
					"hutch: vm: %s: %s (the guest got an I/O error)\n", b->name,
					err.msg);
			break;
		}
		why = virtq_push(q, &b->chain, written);
		if (why != VIRTQ_OK)
			break;
		pushed = true;
	}
	if (pushed)
		virtio_interrupt(vdev, qi);
	if (r < 0 || why != VIRTQ_OK)
		virtio_broken(vdev, qi, why);
}

static int blk_activate(void *priv, struct virtio_dev *vdev)
{
	return 0;
}

static void blk_release(void *priv)
{
	struct virtio_blk *b = priv;

	disk_close(b->disk);
	free(b);
}

struct device *virtio_blk_create(const struct vm_services *vm, const char *name, struct disk *d,
				 bool ro, struct error *err)
{
	struct virtio_blk *b = xcalloc(1, sizeof(*b));

	b->disk = d;
	b->ro = ro || d->read_only;
	snprintf(b->name, sizeof(b->name), "%s", name);
	blk_config(d, BLK_QUEUE_SIZE, &b->config);
	b->ops = (struct virtio_device_ops){
	    .device_id = VIRTIO_ID_BLOCK,
	    .features = blk_features(d, b->ro),
	    .nr_queues = 1,
	    .queue_max = BLK_QUEUE_SIZE,
	    .config_len = sizeof(b->config),
	    .config_read = blk_config_read,
	    .activate = blk_activate,
	    .notify = blk_notify,
	    .release = blk_release,
	};
	return virtio_mmio_create(vm, b->name, &b->ops, b, err);
}
