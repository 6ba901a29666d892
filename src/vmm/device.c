#include <stdlib.h>

#include "common/util.h"
#include "vmm/device.h"
#include "common/banned.h"

struct device *device_new(const char *name, void *priv)
{
	struct device *dev = xcalloc(1, sizeof(*dev));

	dev->name = name;
	dev->irq = -1;
	dev->priv = priv;
	return dev;
}

void device_add_range(struct device *dev, enum device_space space, uint64_t base, uint64_t len,
		      bus_access_fn *access)
{
	/* A device's own table: more ranges than it was built with is a bug of hutch's. */
	if (dev->nr_ranges == DEVICE_MAX_RANGES)
		abort();
	dev->ranges[dev->nr_ranges++] =
	    (struct device_range){.space = space, .base = base, .len = len, .access = access};
}

int device_attach(struct device *dev, struct bus *pio, struct bus *mmio, struct error *err)
{
	for (unsigned i = 0; i < dev->nr_ranges; i++) {
		const struct device_range *r = &dev->ranges[i];
		struct bus *bus = r->space == DEVICE_PIO ? pio : mmio;

		if (bus_register(bus, r->base, r->len, r->access, dev->priv, dev->name, err) < 0)
			return -1;
	}
	return 0;
}

void device_free(struct device *dev)
{
	if (!dev)
		return;
	if (dev->release)
		dev->release(dev);
	free(dev);
}
