/*
 * The box's network: the network namespace its programs live in, and
 * what is set up in it. Today a box has only loopback (--net none); user-
 * mode networking through pasta and an nftables allow-list loaded from an
 * outer user namespace (issue 11, docs/architecture.md) set up the same
 * namespace further, before the box joins it.
 */
#ifndef HUTCH_NET_NET_H
#define HUTCH_NET_NET_H

#include "common/error.h"

/*
 * Make a new network namespace for the calling thread (unshare(2) acts on
 * the thread alone) with its loopback interface up, and return an fd of
 * it, O_CLOEXEC, for the box to join with setns(2); -1 on error. The
 * thread stays in it.
 */
int netns_create(struct error *err);

/*
 * Move the calling process into a fresh network namespace with loopback
 * up: what a lingering box does before its next run, so that no socket or
 * TIME_WAIT of the last run's is seen by the next.
 */
int netns_renew(struct error *err);

/* Bring up the loopback interface of the current network namespace. */
int net_loopback_up(struct error *err);

#endif
