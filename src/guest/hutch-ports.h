/*
 * The I/O ports through which the guest init talks to hutch's VMM
 * (src/vmm/devices/ctlport.c). Shared by both sides: keep them in step.
 */
#ifndef HUTCH_GUEST_PORTS_H
#define HUTCH_GUEST_PORTS_H

#define HUTCH_PORT_BASE 0x510
#define HUTCH_PORT_COUNT 8
/* 1-byte write: the command's exit status (0-255, 128+N for signal N). */
#define HUTCH_PORT_EXIT 0x510
/* Any write: guest init is running (timed for --timings and the benchmark). */
#define HUTCH_PORT_MARKER 0x511
/* 4-byte read: host console size, rows << 16 | columns; 0 when unknown. */
#define HUTCH_PORT_WINSIZE 0x514

#endif
