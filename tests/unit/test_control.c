/*
 * The request a joining `hutch run` sends to a box's PID 1 (box/control.h).
 * PID 1 reads it from a socket any program of the same user can connect
 * to, so whatever arrives there, it must refuse what is malformed, read
 * no byte outside what it received, and leak no fd it was handed.
 * tests/fuzz/fuzz_control.c throws arbitrary bytes at the same parser;
 * these are the cases worth naming.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/control.h"
#include "common/util.h"

/* The wire format as a peer writes it: host byte order, no padding. */
struct wire {
	uint32_t magic, flags, umask, argc, envc, len;
	uint64_t fingerprint, plan_hash, policy_hash, net_hash;
};
_Static_assert(sizeof(struct wire) == REQUEST_HEADER_SIZE, "the request header's size");
#define MAGIC 0x68757433u

static struct wire header(uint32_t argc, uint32_t envc, size_t len)
{
	return (struct wire){.magic = MAGIC, .argc = argc, .envc = envc, .len = (uint32_t)len};
}

static void request_clear(struct request *req)
{
	memset(req, 0, sizeof(*req));
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		req->fds[i] = -1;
}

/* What request_recv does once the bytes are in: check, then parse len bytes. */
static int parse(const struct wire *h, const char *strings, size_t n, struct request *req,
		 struct error *err)
{
	uint32_t len;

	request_clear(req);
	if (request_header_len(h, &len, err) < 0)
		return -1;
	assert_int_equal(len, n);
	req->blob = xmalloc(n);
	memcpy(req->blob, strings, n);
	return request_parse(req, h, err);
}

static void expect_bad_header(const struct wire *h)
{
	struct error err = {0};
	uint32_t len = 0;

	assert_int_equal(request_header_len(h, &len, &err), -1);
	assert_int_equal(err.errnum, EPROTO);
	assert_string_equal(err.msg, "malformed request: Protocol error");
}

static void a_well_formed_request_is_read_as_sent(void **state)
{
	static const char s[] = "/work\0make\0-j2\0PATH=/bin\0A=\0";
	struct wire h = header(2, 2, sizeof(s) - 1);
	struct request req;
	struct error err = {0};

	h.flags = REQUEST_PTY | REQUEST_ROOT;
	h.umask = 070000 | 022; /* only the permission bits count */
	h.fingerprint = 0x0123456789abcdefULL;
	h.plan_hash = 42;
	h.policy_hash = 43;
	h.net_hash = 44;
	assert_int_equal(parse(&h, s, sizeof(s) - 1, &req, &err), 0);
	assert_int_equal(req.flags, REQUEST_PTY | REQUEST_ROOT);
	assert_int_equal(req.umask, 022);
	assert_int_equal(req.fingerprint, 0x0123456789abcdefULL);
	assert_int_equal(req.plan_hash, 42);
	assert_int_equal(req.policy_hash, 43);
	assert_int_equal(req.net_hash, 44);
	assert_string_equal(req.cwd, "/work");
	assert_string_equal(req.argv[0], "make");
	assert_string_equal(req.argv[1], "-j2");
	assert_null(req.argv[2]);
	assert_string_equal(req.envp[0], "PATH=/bin");
	assert_string_equal(req.envp[1], "A=");
	assert_null(req.envp[2]);
	request_release(&req);
}

static void a_bad_header_is_refused(void **state)
{
	const size_t n = 7; /* "/\0true\0" */
	struct wire h;

	h = header(1, 0, n);
	h.magic = 0x68757431u; /* "hut1": an older hutch */
	expect_bad_header(&h);
	h = header(1, 0, 0); /* no strings at all */
	expect_bad_header(&h);
	h = header(1, 0, CONTROL_MAX_REQUEST + 1); /* oversized */
	expect_bad_header(&h);
	h = header(1, 0, UINT32_MAX);
	expect_bad_header(&h);
	h = header(0, 0, n); /* no program */
	expect_bad_header(&h);
	/* More strings than there are bytes: argv would be sized by the peer. */
	h = header(UINT32_MAX, 0, n);
	expect_bad_header(&h);
	h = header(1, UINT32_MAX, n);
	expect_bad_header(&h);
	h = header((uint32_t)n + 1, 0, n);
	expect_bad_header(&h);
}

