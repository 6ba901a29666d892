#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "net/keeper.h"
#include "net/net.h"
#include "common/banned.h"

int net_loopback_up(struct error *err)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return error_set(err, errno, "cannot open a socket");
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return error_set(err, errno, "cannot read the loopback interface");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return error_set(err, errno, "cannot bring up the loopback interface");
	return 0;
}

int netns_renew(struct error *err)
{
	if (unshare(CLONE_NEWNET) < 0)
		return error_set(err, errno, "cannot create the box's network namespace");
	return net_loopback_up(err);
}

int netns_create(struct error *err)
{
	int fd;

	if (netns_renew(err) < 0)
		return -1;
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set(err, errno, "cannot open the box's network namespace");
	return fd;
}

pid_t netns_clone_box(const struct netns_box *nb, pid_t *keeper, int *sock_out, struct error *err)
{
	struct keeper_reply reply;
	int sv[2];
	ssize_t n;

	*keeper = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return error_set(err, errno, "cannot create a socket pair");
	_cleanup_pid_ pid_t k = fork();
	if (k == 0) {
		close(sv[0]);
		keeper_main(nb, sv[1]);
	}
	close(sv[1]);
	_cleanup_close_ int sock = sv[0];
	if (k < 0)
		return error_set(err, errno, "cannot start the box's network");
	/* 'U': the keeper made U1, whose maps only a process outside may write. */
	n = read(sock, &reply, sizeof(reply));
	if (n == 1 && ((char *)&reply)[0] == 'U') {
		if (nb->write_maps(k, true, nb->arg, err) < 0)
			return error_prefix(err, "cannot set up the box's network");
		if (send(sock, "M", 1, MSG_NOSIGNAL) != 1)
			return error_set(err, errno, "the box's network keeper ended");
		n = read(sock, &reply, sizeof(reply));
	}
	if (n != (ssize_t)sizeof(reply))
		return error_set(err, 0, "the box's network keeper ended");
	if (reply.pid < 0) {
		reply.msg[sizeof(reply.msg) - 1] = '\0';
		return error_set(err, 0, "%s", reply.msg);
	}
	*keeper = steal_pid(&k);
	*sock_out = steal_fd(&sock);
	return reply.pid;
}

int netns_rules_wait(int *sock, struct error *err)
{
	struct keeper_reply reply;
	ssize_t n;

	do
		n = read(*sock, &reply, sizeof(reply));
	while (n < 0 && errno == EINTR);
	close(*sock);
	*sock = -1;
	if (n != (ssize_t)sizeof(reply))
		return error_set(err, 0, "the box's network keeper ended");
	if (reply.pid < 0) {
		reply.msg[sizeof(reply.msg) - 1] = '\0';
		return error_set(err, 0, "%s", reply.msg);
	}
	return 0;
}
