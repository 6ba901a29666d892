/*
 * User-mode networking for a box (--net user): Debian's pasta (package
 * passt) connects the box's network namespace to the host's network
 * through a tap device, with sockets of its own on the host side. No root
 * is needed; the box sees the host's addresses and routes, IPv4 and IPv6.
 *
 * What hutch asks of pasta (DESIGN-NOTES section 5, measured on 0.0~git
 * 20230309): --no-map-gw and -t/-u/-T/-U none, so that none of the host's
 * loopback services is reachable from the box (pasta's defaults map the
 * gateway to the host and forward every bound port), except the ports
 * --host-port names (-T PORT); published ports bound as -t ADDR/PORT:PORT,
 * because a bare -t PORT binds every address of the host; and DNS through
 * --dns-forward NET_DNS_ADDR, which the box's /etc/resolv.conf names
 * (pasta writes none, and -D with --dns-forward breaks its replies). Under
 * --net user, hutch's own forwarder (net/usernet_dns.h) holds that address
 * on the box's loopback, which wins: the box's queries are logged.
 */
#ifndef HUTCH_NET_PASTA_H
#define HUTCH_NET_PASTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* The resolver the box's resolv.conf names, forwarded to the host's (above). */
#define NET_DNS_ADDR "169.254.1.1"

/* One --publish: the host's ADDR:HOSTPORT reaches the box's BOXPORT. */
struct net_publish {
	char addr[46];      /* IPv4 or IPv6, without brackets; 127.0.0.1 by default */
	uint16_t host_port;
	uint16_t box_port;
	bool udp;
};

/* "[ADDR:]HOSTPORT:BOXPORT[/udp|/tcp]", ADDR an IPv4 address or [IPv6]. */
int net_publish_parse(const char *s, struct net_publish *out, struct error *err);
/* A port of the host's loopback the box may reach (--host-port): 1-65535. */
int net_host_port_parse(const char *s, uint16_t *out, struct error *err);
/* "127.0.0.1:8080->80/tcp", for -v and messages. */
void net_publish_describe(const struct net_publish *p, char *buf, size_t len);

/* What one box's pasta forwards. */
struct pasta_config {
	struct net_publish *publish;
	size_t npublish;
	uint16_t *host_ports;
	size_t nhost_ports;
};

/*
 * cfg from --publish and --host-port values (checked when they were read;
 * a bad one fails here too). pasta_config_release() frees what it holds.
 */
int pasta_config_parse(struct pasta_config *cfg, char *const *publish, size_t npublish,
		       char *const *host_ports, size_t nhost_ports, struct error *err);
void pasta_config_release(struct pasta_config *cfg);

/*
 * What --net user needs of this machine, checked before a box starts so
 * that a missing piece is one clear message: pasta installed, and
 * /dev/net/tun there and openable by the caller. *path gets pasta's path
 * (malloc'd).
 */
int pasta_check(char **path, struct error *err);

/*
 * Whether every port cfg publishes is free on the host now: pasta_start()
 * checks it too; a caller that knows no pasta of its own holds them (a new
 * box) may check before it makes anything.
 */
int pasta_ports_free(const struct pasta_config *cfg, struct error *err);

/*
 * Start pasta (at path, from pasta_check) for the network namespace
 * netns_fd, which the caller's user namespace owns; the caller holds
 * CAP_SYS_ADMIN and CAP_NET_ADMIN there, which pasta gets as ambient
 * capabilities, and is in the network namespace pasta's sockets are to
 * live in. Returns once the namespace's interface, addresses and routes
 * are configured and the published ports bound (pasta's first process
 * exits then), with the pid of the pasta that serves the namespace. That
 * one is an orphan: the caller should be a child subreaper
 * (PR_SET_CHILD_SUBREAPER) to reap it, and ends it with pasta_stop().
 * A failure is one line: pasta's own reason, or hutch's check of a port.
 */
pid_t pasta_start(const char *path, const struct pasta_config *cfg, int netns_fd,
		  struct error *err);

/* Kill pasta and reap it (it is the caller's child, as a subreaper). */
void pasta_stop(pid_t pid);

#endif
