/*
 * The keeper: the hutch process that makes the outer user namespace U1
 * and the box's network namespace in it, loads the allow-list, starts
 * the box's PID 1 nested in U1, and logs the kernel's denials until the
 * box ends (net/net.h). It lives outside the box's pid namespace, so no
 * program of the box can see it, signal it or open its namespaces.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/keeper.h"
#include "net/nflog.h"
#include "net/nft.h"
#include "net/pasta.h"
#include "net/stub.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static _Noreturn void fail(int sock, const struct error *err)
{
	struct keeper_reply r = {.pid = -1, .errnum = err->errnum};

	snprintf(r.msg, sizeof(r.msg), "%s", err->msg);
	send(sock, &r, sizeof(r), MSG_NOSIGNAL);
	_exit(1);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Close every fd but those in keep (n of them). */
static void close_all_but(int *keep, size_t n)
{
	int from = 3;

	qsort(keep, n, sizeof(*keep), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < from)
			continue;
		if (keep[i] > from)
			close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range((unsigned)from, ~0U, 0);
}

static void log_denial(const struct netns_box *nb, const struct nflog_denial *d)
{
	char args[256], why[256], dest[80];

	if (d->port >= 0) {
		snprintf(args, sizeof(args),
			 "{\"family\":\"%s\",\"protocol\":\"%s\",\"address\":\"%s\",\"port\":%d,"
			 "\"by\":\"nftables\"}",
			 d->family == AF_INET6 ? "inet6" : "inet", d->protocol, d->address, d->port);
		snprintf(dest, sizeof(dest), "%s%s%s:%d", d->family == AF_INET6 ? "[" : "",
			 d->address, d->family == AF_INET6 ? "]" : "", d->port);
	} else {
		snprintf(args, sizeof(args),
			 "{\"family\":\"%s\",\"protocol\":\"%s\",\"address\":\"%s\","
			 "\"by\":\"nftables\"}",
			 d->family == AF_INET6 ? "inet6" : "inet", d->protocol, d->address);
		snprintf(dest, sizeof(dest), "%s", d->address);
	}
	snprintf(why, sizeof(why),
		 "%s %s is not in the box's --allow list (rejected by rule '%s' of table inet "
		 "hutch)", d->protocol, dest, d->prefix);
	nb->log(nb->arg, "connect", args, "denied", why);
}

static void read_denials(const struct netns_box *nb, int fd)
{
	static char buf[65536] __attribute__((aligned(8)));
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0) {
			if (errno == ENOBUFS)
				nb->log(nb->arg, "connect", NULL, "denied",
					"the box was denied more connections than could be logged");
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return;
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct nflog_denial d;
			if (nflog_parse(nh, nh->nlmsg_len, &d) == 1)
				log_denial(nb, &d);
		}
	}
}

/* Until PID 1 ends: the box's denials into its log. */
/*
 * pasta's keeper ends its pasta once its socket closes: wait for that (a
 * second at most), or it would die with this process (PR_SET_PDEATHSIG)
 * and leave pasta running.
 */
static void usernet_end(struct usernet *u, pid_t holder)
{
	if (u->keeper <= 0)
		return;
	_cleanup_close_ int pidfd = pidfd_open(u->keeper, 0);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	close(u->sock);
	if (pidfd >= 0)
		poll(&p, 1, 1000);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
}

static _Noreturn void keep(const struct netns_box *nb, int nflog_fd, int pidfd,
			   struct nft_helper *nft, const struct stub *stub, struct usernet *user,
			   pid_t usernet_holder)
{
	struct pollfd p[3] = {{.fd = nflog_fd, .events = POLLIN},
			      {.fd = pidfd, .events = POLLIN},
			      {.fd = stub->fd, .events = POLLIN}};

	for (;;) {
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			_exit(1);
		if (p[2].revents)
			stub_serve(stub);
		if (p[0].revents)
			read_denials(nb, nflog_fd);
		if (p[1].revents) {
			/* The last packets of a box that ended are logged too. */
			read_denials(nb, nflog_fd);
			nft_helper_stop(nft);
			usernet_end(user, usernet_holder);
			_exit(0);
		}
	}
}

