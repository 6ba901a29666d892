/*
 * The VMM's event loop (vmm/evloop.c), with eventfds standing in for the
 * ioeventfds devices will register: a ready fd runs its handler once per
 * dispatch with its own argument, an idle one never, a source removed by an
 * earlier handler of the same round is not called, and the limits hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/evloop.h"

struct hit {
	unsigned calls;
	int fd;
	uint32_t events;
	struct evloop *loop;
	int remove_fd; /* a fd this handler takes out of the loop, -1 none */
};

static void on_ready(void *arg, int fd, uint32_t events)
{
	struct hit *h = arg;
	uint64_t v;

	h->calls++;
	h->fd = fd;
	h->events = events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* Level-triggered: the test reads so that the fd goes idle again. */
	}
	if (h->remove_fd >= 0)
		evloop_remove(h->loop, h->remove_fd);
}

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void a_ready_fd_runs_its_handler_and_an_idle_one_does_not(void **state)
{
	struct evloop loop;
	struct error err = {0};
	int a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct hit ha = {.remove_fd = -1}, hb = {.remove_fd = -1};

	assert_int_equal(evloop_init(&loop, &err), 0);
	assert_int_equal(evloop_add(&loop, a, EPOLLIN, on_ready, &ha, &err), 0);
	assert_int_equal(evloop_add(&loop, b, EPOLLIN, on_ready, &hb, &err), 0);
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 0);
	kick(b);
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 1);
	assert_int_equal(ha.calls, 0);
	assert_int_equal(hb.calls, 1);
	assert_int_equal(hb.fd, b);
	assert_true(hb.events & EPOLLIN);
	/* Read by its handler: idle again. */
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 0);
	/* The loop's own fd is readable exactly while a source is ready (the console polls it). */
	kick(a);
	{
		struct epoll_event ev;
		assert_int_equal(epoll_wait(loop.epoll_fd, &ev, 1, 0), 1);
	}
	assert_int_equal(evloop_dispatch(&loop, -1, &err), 1);
	assert_int_equal(ha.calls, 1);
	evloop_release(&loop);
	close(a);
	close(b);
}

static void a_source_removed_by_an_earlier_handler_is_not_called(void **state)
{
	struct evloop loop;
	struct error err = {0};
	int a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct hit ha = {.loop = &loop, .remove_fd = b}, hb = {.loop = &loop, .remove_fd = a};

	assert_int_equal(evloop_init(&loop, &err), 0);
	assert_int_equal(evloop_add(&loop, a, EPOLLIN, on_ready, &ha, &err), 0);
	assert_int_equal(evloop_add(&loop, b, EPOLLIN, on_ready, &hb, &err), 0);
	kick(a);
	kick(b);
	/* Whichever runs first removes the other: exactly one handler runs. */
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 1);
	assert_int_equal(ha.calls + hb.calls, 1);
	evloop_release(&loop);
	close(a);
	close(b);
}

static void removed_sources_are_silent_and_their_slot_is_reused(void **state)
{
	struct evloop loop;
	struct error err = {0};
	int fds[EVLOOP_MAX_SOURCES + 1];
	struct hit h = {.remove_fd = -1};

	assert_int_equal(evloop_init(&loop, &err), 0);
	for (unsigned i = 0; i <= EVLOOP_MAX_SOURCES; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < EVLOOP_MAX_SOURCES; i++)
		assert_int_equal(evloop_add(&loop, fds[i], EPOLLIN, on_ready, &h, &err), 0);
	assert_int_equal(evloop_add(&loop, fds[EVLOOP_MAX_SOURCES], EPOLLIN, on_ready, &h, &err),
			 -1);
	assert_string_equal(err.msg, "too many event sources (at most 32)");
	evloop_remove(&loop, fds[3]);
	kick(fds[3]);
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 0);
	assert_int_equal(h.calls, 0);
	assert_int_equal(evloop_add(&loop, fds[EVLOOP_MAX_SOURCES], EPOLLIN, on_ready, &h, &err),
			 0);
	kick(fds[EVLOOP_MAX_SOURCES]);
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 1);
	assert_int_equal(h.fd, fds[EVLOOP_MAX_SOURCES]);
	evloop_release(&loop);
	for (unsigned i = 0; i <= EVLOOP_MAX_SOURCES; i++)
		close(fds[i]);
}

static void a_bad_fd_is_refused_and_release_is_safe_twice(void **state)
{
	struct evloop loop;
	struct error err = {0};
	struct hit h = {.remove_fd = -1};

	assert_int_equal(evloop_init(&loop, &err), 0);
	assert_int_equal(evloop_add(&loop, 9999, EPOLLIN, on_ready, &h, &err), -1);
	assert_string_equal(err.msg, "cannot watch fd 9999 in the event loop: Bad file descriptor");
	/* The refused fd took no slot: it is not dispatched, and removing it is harmless. */
	evloop_remove(&loop, 9999);
	assert_int_equal(evloop_dispatch(&loop, 0, &err), 0);
	evloop_release(&loop);
	assert_int_equal(loop.epoll_fd, -1);
	evloop_release(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_ready_fd_runs_its_handler_and_an_idle_one_does_not),
	    cmocka_unit_test(a_source_removed_by_an_earlier_handler_is_not_called),
	    cmocka_unit_test(removed_sources_are_silent_and_their_slot_is_reused),
	    cmocka_unit_test(a_bad_fd_is_refused_and_release_is_safe_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
