/*
 * Dispatch of port I/O and MMIO exits to emulated devices. Every access that
 * no device claims is refused: reads return all-ones, writes are dropped,
 * and the access is counted (and logged with --trace-io). Devices register
 * before the vCPUs start; the table is read-only afterwards, so lookups take
 * no lock (each device locks its own state).
 */
#ifndef HUTCH_VMM_BUS_H
#define HUTCH_VMM_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

#define BUS_MAX_RANGES 16

/* data holds size (1, 2, 4 or 8) bytes, little-endian; fill it on a read. */
typedef void bus_access_fn(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_access_fn *access;
	void *dev;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio" */
	unsigned nr_ranges;
	struct bus_range ranges[BUS_MAX_RANGES];
	bool trace;
	atomic_ulong refused;
};

void bus_init(struct bus *bus, const char *name, bool trace);

/* Claim [base, base + len) for dev; ranges may not overlap. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn *access, void *dev,
		 const char *name, struct error *err);

/* Route one access of size bytes at addr; returns false if it was refused. */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size, bool is_write);

#endif
