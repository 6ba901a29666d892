#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vmm/kvm.h"
#include "vmm/memory.h"
#include "common/banned.h"

int guest_memory_init(struct guest_memory *mem, uint64_t size, const struct guest_region *layout,
		      unsigned n, struct error *err)
{
	uint64_t off = 0;
	int fd;
	void *p;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	fd = memfd_create("hutch-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return error_set(err, errno, "cannot create the guest memory file");
	/* A memfd's pages are allocated as touched: the size costs nothing yet. */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		error_set(err, errno, "cannot size %llu MiB of guest memory",
			  (unsigned long long)(size >> 20));
		close(fd);
		return -1;
	}
	/*
	 * MAP_NORESERVE: guest RAM the guest never touches costs the host
	 * nothing, as with every VMM; the size was checked against the host's.
	 */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		error_set(err, errno, "cannot map %llu MiB of guest memory",
			  (unsigned long long)(size >> 20));
		close(fd);
		return -1;
	}
	mem->fd = fd;
	/* Guest RAM in a core dump of hutch would leak the guest's secrets. */
	madvise(p, size, MADV_DONTDUMP);
	/*
	 * Huge pages where the host allows them for shared memory
	 * (/sys/kernel/mm/transparent_hugepage/shmem_enabled "advise", or
	 * "always"; not with Debian's default "never"): KVM then maps guest
	 * RAM with 2 MiB pages, so the guest's first touch of its memory takes
	 * one fault per 2 MiB instead of 512. QEMU asks the same for its RAM.
	 * A host without THP says EINVAL: nothing lost.
	 */
	madvise(p, size, MADV_HUGEPAGE);
	mem->base = p;
	mem->size = size;
	mem->nr_regions = n < VMM_MAX_REGIONS ? n : VMM_MAX_REGIONS;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		if (layout[i].size > size - off) {
			guest_memory_release(mem);
			return error_set(err, 0, "the guest memory layout is larger than its memory");
		}
		mem->regions[i] = layout[i];
		mem->regions[i].host = mem->base + off;
		off += mem->regions[i].size;
	}
	return 0;
}

int guest_memory_register(const struct guest_memory *mem, int vm_fd, struct error *err)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
		    .slot = i,
		    .guest_phys_addr = mem->regions[i].gpa,
		    .memory_size = mem->regions[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].host,
		};
		if (kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return error_set(err, errno, "cannot give guest memory slot %u to KVM", i);
	}
	return 0;
}

void guest_memory_release(struct guest_memory *mem)
{
	if (mem->base) {
		munmap(mem->base, mem->size);
		close(mem->fd);
	}
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

void *guest_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return r->host + (gpa - r->gpa);
	}
	return NULL;
}

static int pread_full(int fd, uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return errno = 0, -1;
		p += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int guest_memory_read_file(const struct guest_memory *mem, uint64_t gpa, int fd, uint64_t off,
			   uint64_t len)
{
	uint8_t *dst = guest_ptr(mem, gpa, len);
	off_t in = (off_t)off;

	if (!dst)
		return errno = ERANGE, -1;
	/* sendfile writes at the memfd's own offset, which nothing else uses. */
	if (mem->fd < 0 || !mem->base || lseek(mem->fd, dst - mem->base, SEEK_SET) < 0)
		return pread_full(fd, dst, len, off);
	while (len) {
		ssize_t n = sendfile(mem->fd, fd, &in, len < (1u << 30) ? len : (1u << 30));

		if (n < 0 && errno == EINTR)
			continue;
		/* A file system without splice: read it the plain way. */
		if (n < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return pread_full(fd, dst, len, (uint64_t)in);
		if (n < 0)
			return -1;
		if (n == 0)
			return errno = 0, -1;
		dst += n;
		len -= (uint64_t)n;
	}
	return 0;
}

bool guest_range_is_ram(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	return guest_ptr(mem, gpa, len) != NULL;
}
