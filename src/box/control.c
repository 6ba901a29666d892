#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "box/control.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

#define REQUEST_MAGIC 0x68757433u /* "hut3" */

struct request_header {
	uint32_t magic;
	uint32_t flags;
	uint32_t umask;
	uint32_t argc;
	uint32_t envc;
	uint32_t len; /* bytes of NUL-terminated strings: cwd, argv, envp */
	uint64_t fingerprint;
	uint64_t plan_hash;
	uint64_t policy_hash;
	uint64_t net_hash;
};
_Static_assert(sizeof(struct request_header) == REQUEST_HEADER_SIZE, "the request header's size");

static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
	} u;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	/* The fds went with the first bytes; the rest is plain data. */
	return write_all(sock, (const char *)buf + n, len - (size_t)n);
}

/* Read exactly len bytes; the first read may carry fds. */
static int recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t *nfds)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	ssize_t n, rest;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? (errno = ECONNRESET, -1) : -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < CONTROL_MAX_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		return errno = EPROTO, -1;
	rest = read_all(sock, (char *)buf + n, len - (size_t)n);
	if (rest < 0 || (size_t)rest != len - (size_t)n)
		return errno = rest < 0 ? errno : ECONNRESET, -1;
	return 0;
}

int request_send(int sock, const struct request *req, struct error *err)
{
	struct request_header h = {.magic = REQUEST_MAGIC, .flags = req->flags,
				   .umask = req->umask, .fingerprint = req->fingerprint,
				   .plan_hash = req->plan_hash, .policy_hash = req->policy_hash,
				   .net_hash = req->net_hash};
	size_t len = strlen(req->cwd) + 1, off;
	static const int stdio[CONTROL_MAX_FDS] = {0, 1, 2};
	_cleanup_free_ char *buf = NULL;

	for (char **a = req->argv; *a; a++, h.argc++)
		len += strlen(*a) + 1;
	for (char **e = req->envp; *e; e++, h.envc++)
		len += strlen(*e) + 1;
	if (len > CONTROL_MAX_REQUEST)
		return error_set(err, E2BIG, "cannot pass the command to the box");
	h.len = (uint32_t)len;
	buf = xmalloc(sizeof(h) + len);
	memcpy(buf, &h, sizeof(h));
	off = sizeof(h);
	off += (size_t)stpcpy(buf + off, req->cwd) - (size_t)(buf + off) + 1;
	for (char **a = req->argv; *a; a++)
		off += (size_t)stpcpy(buf + off, *a) - (size_t)(buf + off) + 1;
	for (char **e = req->envp; *e; e++)
		off += (size_t)stpcpy(buf + off, *e) - (size_t)(buf + off) + 1;
	if (send_with_fds(sock, buf, off, stdio, CONTROL_MAX_FDS) < 0)
		return error_set(err, errno, "cannot send the command to the box");
	return 0;
}

/* Point out[0..count) at the next count strings of blob[*off..len); out[count] = NULL. */
static int split(char *blob, size_t len, size_t *off, char **out, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		char *end;
		if (*off >= len || !(end = memchr(blob + *off, '\0', len - *off)))
			return -1;
		out[i] = blob + *off;
		*off = (size_t)(end - blob) + 1;
	}
	out[count] = NULL;
	return 0;
}

int request_header_len(const void *header, uint32_t *len, struct error *err)
{
	struct request_header h;

	memcpy(&h, header, sizeof(h));
	/* The peer is the same user, but a malformed request must not crash init. */
	if (h.magic != REQUEST_MAGIC || h.len == 0 || h.len > CONTROL_MAX_REQUEST ||
	    h.argc == 0 || h.argc > h.len || h.envc > h.len)
		return error_set(err, EPROTO, "malformed request");
	*len = h.len;
	return 0;
}

