/*
 * libFuzzer target: the split virtqueue walker (vmm/virtio/virtq.c) against
 * a guest that controls everything it controls in a real VM: the queue's
 * size, the three ring addresses, the negotiated ring features, and every
 * byte of its RAM (descriptors, avail ring, indirect tables). Guest RAM is
 * two regions with a hole between them, each an exact-size heap buffer, so
 * AddressSanitizer sees any access one byte outside. Each input is walked
 * pop by pop (pushing every chain back) until the queue is empty or broken;
 * every chain handed out must lie inside guest RAM and add up, or the input
 * counts as a crash.
 *
 *   make fuzz && build/tests/fuzz/fuzz_virtq tests/fuzz/corpus/virtq
 *
 * Input: size (2 bytes, little-endian), desc, avail and used addresses
 * (4 bytes each), a features byte (bit 0 indirect, bit 1 event index), a
 * queue maximum byte (0 means VIRTQ_MAX_SIZE); the rest is copied to the
 * start of region 0, and what is left of it after LOW bytes to region 1.
 *
 * tests/run-all runs it for a bounded time; a crash it finds becomes a
 * case in tests/unit/test_virtq.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/virtio.h"
#include "vmm/virtio/virtq.h"
#include "fuzz.h"
#include "common/banned.h"

#define LOW 0x4000	 /* region 0: [0, LOW) */
#define HIGH_GPA 0x10000 /* region 1: [HIGH_GPA, HIGH_GPA + HIGH) */
#define HIGH 0x1000
#define HEADER 16

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool inside(const struct guest_memory *mem, const void *p, uint32_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const uint8_t *h = mem->regions[i].host;

		if ((const uint8_t *)p >= h && (const uint8_t *)p <= h + mem->regions[i].size &&
		    len <= (uint64_t)(h + mem->regions[i].size - (const uint8_t *)p))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_chain c;
	struct guest_memory mem = {0};
	uint8_t *low, *high;
	enum virtq_error why;
	uint64_t features = 0;
	struct virtq q = {0};
	size_t n;
	uint16_t max;
	int r;

	if (size < HEADER)
		return 0;
	low = calloc(1, LOW);
	high = calloc(1, HIGH);
	CHECK(low && high);
	mem.nr_regions = 2;
	mem.regions[0] = (struct guest_region){.gpa = 0, .size = LOW, .host = low};
	mem.regions[1] = (struct guest_region){.gpa = HIGH_GPA, .size = HIGH, .host = high};

	q.size = (uint16_t)(data[0] | data[1] << 8);
	/* Mostly near RAM, sometimes anywhere: the top bits of each word widen it. */
	q.desc_gpa = le32(data + 2);
	q.avail_gpa = le32(data + 6);
	q.used_gpa = le32(data + 10);
	if (q.desc_gpa & 0x80000000)
		q.desc_gpa |= 0xffffffff00000000ULL;
	if (data[14] & 1)
		features |= 1ULL << VIRTIO_F_INDIRECT_DESC;
	if (data[14] & 2)
		features |= 1ULL << VIRTIO_F_EVENT_IDX;
	max = data[15] ? data[15] : VIRTQ_MAX_SIZE;
	data += HEADER;
	size -= HEADER;
	n = size < LOW ? size : LOW;
	memcpy(low, data, n);
	if (size > n)
		memcpy(high, data + n, size - n < HIGH ? size - n : HIGH);

	if (virtq_start(&q, &mem, max, features) != VIRTQ_OK) {
		CHECK(!q.started);
		goto out;
	}
	CHECK(q.size && !(q.size & (q.size - 1)) && q.size <= max);
	CHECK(inside(&mem, q.desc, 16 * q.size) && inside(&mem, q.avail, 6 + 2 * q.size) &&
	      inside(&mem, q.used, 6 + 8 * q.size));
	for (unsigned i = 0; i < 2 * VIRTQ_MAX_SIZE + 2; i++) {
		uint64_t rd = 0, wr = 0;

		r = virtq_pop(&q, &c, &why);
		if (r <= 0) {
			CHECK(r == 0 ? why == VIRTQ_OK : why != VIRTQ_OK);
			CHECK(why == VIRTQ_OK || virtq_strerror(why)[0]);
			break;
		}
		CHECK(c.head < q.size && c.nr_segs >= 1 && c.nr_segs <= VIRTQ_MAX_SIZE);
		for (unsigned s = 0; s < c.nr_segs; s++) {
			CHECK(inside(&mem, c.segs[s].host, c.segs[s].len));
			CHECK(!s || c.segs[s].writable || !c.segs[s - 1].writable);
			if (c.segs[s].writable)
				wr += c.segs[s].len;
			else
				rd += c.segs[s].len;
		}
		CHECK(rd == c.readable && wr == c.writable);
		if (c.writable < UINT32_MAX)
			CHECK(virtq_push(&q, &c, (uint32_t)c.writable + 1) == VIRTQ_BAD_USED_LEN);
		CHECK(virtq_push(&q, &c,
				 c.writable > UINT32_MAX ? UINT32_MAX : (uint32_t)c.writable) ==
		      VIRTQ_OK);
		virtq_should_interrupt(&q);
	}
out:
	virtq_reset(&q);
	free(low);
	free(high);
	return 0;
}
