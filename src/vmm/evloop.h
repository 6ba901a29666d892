/*
 * The VMM's event loop: devices register fds (an ioeventfd a queue
 * notification arrives on, a backend's socket, a timer) with a function to
 * call when one is ready. The loop is an epoll set; the host console loop
 * watches its fd with the rest and dispatches from the main thread, so a
 * handler never runs concurrently with another handler (it may with the
 * vCPUs: devices lock their own state). Sources are added before the
 * vCPUs start; removing one is allowed at any time from a handler.
 */
#ifndef HUTCH_VMM_EVLOOP_H
#define HUTCH_VMM_EVLOOP_H

#include <stdint.h>

#include "common/error.h"

#define EVLOOP_MAX_SOURCES 32

/* events: the EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits that are ready. */
typedef void evloop_fn(void *arg, int fd, uint32_t events);

struct evloop_source {
	int fd; /* -1: the slot is free */
	evloop_fn *fn;
	void *arg;
};

struct evloop {
	int epoll_fd; /* -1 before evloop_init() */
	struct evloop_source sources[EVLOOP_MAX_SOURCES];
};

int evloop_init(struct evloop *loop, struct error *err);

/* Call fn(arg, fd, ready) whenever fd is ready for events (EPOLLIN, EPOLLOUT). */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn *fn, void *arg,
	       struct error *err);

/* Stop watching fd (the caller still owns and closes it). */
void evloop_remove(struct evloop *loop, int fd);

/*
 * Wait up to timeout_ms (0: do not wait, -1: forever) and call the handler
 * of every ready source once. Returns how many ran, or -1 with err.
 */
int evloop_dispatch(struct evloop *loop, int timeout_ms, struct error *err);

/* Close the epoll set; the sources' fds stay theirs. Safe on a loop never set up. */
void evloop_release(struct evloop *loop);

#endif
