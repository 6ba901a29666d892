/* --net user's DNS, served for pasta's keeper (net/usernet.c): internal to src/net. */
#ifndef HUTCH_NET_USERNET_DNS_H
#define HUTCH_NET_USERNET_DNS_H

#include <sys/types.h>

#include "common/error.h"

struct usernet_dns {
	pid_t pid;
	int pidfd;
	int ready; /* read end of the pipe it says it is ready on */
};

/*
 * Fork a process that serves DNS in the network namespace netns_fd at
 * NET_DNS_ADDR:53 (on its loopback, which wins over the route to pasta's
 * --dns-forward): each query is forwarded to the host's resolver, from
 * the caller's network namespace, the host's, where a loopback resolver
 * is reached too; the answer is sent back and both are logged into
 * log_fd, the box's event log, as the --allow stub does (net/stub.h, event
 * "dns"). It serves until killed or until the caller dies. Call from a
 * process with CAP_SYS_ADMIN and CAP_NET_ADMIN over that namespace.
 */
int usernet_dns_start(struct usernet_dns *d, int netns_fd, int log_fd, struct error *err);

/* Wait (a bounded time) until it serves; -1 with its reason if it cannot. Closes d->ready. */
int usernet_dns_ready(struct usernet_dns *d, struct error *err);

/* End it, if started (the caller reaps it, as any child). */
void usernet_dns_stop(struct usernet_dns *d);

#endif