static void strings_that_do_not_add_up_are_refused(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		uint32_t argc, envc;
	} bad[] = {
	    {"/", 1, 1, 0},		    /* cwd without its NUL */
	    {"/\0", 2, 1, 0},		    /* no program */
	    {"/\0true", 6, 1, 0},	    /* the program without its NUL */
	    {"/\0true\0", 7, 2, 0},	    /* truncated: one argument short */
	    {"/\0true\0", 7, 1, 1},	    /* truncated: the environment missing */
	    {"/\0true\0A=1", 10, 1, 1},    /* the last variable without its NUL */
	    {"/\0a\0b\0c\0", 8, 4, 0},	    /* cwd counted as an argument */
	    {"\0\0\0\0\0\0\0\0", 8, 4, 4}, /* empty strings, still too few */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct wire h = header(bad[i].argc, bad[i].envc, bad[i].n);
		struct request req;
		struct error err = {0};

		if (parse(&h, bad[i].s, bad[i].n, &req, &err) != -1)
			fail_msg("case %zu accepted", i);
		assert_string_equal(err.msg, "malformed request: Protocol error");
		request_release(&req);
	}
}

static void empty_strings_are_strings(void **state)
{
	/* An empty cwd or argument is for the box to judge, not the parser. */
	static const char s[4] = "";
	struct wire h = header(2, 1, 4);
	struct request req;
	struct error err = {0};

	assert_int_equal(parse(&h, s, 4, &req, &err), 0);
	assert_string_equal(req.cwd, "");
	assert_string_equal(req.argv[0], "");
	assert_string_equal(req.argv[1], "");
	assert_null(req.argv[2]);
	assert_string_equal(req.envp[0], "");
	assert_null(req.envp[1]);
	request_release(&req);
}

/* Over a socket: what request_recv adds is the reading, and the fds. */

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Send len bytes with nfds copies of fd, then end the stream. */
static void send_raw(int sock, const void *buf, size_t len, int fd, size_t nfds)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} u;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(nfds <= 16);
	if (nfds) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (size_t i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
	assert_int_equal(shutdown(sock, SHUT_WR), 0);
}

/* Send buf with nfds fds over a fresh socketpair and receive it as PID 1 does. */
static int recv_raw(const void *buf, size_t len, size_t nfds, struct request *req,
		    struct error *err)
{
	int sv[2], null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int r;

	assert_true(null >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_raw(sv[0], buf, len, null, nfds);
	close(null);
	r = request_recv(sv[1], req, err);
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* The smallest good request, "true" in "/", as a peer sends it. */
static void true_message(char msg[REQUEST_HEADER_SIZE + 7])
{
	struct wire h = header(1, 0, 7);

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), "/\0true\0", 7);
}