static int set_sysctl(const char *path, const char *value, struct error *err)
{
	return write_file(path, value, err);
}

/*
 * pasta's keeper (net/usernet.c) from here, in U1 with every capability
 * and still in the host's network namespace, where pasta's sockets live;
 * as the first process of a pid namespace of its own, so that when it
 * dies (with this process, or the run: PR_SET_PDEATHSIG all along) the
 * kernel ends pasta too, which would otherwise outlive it. It is started
 * by a holder that shares this process's fd table (CLONE_FILES), since
 * the box's PID 1 cannot be cloned into a pid namespace of its own from a
 * process whose children go into another (copy_pid_ns: EINVAL); the holder
 * then only waits, and dies with this process.
 */
static int start_usernet(const struct netns_box *nb, struct usernet *u, pid_t *holder,
			 struct error *err)
{
	int p[2];
	struct {
		struct usernet u;
		struct error err;
		int r;
	} got;

	if (pipe2(p, O_CLOEXEC) < 0)
		return error_set(err, errno, "cannot create a pipe");
	*holder = (pid_t)syscall(SYS_clone, CLONE_FILES | SIGCHLD, NULL, NULL, NULL, NULL);
	if (*holder == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		got.r = -1;
		if (unshare(CLONE_NEWPID) < 0)
			error_set(&got.err, errno, "cannot create a pid namespace for the box's network");
		else
			got.r = usernet_start(&got.u, nb->pasta, -1, &got.err);
		if (write_all(p[1], &got, sizeof(got)) < 0 || got.r < 0)
			_exit(1);
		for (;;)
			pause();
	}
	/* The fd table is the holder's too: the pipe is closed once read. */
	if (*holder < 0) {
		close(p[0]);
		close(p[1]);
		return error_set(err, errno, "cannot start the keeper of the box's network");
	}
	ssize_t n = read(p[0], &got, sizeof(got));
	close(p[0]);
	close(p[1]);
	if (n != (ssize_t)sizeof(got))
		return error_set(err, 0, "the keeper of the box's network ended");
	if (got.r < 0) {
		*err = got.err;
		return -1;
	}
	*u = got.u;
	return 0;
}

static pid_t clone_box(const struct netns_box *nb)
{
	pid_t pid;

	if (nb->cgroup_fd >= 0) {
		struct clone_args ca = {
			.flags = nb->clone_flags | CLONE_PARENT | CLONE_INTO_CGROUP,
			.cgroup = (uint64_t)nb->cgroup_fd,
		};
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	} else {
		pid = (pid_t)syscall(SYS_clone, nb->clone_flags | CLONE_PARENT, NULL, NULL, NULL,
				     NULL);
	}
	if (pid == 0)
		nb->child(nb->arg);
	return pid;
}

