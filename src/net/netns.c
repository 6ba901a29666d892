#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
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
