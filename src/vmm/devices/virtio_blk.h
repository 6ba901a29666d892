/*
 * virtio-blk (virtio 1.x section 5.2): a disk (vmm/disk/disk.h) as a
 * virtio-mmio device. blk_request.c serves one request chain against a
 * disk, with no transport (unit-tested on its own); virtio_blk.c is the
 * device type: features, config space and the queue.
 */
#ifndef HUTCH_VMM_DEVICES_VIRTIO_BLK_H
#define HUTCH_VMM_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/device.h"
#include "vmm/disk/disk.h"
#include "vmm/virtio/virtq.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_HDR_LEN 16 /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_DWZ_LEN 16 /* le64 sector, le32 num_sectors, le32 flags */
#define VIRTIO_BLK_WZ_F_UNMAP 1u

/* What the device offers for discard and write-zeroes (the config space says so too). */
#define VIRTIO_BLK_MAX_DWZ_SECTORS (1u << 22) /* 2 GiB a segment */
#define VIRTIO_BLK_MAX_DWZ_SEGS 16u

/* The config space as the driver reads it (5.2.4), little-endian, 60 bytes. */
struct virtio_blk_config {
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads, sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp, alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed));

/* What a request did, for the log and the counters. */
enum blk_outcome {
	BLK_DONE,	/* served; the status byte says how (IOERR, UNSUPP included) */
	BLK_MALFORMED,	/* no room for the status byte: nothing written, the guest's bug */
	BLK_HOST_ERROR, /* the disk failed (err says why); IOERR was returned */
};

/*
 * Serve the request in chain c against disk d (writes refused when ro),
 * read and written in place in guest memory. *written is the byte count
 * for virtq_push() (data written to the guest plus the status byte, 0 for
 * a malformed chain). err is filled for BLK_HOST_ERROR.
 */
enum blk_outcome blk_request(struct disk *d, bool ro, const struct virtq_chain *c,
			     uint32_t *written, struct error *err);

/* The config space and features the device offers for d (ro: VIRTIO_BLK_F_RO). */
void blk_config(const struct disk *d, uint16_t queue_size, struct virtio_blk_config *cfg);
uint64_t blk_features(const struct disk *d, bool ro);

/*
 * A virtio-blk device named name ("vda") serving disk d, which it owns
 * from here on (closed on failure too). ro: read-only for the guest.
 */
struct device *virtio_blk_create(const struct vm_services *vm, const char *name, struct disk *d,
				 bool ro, struct error *err);

#endif
