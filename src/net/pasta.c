/* Starting Debian's pasta for a box's network namespace (net/pasta.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/pasta.h"
#include "common/banned.h"

#define PASTA_START_MS 10000 /* pasta took 23-66 ms here; a wedged one must not hang a run */
#define PASTA_ARGS_MAX 64

static int parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (!len || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int net_host_port_parse(const char *s, uint16_t *out, struct error *err)
{
	if (parse_port(s, strlen(s), out) < 0)
		return error_set(err, 0, "invalid --host-port '%s': expected a port, 1-65535", s);
	return 0;
}

int net_publish_parse(const char *s, struct net_publish *out, struct error *err)
{
	const char *end = s + strlen(s), *ports = s, *colon;
	struct in6_addr a6;
	struct in_addr a4;

	memset(out, 0, sizeof(*out));
	snprintf(out->addr, sizeof(out->addr), "127.0.0.1");
	if (end - s > 4 && !strcmp(end - 4, "/udp")) {
		out->udp = true;
		end -= 4;
	} else if (end - s > 4 && !strcmp(end - 4, "/tcp")) {
		end -= 4;
	}
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(out->addr))
			goto bad;
		memcpy(out->addr, s + 1, (size_t)(close - s - 1));
		out->addr[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, out->addr, &a6) != 1)
			goto bad_addr;
		ports = close + 2;
	} else {
		const char *first = memchr(s, ':', (size_t)(end - s));
		const char *second = first ? memchr(first + 1, ':', (size_t)(end - first - 1)) : NULL;
		if (second) {
			if ((size_t)(first - s) >= sizeof(out->addr))
				goto bad_addr;
			memcpy(out->addr, s, (size_t)(first - s));
			out->addr[first - s] = '\0';
			if (inet_pton(AF_INET, out->addr, &a4) != 1)
				goto bad_addr;
			ports = first + 1;
		}
	}
	colon = memchr(ports, ':', (size_t)(end - ports));
	if (!colon || parse_port(ports, (size_t)(colon - ports), &out->host_port) < 0 ||
	    parse_port(colon + 1, (size_t)(end - colon - 1), &out->box_port) < 0)
		goto bad;
	return 0;
bad_addr:
	return error_set(err, 0,
			 "invalid --publish '%s': the address is not an IPv4 address or [IPv6]", s);
bad:
	return error_set(err, 0,
			 "invalid --publish '%s': expected [ADDR:]HOSTPORT:BOXPORT[/udp], ports 1-65535",
			 s);
}

int pasta_config_parse(struct pasta_config *cfg, char *const *publish, size_t npublish,
		       char *const *host_ports, size_t nhost_ports, struct error *err)
{
	cfg->publish = xcalloc(npublish + 1, sizeof(*cfg->publish));
	cfg->host_ports = xcalloc(nhost_ports + 1, sizeof(*cfg->host_ports));
	cfg->npublish = npublish;
	cfg->nhost_ports = nhost_ports;
	for (size_t i = 0; i < npublish; i++)
		if (net_publish_parse(publish[i], &cfg->publish[i], err) < 0)
			return -1;
	for (size_t i = 0; i < nhost_ports; i++)
		if (net_host_port_parse(host_ports[i], &cfg->host_ports[i], err) < 0)
			return -1;
	return 0;
}

void pasta_config_release(struct pasta_config *cfg)
{
	free(cfg->publish);
	free(cfg->host_ports);
	cfg->publish = NULL;
	cfg->host_ports = NULL;
}

void net_publish_describe(const struct net_publish *p, char *buf, size_t len)
{
	bool v6 = strchr(p->addr, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%u->%u/%s", v6 ? "[" : "", p->addr, v6 ? "]" : "",
		 p->host_port, p->box_port, p->udp ? "udp" : "tcp");
}

