#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "common/banned.h"

void bus_init(struct bus *bus, const char *name, bool trace)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	bus->trace = trace;
	atomic_init(&bus->refused, 0);
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn *access, void *dev,
		 const char *name, struct error *err)
{
	if (len == 0 || base + len < base)
		return error_set(err, 0, "device '%s' has an empty or wrapping range", name);
	if (bus->nr_ranges == BUS_MAX_RANGES)
		return error_set(err, 0, "too many %s devices (at most %d)", bus->name,
				 BUS_MAX_RANGES);
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return error_set(err, 0, "device '%s' overlaps '%s' on the %s bus", name,
					 r->name, bus->name);
	}
	bus->ranges[bus->nr_ranges++] = (struct bus_range){base, len, access, dev, name};
	return 0;
}

static uint64_t load_le(const uint8_t *data, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)data[i] << (8 * i);
	return v;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size, bool is_write)
{
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];

		/* The whole access must fall inside the device's range. */
		if (addr < r->base || addr - r->base >= r->len || size > r->len - (addr - r->base))
			continue;
		r->access(r->dev, addr - r->base, data, size, is_write);
		return true;
	}
	if (!is_write)
		memset(data, 0xff, size);
	atomic_fetch_add(&bus->refused, 1);
	if (bus->trace)
		dprintf(STDERR_FILENO,
			"hutch: vm: refused %s %s of %u byte%s at 0x%" PRIx64 "%s0x%0*" PRIx64 "\n",
			bus->name, is_write ? "write" : "read", size, size == 1 ? "" : "s", addr,
			is_write ? ", value " : ", returned ", (int)size * 2, load_le(data, size));
	return false;
}
