/*
 * Guest RAM: one memfd mapped shared, exposed to KVM as up to
 * VMM_MAX_REGIONS slots laid out by the architecture (x86 leaves a hole
 * below 4 GiB for MMIO). The guest gets exactly the requested size. A memfd
 * rather than anonymous memory so that another process (a vhost-user
 * device, later) can map the same RAM from the fd; it is sealed against
 * shrinking and growing, so no holder of the fd can pull pages from under
 * the VMM (a SIGBUS) or make it larger than the guest was given.
 */
#ifndef HUTCH_VMM_MEMORY_H
#define HUTCH_VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define VMM_MAX_REGIONS 2

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_memory {
	uint8_t *base; /* the whole mapping, NULL when not set up */
	uint64_t size;
	int fd; /* the memfd: offset o is base + o; valid while base is set */
	unsigned nr_regions;
	struct guest_region regions[VMM_MAX_REGIONS];
};

/*
 * Map size bytes and lay them out in guest-physical space as layout says
 * (n regions whose sizes add up to size: the architecture's
 * vmm_arch_memory_layout(); host is filled in here).
 */
int guest_memory_init(struct guest_memory *mem, uint64_t size, const struct guest_region *layout,
		      unsigned n, struct error *err);

/* Hand every region to KVM as a memory slot. */
int guest_memory_register(const struct guest_memory *mem, int vm_fd, struct error *err);

void guest_memory_release(struct guest_memory *mem);

/*
 * Host address of [gpa, gpa + len), or NULL if that range is not entirely
 * inside one RAM region (checked without overflow: gpa and len may come from
 * the guest).
 */
void *guest_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/*
 * Copy len bytes of the file open at fd, from offset off, to guest RAM at
 * [gpa, gpa + len) (inside one region). The kernel copies them from the
 * file's page cache into the memfd's pages (sendfile), so the VMM takes no
 * page fault per 4 KiB page and zeroes no page only to overwrite it; where
 * that cannot be done (no memfd, a file that cannot be spliced) it reads
 * them into the mapping. 0, or -1 with errno set: ERANGE for a range outside
 * RAM, 0 if the file ended first.
 */
int guest_memory_read_file(const struct guest_memory *mem, uint64_t gpa, int fd, uint64_t off,
			   uint64_t len);

/* True if [gpa, gpa + len) is guest RAM. */
bool guest_range_is_ram(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

#endif