static void a_request_crosses_the_socket_with_its_fds(void **state)
{
	char *argv[] = {"sh", "-c", "exit 3", NULL}, *envp[] = {"HOME=/root", NULL};
	struct request out = {.flags = REQUEST_ROOT, .umask = 077, .fingerprint = 7,
			      .plan_hash = 9, .policy_hash = 10, .net_hash = 11, .cwd = "/tmp", .argv = argv, .envp = envp};
	struct request in;
	struct error err = {0};
	int sv[2];
	unsigned before = open_fds();

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(request_send(sv[0], &out, &err), 0);
	assert_int_equal(request_recv(sv[1], &in, &err), 0);
	assert_int_equal(in.flags, REQUEST_ROOT);
	assert_int_equal(in.umask, 077);
	assert_int_equal(in.fingerprint, 7);
	assert_int_equal(in.plan_hash, 9);
	assert_int_equal(in.policy_hash, 10);
	assert_int_equal(in.net_hash, 11);
	assert_string_equal(in.cwd, "/tmp");
	assert_string_equal(in.argv[2], "exit 3");
	assert_null(in.argv[3]);
	assert_string_equal(in.envp[0], "HOME=/root");
	for (int i = 0; i < CONTROL_MAX_FDS; i++) {
		assert_true(in.fds[i] >= 0);
		assert_true(fcntl(in.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	request_release(&in);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(open_fds(), before);
}

static void a_truncated_request_is_refused(void **state)
{
	char msg[REQUEST_HEADER_SIZE + 7];
	struct request req;
	struct error err = {0};

	true_message(msg);
	/* Nothing at all, half a header, the header alone, all but the last byte. */
	static const size_t cut[] = {0, REQUEST_HEADER_SIZE / 2, REQUEST_HEADER_SIZE,
				     sizeof(msg) - 1};
	for (size_t i = 0; i < ARRAY_SIZE(cut); i++) {
		memset(&err, 0, sizeof(err));
		if (cut[i] == 0) {
			int sv[2];
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			close(sv[0]);
			assert_int_equal(request_recv(sv[1], &req, &err), -1);
			close(sv[1]);
		} else {
			assert_int_equal(recv_raw(msg, cut[i], 0, &req, &err), -1);
		}
		assert_int_equal(err.errnum, ECONNRESET);
		assert_string_equal(err.msg, "cannot read a request: Connection reset by peer");
		request_release(&req);
	}
	assert_int_equal(recv_raw(msg, sizeof(msg), 0, &req, &err), 0);
	request_release(&req);
}

static void an_oversized_length_is_refused_before_reading_on(void **state)
{
	struct wire h = header(1, 0, CONTROL_MAX_REQUEST + 1);
	struct request req;
	struct error err = {0};

	/* Refused from the header alone (EPROTO), not after reading on to the end (ECONNRESET). */
	assert_int_equal(recv_raw(&h, sizeof(h), 0, &req, &err), -1);
	assert_int_equal(err.errnum, EPROTO);
	assert_null(req.blob);
	request_release(&req);
}

static void fds_beyond_three_are_closed_not_kept(void **state)
{
	char msg[REQUEST_HEADER_SIZE + 7];
	struct request req;
	struct error err = {0};
	unsigned before;

	true_message(msg);
	/* Four still fit the receive buffer: the fourth is closed, the request read. */
	before = open_fds();
	assert_int_equal(recv_raw(msg, sizeof(msg), 4, &req, &err), 0);
	assert_int_equal(open_fds(), before + 3);
	request_release(&req);
	assert_int_equal(open_fds(), before);

	/* More are cut off by the kernel (MSG_CTRUNC): refused, and none leaks. */
	static const size_t many[] = {5, 16};
	for (size_t i = 0; i < ARRAY_SIZE(many); i++) {
		memset(&err, 0, sizeof(err));
		before = open_fds();
		assert_int_equal(recv_raw(msg, sizeof(msg), many[i], &req, &err), -1);
		assert_int_equal(err.errnum, EPROTO);
		assert_string_equal(err.msg, "cannot read a request: Protocol error");
		request_release(&req);
		assert_int_equal(open_fds(), before);
	}
}

static void fewer_fds_are_marked_missing(void **state)
{
	char msg[REQUEST_HEADER_SIZE + 7];
	struct request req;
	struct error err = {0};

	true_message(msg);
	assert_int_equal(recv_raw(msg, sizeof(msg), 1, &req, &err), 0);
	assert_true(req.fds[0] >= 0);
	assert_int_equal(req.fds[1], -1);
	assert_int_equal(req.fds[2], -1);
	request_release(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_well_formed_request_is_read_as_sent),
	    cmocka_unit_test(a_bad_header_is_refused),
	    cmocka_unit_test(strings_that_do_not_add_up_are_refused),
	    cmocka_unit_test(empty_strings_are_strings),
	    cmocka_unit_test(a_request_crosses_the_socket_with_its_fds),
	    cmocka_unit_test(a_truncated_request_is_refused),
	    cmocka_unit_test(an_oversized_length_is_refused_before_reading_on),
	    cmocka_unit_test(fds_beyond_three_are_closed_not_kept),
	    cmocka_unit_test(fewer_fds_are_marked_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
