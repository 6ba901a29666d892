#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmm/evloop.h"
#include "common/banned.h"

int evloop_init(struct evloop *loop, struct error *err)
{
	for (unsigned i = 0; i < EVLOOP_MAX_SOURCES; i++)
		loop->sources[i] = (struct evloop_source){.fd = -1};
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0)
		return error_set(err, errno, "cannot create the event loop");
	return 0;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn *fn, void *arg,
	       struct error *err)
{
	struct epoll_event ev = {.events = events};

	for (unsigned i = 0; i < EVLOOP_MAX_SOURCES; i++) {
		struct evloop_source *s = &loop->sources[i];

		if (s->fd >= 0)
			continue;
		/* The slot, not the fd, in the event: a handler may reuse a closed fd's number. */
		ev.data.u32 = i;
		if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return error_set(err, errno, "cannot watch fd %d in the event loop", fd);
		*s = (struct evloop_source){.fd = fd, .fn = fn, .arg = arg};
		return 0;
	}
	return error_set(err, 0, "too many event sources (at most %d)", EVLOOP_MAX_SOURCES);
}

void evloop_remove(struct evloop *loop, int fd)
{
	for (unsigned i = 0; i < EVLOOP_MAX_SOURCES; i++) {
		if (loop->sources[i].fd != fd)
			continue;
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		loop->sources[i] = (struct evloop_source){.fd = -1};
		return;
	}
}

int evloop_dispatch(struct evloop *loop, int timeout_ms, struct error *err)
{
	struct epoll_event ev[EVLOOP_MAX_SOURCES];
	int n, ran = 0;

	n = epoll_wait(loop->epoll_fd, ev, EVLOOP_MAX_SOURCES, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return error_set(err, errno, "cannot wait for events");
	}
	for (int i = 0; i < n; i++) {
		uint32_t slot = ev[i].data.u32;
		struct evloop_source s;

		if (slot >= EVLOOP_MAX_SOURCES || loop->sources[slot].fd < 0)
			continue; /* removed by an earlier handler of this round */
		s = loop->sources[slot];
		s.fn(s.arg, s.fd, ev[i].events);
		ran++;
	}
	return ran;
}

void evloop_release(struct evloop *loop)
{
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	loop->epoll_fd = -1;
}