_Noreturn void keeper_main(const struct netns_box *nb, int sock)
{
	struct nft_helper nft = {.pid = -1, .to = -1, .from = -1};
	struct usernet user = {.keeper = -1, .sock = -1};
	pid_t usernet_holder = -1;
	struct stub stub = {.fd = -1, .up_fd = -1, .rules = nb->rules, .nrules = nb->nrules,
			    .nft = &nft, .log = nb->log, .arg = nb->arg};
	bool names = false;
	_cleanup_free_ char *rules = NULL;
	struct keeper_reply reply = {0};
	struct error err;
	int nflog_fd, pidfd, keep_fds[12];
	size_t nkeep = 0;
	pid_t pid;
	char go;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* U1: its maps are the caller's to write, from outside. */
	if (unshare(CLONE_NEWUSER) < 0) {
		error_set(&err, errno, "cannot create the user namespace of the box's network");
		fail(sock, &err);
	}
	if (send(sock, "U", 1, MSG_NOSIGNAL) != 1 || read(sock, &go, 1) != 1 || go != 'M')
		_exit(1);
	/* pasta's keeper, in a pid namespace of its own (start_usernet()). */
	if (nb->pasta && start_usernet(nb, &user, &usernet_holder, &err) < 0)
		fail(sock, &err);
	for (size_t i = 0; i < nb->nrules; i++)
		names |= nb->rules[i].kind == ALLOW_NAME;
	/* Made here, in the host's network namespace: the resolver is there. */
	if (names && stub_upstream_open(&stub, &err) < 0)
		fail(sock, &err);
	if (unshare(CLONE_NEWNET) < 0) {
		error_set(&err, errno, "cannot create the box's network namespace");
		fail(sock, &err);
	}
	if (net_loopback_up(&err) < 0)
		fail(sock, &err);
	/* pasta configures the namespace while the rest goes on (usernet_ready below). */
	if (nb->pasta) {
		_cleanup_close_ int netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (netns < 0 || usernet_attach(&user, netns, &err) < 0) {
			if (netns < 0)
				error_set(&err, errno, "cannot open the box's network namespace");
			fail(sock, &err);
		}
	}
	/*
	 * The namespace's privileged ports are U1's; a --root program, which
	 * would bind them in a namespace of its own, may do so here too.
	 */
	if (nb->as_root &&
	    set_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0", &err) < 0)
		fail(sock, &err);
	/* Even with no name allowed: every query is answered (NXDOMAIN) and logged. */
	if (stub_listen_open(&stub, &err) < 0)
		fail(sock, &err);
	nflog_fd = nflog_open(ALLOW_LOG_GROUP, &err);
	if (nflog_fd < 0)
		fail(sock, &err);
	pid = clone_box(nb);
	if (pid < 0) {
		error_set(&err, errno, "cannot create the box's namespaces");
		fail(sock, &err);
	}
	/* Named after PID 1 is cloned, which keeps the run's name. */
	prctl(PR_SET_NAME, "hutch-net");
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0 || nb->write_maps(pid, false, nb->arg, &err) < 0) {
		if (pidfd < 0)
			error_set(&err, errno, "cannot open a pidfd of the box");
		kill(pid, SIGKILL);
		fail(sock, &err);
	}
	reply.pid = pid;
	if (send(sock, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply)) {
		kill(pid, SIGKILL);
		_exit(1);
	}
	/* Nothing of the run's (its locks above all) may live on in the keeper. */
	keep_fds[nkeep++] = nflog_fd;
	keep_fds[nkeep++] = pidfd;
	keep_fds[nkeep++] = nft.to;
	keep_fds[nkeep++] = nft.from;
	keep_fds[nkeep++] = stub.fd;
	keep_fds[nkeep++] = stub.up_fd;
	keep_fds[nkeep++] = sock;
	keep_fds[nkeep++] = user.sock;
	for (size_t i = 0; i < nb->nkeep && nkeep < sizeof(keep_fds) / sizeof(keep_fds[0]); i++)
		keep_fds[nkeep++] = nb->keep_fds[i];
	close_all_but(keep_fds, nkeep);
	/* Nor the run's stdio: a pipe reading hutch's output ends when hutch does. */
	stdio_to_null();
	/*
	 * The rules last, while PID 1 builds the box (libnftables takes 15-30
	 * ms here): the run waits for them before any program starts.
	 */
	rules = allow_ruleset(nb->rules, nb->nrules);
	if (nft_helper_start(&nft, &err) < 0 || nft_helper_run(&nft, rules, &err) < 0) {
		/* The run ends PID 1 (abort_create in box.c), having said why. */
		error_prefix(&err, "cannot load the box's --allow rules");
		fail(sock, &err);
	}
	if (nb->pasta && usernet_ready(&user, &err) < 0)
		fail(sock, &err);
	reply.pid = 0;
	if (send(sock, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply)) {
		kill(pid, SIGKILL);
		_exit(1);
	}
	close(sock);
	keep(nb, nflog_fd, pidfd, &nft, &stub, &user, usernet_holder);
}
