/* --net user's keeper of pasta, in the structure where PID 1 makes the namespaces (net/net.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/net.h"
#include "net/pasta.h"
#include "net/usernet_dns.h"
#include "common/banned.h"

struct usernet_reply {
	int ok;
	char msg[1100];
};

static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	int fd;
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

/*
 * Reap what became the keeper's as a subreaper: the helpers the first pasta
 * left, and the serving one should it die (*pasta is -1 then).
 */
static void reap(pid_t *pasta)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0 || (pid < 0 && errno == EINTR))
		if (pid == *pasta)
			*pasta = -1;
}

/* The next namespace from PID 1, reaping meanwhile; -1 when PID 1 has gone. */
static int next_netns(int sock, int sfd, pid_t *pasta)
{
	struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
	struct signalfd_siginfo si;

	for (;;) {
		reap(pasta);
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (fds[1].revents & POLLIN)
			(void)!read(sfd, &si, sizeof(si));
		if (fds[0].revents)
			return recv_fd(sock);
	}
}

/* The keeper's fds: PID 1's socket, and the box's event log (or none). */
enum { SOCK_FD = 3, LOG_FD = 4 };

static _Noreturn void keeper_main(const struct pasta_config *cfg, const char *path, int sock,
				  int log_fd)
{
	struct usernet_dns dns = {.pid = -1, .pidfd = -1, .ready = -1};
	pid_t pasta = -1;
	sigset_t chld;
	int fd, sfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The pasta that serves is an orphan (it daemonizes): it becomes ours to reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* Out of the way of 3 and 4 first: either may be the other's. */
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	if (log_fd >= 0)
		log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 10);
	if (sock < 0 || dup2(sock, SOCK_FD) < 0 || (log_fd >= 0 && dup2(log_fd, LOG_FD) < 0))
		_exit(1);
	close_range(log_fd >= 0 ? LOG_FD + 1 : LOG_FD, ~0U, 0);
	stdio_to_null();
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	while ((fd = next_netns(SOCK_FD, sfd, &pasta)) >= 0) {
		struct usernet_reply reply = {.ok = 1};
		struct error err;
		pid_t old = pasta;
		int r = 0;

		/*
		 * The box's DNS, forwarded and logged (net/usernet_dns.h): the
		 * last namespace's forwarder served one that is gone. It is
		 * ready long before pasta is.
		 */
		usernet_dns_stop(&dns);
		if (log_fd >= 0)
			r = usernet_dns_start(&dns, fd, LOG_FD, &err);

		/*
		 * The last namespace's pasta takes 10-25 ms to die here: it dies
		 * while the next one starts, unless that one must bind the host
		 * ports it holds. It is gone before the box's program goes on.
		 */
		if (old > 0)
			kill(old, SIGKILL);
		if (cfg->npublish) {
			pasta_stop(old);
			old = -1;
		}
		pasta = r < 0 ? -1 : pasta_start(path, cfg, fd, &err);
		pasta_stop(old);
		close(fd);
		if (pasta > 0 && dns.ready >= 0 && usernet_dns_ready(&dns, &err) < 0) {
			pasta_stop(pasta);
			pasta = -1;
		}
		if (pasta < 0) {
			usernet_dns_stop(&dns);
			reply.ok = 0;
			snprintf(reply.msg, sizeof(reply.msg), "%s", err.msg);
		}
		if (send(SOCK_FD, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply))
			break;
	}
	/* PID 1 has gone (or hung up): so does its network. */
	usernet_dns_stop(&dns);
	pasta_stop(pasta);
	_exit(0);
}

int usernet_start(struct usernet *u, const struct pasta_config *cfg, int log_fd,
		  struct error *err)
{
	_cleanup_free_ char *path = NULL;
	int sv[2];
	long pid;

	u->keeper = -1;
	u->sock = -1;
	if (pasta_check(&path, err) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return error_set(err, errno, "cannot create a socket pair");
	/*
	 * Like fork(), but in a mount namespace of its own (the host's files as
	 * they are now, before the box's root replaces them) and with no exit
	 * signal: PID 1 reaps its programs with waitpid(-1), which skips it.
	 */
	pid = syscall(SYS_clone, (unsigned long)CLONE_NEWNS, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		close(sv[0]);
		keeper_main(cfg, path, sv[1], log_fd);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return error_set(err, errno, "cannot start the keeper of the box's network");
	}
	u->keeper = (pid_t)pid;
	u->sock = sv[0];
	return 0;
}

int usernet_attach(const struct usernet *u, int netns_fd, struct error *err)
{
	char byte = 'N', ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &netns_fd, sizeof(int));
	if (sendmsg(u->sock, &msg, MSG_NOSIGNAL) != 1)
		return error_set(err, errno, "the keeper of the box's network has ended");
	return 0;
}

int usernet_ready(const struct usernet *u, struct error *err)
{
	struct usernet_reply reply;
	ssize_t n;

	do
		n = recv(u->sock, &reply, sizeof(reply), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(reply))
		return error_set(err, 0, "the keeper of the box's network has ended");
	if (!reply.ok) {
		reply.msg[sizeof(reply.msg) - 1] = '\0';
		return error_set(err, 0, "%s", reply.msg);
	}
	return 0;
}
