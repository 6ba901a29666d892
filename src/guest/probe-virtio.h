/* hutch-probe virtio (probe_virtio.c): a hostile virtio-mmio driver. */
#ifndef HUTCH_GUEST_PROBE_VIRTIO_H
#define HUTCH_GUEST_PROBE_VIRTIO_H

/* 0: every rule broken on every device got NEEDS_RESET. */
int probe_virtio(void);

#endif
