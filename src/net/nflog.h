/*
 * The denials of the allow-list, as the kernel logs them: the deny rule
 * (net/allow.c) sends each refused packet's headers to an NFLOG group,
 * read here on a nfnetlink socket in the box's network namespace by
 * hutch's process in the namespace's owner (net/netns.c). The packet
 * itself says where it was going; the prefix says which rule refused it.
 */
#ifndef HUTCH_NET_NFLOG_H
#define HUTCH_NET_NFLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* A socket bound to NFLOG group, copying the first bytes of each packet. */
int nflog_open(uint16_t group, struct error *err);

struct nflog_denial {
	const char *protocol; /* "tcp", "udp", "icmp", "ipv6-icmp" or "ip" */
	char address[46];     /* the destination */
	int family;           /* AF_INET or AF_INET6 */
	int port;             /* TCP/UDP destination port, else -1 */
	char prefix[64];      /* the log rule's prefix */
};

/*
 * Parse one nfnetlink message of len bytes; 1 and *out filled for a packet,
 * 0 for anything else. Never reads past len (the bytes come from the
 * kernel, but the packet in them from the box).
 */
int nflog_parse(const void *msg, size_t len, struct nflog_denial *out);

#endif
