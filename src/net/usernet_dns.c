/*
 * --net user's DNS (net/usernet_dns.h): the --allow stub (net/stub.h) in
 * its mode that forwards every name, in a process of its own, so that a
 * resolver slow to answer never holds up pasta's keeper, which must attach
 * the next namespace at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "net/stub.h"
#include "net/usernet_dns.h"
#include "policy/eventlog.h"
#include "common/util.h"
#include "common/banned.h"

/* How long the keeper waits for it to serve: it takes about 0.1 ms. */
#define READY_MS 2000

/* The fds of the serving process. */
enum { NETNS_FD = 3, LOG_FD = 4, READY_FD = 5 };

static void dns_log(void *arg, const char *event, const char *args_json, const char *verdict,
		    const char *why)
{
	eventlog_write(LOG_FD, 0, event, args_json, verdict, why);
}

static _Noreturn void serve(pid_t parent)
{
	struct stub s = {.forward_all = true, .log = dns_log};
	struct pollfd p = {.events = POLLIN};
	struct error err;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	/*
	 * Made here, in the host's network namespace. Without a resolver the
	 * box's queries are still logged, each as not answered.
	 */
	if (stub_upstream_open(&s, &err) < 0) {
		error_prefix(&err, "--net user: the box's DNS queries go unanswered");
		dns_log(NULL, "dns", NULL, "info", err.msg);
	}
	if (setns(NETNS_FD, CLONE_NEWNET) < 0) {
		error_set(&err, errno, "cannot enter the box's network namespace");
		goto fail;
	}
	close(NETNS_FD);
	if (stub_listen_open(&s, &err) < 0)
		goto fail;
	if (write(READY_FD, "R", 1) != 1)
		_exit(1);
	close(READY_FD);
	p.fd = s.fd;
	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		if (p.revents & POLLIN)
			stub_serve(&s);
		else if (p.revents)
			_exit(1);
	}
fail:
	(void)!write(READY_FD, err.msg, strnlen(err.msg, sizeof(err.msg)));
	_exit(1);
}

int usernet_dns_start(struct usernet_dns *d, int netns_fd, int log_fd, struct error *err)
{
	pid_t parent = getpid();
	int p[2];

	d->pid = -1;
	d->pidfd = -1;
	d->ready = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return error_set(err, errno, "cannot create a pipe");
	d->pid = fork();
	if (d->pid == 0) {
		/* Nothing else of the keeper's (PID 1's socket above all). */
		int ns = fcntl(netns_fd, F_DUPFD_CLOEXEC, 10), log = fcntl(log_fd, F_DUPFD_CLOEXEC, 10);
		int ready = fcntl(p[1], F_DUPFD_CLOEXEC, 10);

		if (ns < 0 || log < 0 || ready < 0 || dup2(ns, NETNS_FD) < 0 ||
		    dup2(log, LOG_FD) < 0 || dup2(ready, READY_FD) < 0)
			_exit(1);
		close_range(READY_FD + 1, ~0U, 0);
		serve(parent);
	}
	close(p[1]);
	if (d->pid < 0) {
		close(p[0]);
		return error_set(err, errno, "cannot start the box's DNS forwarder");
	}
	d->ready = p[0];
	/* Its pid is the caller's reaper's to reap (and to reuse): it is signalled by pidfd. */
	d->pidfd = pidfd_open(d->pid, 0);
	if (d->pidfd < 0) {
		kill(d->pid, SIGKILL);
		usernet_dns_stop(d);
		return error_set(err, errno, "cannot open a pidfd of the box's DNS forwarder");
	}
	return 0;
}

int usernet_dns_ready(struct usernet_dns *d, struct error *err)
{
	struct pollfd p = {.fd = d->ready, .events = POLLIN};
	char msg[sizeof(err->msg)];
	ssize_t n = -1;

	if (poll(&p, 1, READY_MS) > 0)
		n = read(d->ready, msg, sizeof(msg) - 1);
	close(d->ready);
	d->ready = -1;
	if (n == 1 && msg[0] == 'R')
		return 0;
	if (n <= 0)
		return error_set(err, 0, "the box's DNS forwarder did not start");
	msg[n] = '\0';
	return error_set(err, 0, "%s", msg);
}

void usernet_dns_stop(struct usernet_dns *d)
{
	if (d->ready >= 0)
		close(d->ready);
	d->ready = -1;
	if (d->pidfd >= 0) {
		pidfd_send_signal(d->pidfd, SIGKILL, NULL, 0);
		close(d->pidfd);
	}
	d->pidfd = -1;
	d->pid = -1;
}