static char *find_pasta(void)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin:/usr/sbin:/sbin");
	char *save = NULL;

	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/pasta", dir);
		if (dir[0] == '/' && access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int pasta_check(char **path, struct error *err)
{
	int fd;

	*path = find_pasta();
	if (!*path)
		return error_set(err, 0,
				 "--net user needs pasta, which is not installed "
				 "(Debian package passt: apt-get install passt)");
	/* pasta opens it in the box's namespace; without udev it may be root's only. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return error_set(err, 0,
				 "--net user needs '/dev/net/tun', which is missing "
				 "(load the tun module, or: mknod -m 0666 /dev/net/tun c 10 200)");
	if (fd < 0)
		return error_set(err, 0,
				 "cannot open '/dev/net/tun': %s; --net user needs it usable by you "
				 "(Debian's udev makes it 0666; as root: chmod 0666 /dev/net/tun)",
				 strerror(errno));
	close(fd);
	return 0;
}

/* A published port must be free: say so by name, not by pasta's words. */
static int port_free(const struct net_publish *p, struct error *err)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(p->host_port)};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(p->host_port)};
	bool v6 = inet_pton(AF_INET6, p->addr, &s6.sin6_addr) == 1;
	_cleanup_close_ int fd = -1;
	char what[80];
	int one = 1;

	if (!v6)
		inet_pton(AF_INET, p->addr, &s4.sin_addr);
	fd = socket(v6 ? AF_INET6 : AF_INET,
		    (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set(err, errno, "cannot open a socket");
	/* As pasta does: a port another run left in TIME_WAIT is free. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, v6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
		 v6 ? sizeof(s6) : sizeof(s4)) == 0)
		return 0;
	net_publish_describe(p, what, sizeof(what));
	if (errno == EADDRINUSE)
		return error_set(err, 0, "cannot publish %s: the host's port %u is already taken",
				 what, p->host_port);
	return error_set(err, errno, "cannot publish %s", what);
}

int pasta_ports_free(const struct pasta_config *cfg, struct error *err)
{
	for (size_t i = 0; i < cfg->npublish; i++)
		if (port_free(&cfg->publish[i], err) < 0)
			return -1;
	return 0;
}

/* The capabilities pasta needs in the namespace's user namespace, kept across its exec. */
static void raise_ambient(void)
{
	static const int caps[] = {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE,
				   CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT};
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	data[0].inheritable = data[0].permitted;
	data[1].inheritable = data[1].permitted;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, caps[i], 0, 0);
}

static void add_arg(char **argv, size_t *n, char *arg)
{
	if (*n < PASTA_ARGS_MAX - 1)
		argv[(*n)++] = arg;
}

/* pasta's arguments; the strings are malloc'd and freed by free_args(). */
static void build_args(char **argv, const char *path, const struct pasta_config *cfg)
{
	size_t n = 0, tcp = 0, udp = 0;

	add_arg(argv, &n, xstrdup(path));
	add_arg(argv, &n, xstrdup("--quiet"));
	add_arg(argv, &n, xstrdup("--config-net"));
	add_arg(argv, &n, xstrdup("--no-map-gw"));
	add_arg(argv, &n, xstrdup("--no-netns-quit"));
	add_arg(argv, &n, xstrdup("--dns-forward"));
	add_arg(argv, &n, xstrdup(NET_DNS_ADDR));
	for (size_t i = 0; i < cfg->npublish; i++) {
		const struct net_publish *p = &cfg->publish[i];
		add_arg(argv, &n, xstrdup(p->udp ? "-u" : "-t"));
		add_arg(argv, &n, xasprintf("%s/%u:%u", p->addr, p->host_port, p->box_port));
		*(p->udp ? &udp : &tcp) += 1;
	}
	if (!tcp)
		add_arg(argv, &n, xstrdup("--tcp-ports=none"));
	if (!udp)
		add_arg(argv, &n, xstrdup("--udp-ports=none"));
	for (size_t i = 0; i < cfg->nhost_ports; i++) {
		add_arg(argv, &n, xstrdup("-T"));
		add_arg(argv, &n, xasprintf("%u", cfg->host_ports[i]));
	}
	if (!cfg->nhost_ports)
		add_arg(argv, &n, xstrdup("--tcp-ns=none"));
	add_arg(argv, &n, xstrdup("--udp-ns=none"));
	/* As root pasta would become "nobody", who has no capability to join the namespace. */
	if (geteuid() == 0)
		add_arg(argv, &n, xstrdup("--runas=0:0"));
	add_arg(argv, &n, xstrdup("--pid=/proc/self/fd/4"));
	add_arg(argv, &n, xstrdup("--netns=/proc/self/fd/3"));
	argv[n] = NULL;
}

static void free_args(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
}

/* pasta's reason: its last line that is not about the missing system log. */
static void pasta_reason(int fd, char *buf, size_t len)
{
	char text[4096], *save = NULL;
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	snprintf(buf, len, "pasta ended without saying why");
	if (n <= 0)
		return;
	text[n] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strstr(line, "syslog") && *line)
			snprintf(buf, len, "pasta: %s", line);
}

/* Wait up to PASTA_START_MS for the first pasta to exit; its status, or -1. */
static int wait_first(pid_t pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	int status = 0, r;

	if (pidfd >= 0) {
		do
			r = poll(&pfd, 1, PASTA_START_MS);
		while (r < 0 && errno == EINTR);
		close(pidfd);
		if (r == 0)
			kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

pid_t pasta_start(const char *path, const struct pasta_config *cfg, int netns_fd,
		  struct error *err)
{
	_cleanup_close_ int log = memfd_create("pasta-stderr", MFD_CLOEXEC);
	_cleanup_close_ int pidf = memfd_create("pasta-pid", MFD_CLOEXEC);
	char *argv[PASTA_ARGS_MAX];
	char reason[512], text[32] = {0};
	int status;
	pid_t pid;

	if (log < 0 || pidf < 0)
		return error_set(err, errno, "cannot start pasta");
	if (pasta_ports_free(cfg, err) < 0)
		return -1;
	build_args(argv, path, cfg);
	pid = fork();
	if (pid == 0) {
		/* Out of the way of 0-4 first: the caller's fds may be any of them. */
		int null = fcntl(open("/dev/null", O_RDWR | O_CLOEXEC), F_DUPFD_CLOEXEC, 10);
		int err_fd = fcntl(log, F_DUPFD_CLOEXEC, 10), ns = fcntl(netns_fd, F_DUPFD_CLOEXEC, 10);
		int pid_fd = fcntl(pidf, F_DUPFD_CLOEXEC, 10);
		/* The first pasta exits once ready; should this process die first, so does it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null < 0 || err_fd < 0 || ns < 0 || pid_fd < 0 || dup2(null, 0) < 0 ||
		    dup2(null, 1) < 0 || dup2(err_fd, 2) < 0 || dup2(ns, 3) < 0 || dup2(pid_fd, 4) < 0)
			_exit(127);
		close_range(5, ~0U, 0);
		raise_ambient();
		execv(path, argv);
		_exit(127);
	}
	free_args(argv);
	if (pid < 0)
		return error_set(err, errno, "cannot start pasta");
	status = wait_first(pid);
	if (status != 0) {
		pasta_reason(log, reason, sizeof(reason));
		if (status > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
			snprintf(reason, sizeof(reason), "cannot run '%s'", path);
		return error_set(err, 0, "cannot connect the box's network: %s", reason);
	}
	if (pread(pidf, text, sizeof(text) - 1, 0) <= 0 || (pid = (pid_t)atoi(text)) <= 0)
		return error_set(err, 0, "cannot connect the box's network: pasta wrote no pid");
	return pid;
}

void pasta_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