int request_parse(struct request *req, const void *header, struct error *err)
{
	struct request_header h;
	uint32_t len;
	size_t off = 0;
	char *cwd[2];

	if (request_header_len(header, &len, err) < 0)
		return -1;
	memcpy(&h, header, sizeof(h));
	req->flags = h.flags;
	req->umask = h.umask & 0777;
	req->fingerprint = h.fingerprint;
	req->plan_hash = h.plan_hash;
	req->policy_hash = h.policy_hash;
	req->net_hash = h.net_hash;
	req->argv = xcalloc((size_t)h.argc + 1, sizeof(char *));
	req->envp = xcalloc((size_t)h.envc + 1, sizeof(char *));
	if (split(req->blob, len, &off, cwd, 1) < 0 ||
	    split(req->blob, len, &off, req->argv, h.argc) < 0 ||
	    split(req->blob, len, &off, req->envp, h.envc) < 0)
		return error_set(err, EPROTO, "malformed request");
	req->cwd = cwd[0];
	return 0;
}

int request_recv(int sock, struct request *req, struct error *err)
{
	unsigned char header[REQUEST_HEADER_SIZE];
	size_t nfds;
	uint32_t len;

	memset(req, 0, sizeof(*req));
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		req->fds[i] = -1;
	if (recv_with_fds(sock, header, sizeof(header), req->fds, &nfds) < 0)
		return error_set(err, errno, "cannot read a request");
	/* Checked before the strings are read: len bounds the allocation. */
	if (request_header_len(header, &len, err) < 0)
		return -1;
	req->blob = xmalloc(len);
	if (read_all(sock, req->blob, len) != (ssize_t)len)
		return error_set(err, ECONNRESET, "cannot read a request");
	return request_parse(req, header, err);
}

void request_release(struct request *req)
{
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		if (req->fds[i] >= 0)
			close(req->fds[i]);
	free(req->argv);
	free(req->envp);
	free(req->blob);
	memset(req, 0, sizeof(*req));
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		req->fds[i] = -1;
}

int control_send(int sock, char tag, const void *data, size_t len, const int *fds, size_t nfds)
{
	char buf[1 + 4096 + sizeof(uint32_t)];
	uint32_t n = (uint32_t)len;

	if (len > 4096 || nfds > 2)
		return errno = EINVAL, -1;
	buf[0] = tag;
	memcpy(buf + 1, &n, sizeof(n));
	memcpy(buf + 1 + sizeof(n), data, len);
	return send_with_fds(sock, buf, 1 + sizeof(n) + len, fds, nfds);
}

ssize_t control_recv(int sock, char *tag, void *buf, size_t cap, int *fds, size_t *nfds)
{
	char head[1 + sizeof(uint32_t)];
	uint32_t n;

	if (recv_with_fds(sock, head, sizeof(head), fds, nfds) < 0)
		return -1;
	*tag = head[0];
	memcpy(&n, head + 1, sizeof(n));
	if (n > cap)
		return errno = EPROTO, -1;
	if (read_all(sock, buf, n) != (ssize_t)n)
		return errno = ECONNRESET, -1;
	return (ssize_t)n;
}

void control_addr(int box_dirfd, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/control", box_dirfd);
}

int control_connect(int box_dirfd)
{
	struct sockaddr_un addr;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	control_addr(box_dirfd, &addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void control_end_idle(const char *box_dir)
{
	_cleanup_close_ int dirfd = open(box_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int conn = dirfd >= 0 ? control_connect(dirfd) : -1;
	char *argv[] = {"true", NULL}, *envp[] = {NULL};
	struct request req = {.flags = REQUEST_QUIT, .cwd = "/", .argv = argv, .envp = envp};
	struct error err;
	char tag, msg[512];
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;

	struct timeval tv = {.tv_sec = 5};

	/* A box that does not answer within 5 s: the caller's lock wait says so. */
	if (conn < 0 || setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return;
	/* First the box's namespaces ('N'), which this caller has no use for. */
	if (control_recv(conn, &tag, msg, sizeof(msg), fds, &nfds) < 0 || tag != CONTROL_NS) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	nfds = 0;
	if (request_send(conn, &req, &err) < 0)
		return;
	/* 'R' as it ends, 'E' if it runs something after all; nothing if it was ending anyway. */
	(void)control_recv(conn, &tag, msg, sizeof(msg), fds, &nfds);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}
