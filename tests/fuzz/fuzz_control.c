/*
 * libFuzzer target: the request a joining `hutch run` sends to a box's
 * PID 1 over the box's control socket (box/control.h). Any program of the
 * box's user can connect there, so PID 1 must survive whatever bytes
 * arrive. The input is what request_recv reads from the socket: a header
 * of REQUEST_HEADER_SIZE bytes, then the strings; the fuzzer feeds them to
 * the same two functions, in the same order, with the strings in a buffer
 * of exactly the header's length so that AddressSanitizer sees a read one
 * byte beyond it. A parse that succeeds must also describe the bytes
 * (checked below), or the input counts as a crash.
 *
 *   make fuzz && build/tests/fuzz/fuzz_control tests/fuzz/corpus/control
 *
 * tests/run-all runs it for a bounded time; a crash it finds becomes a
 * case in tests/unit/test_control.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "box/control.h"
#include "fuzz.h"
#include "common/banned.h"

/* The string at p lies in blob[0, len), NUL included, and starts at *next. */
static const char *check_string(const char *p, const char *blob, size_t len, const char **next)
{
	CHECK(p == *next);
	CHECK(p >= blob && p < blob + len);
	size_t n = strnlen(p, (size_t)(blob + len - p));
	CHECK(p + n < blob + len);
	*next = p + n + 1;
	return p;
}

static void check_request(const struct request *req, const uint8_t *header, uint32_t len)
{
	uint32_t flags, umask, argc, envc;
	const char *next = req->blob;
	size_t i;

	memcpy(&flags, header + 4, 4);
	memcpy(&umask, header + 8, 4);
	memcpy(&argc, header + 12, 4);
	memcpy(&envc, header + 16, 4);
	CHECK(req->flags == flags);
	CHECK(req->umask == (umask & 0777));
	check_string(req->cwd, req->blob, len, &next);
	for (i = 0; req->argv[i]; i++)
		check_string(req->argv[i], req->blob, len, &next);
	CHECK(i == argc && i > 0);
	for (i = 0; req->envp[i]; i++)
		check_string(req->envp[i], req->blob, len, &next);
	CHECK(i == envc);
	for (i = 0; i < CONTROL_MAX_FDS; i++)
		CHECK(req->fds[i] == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request req;
	struct error err;
	uint32_t len;

	memset(&req, 0, sizeof(req));
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		req.fds[i] = -1;
	if (size < REQUEST_HEADER_SIZE)
		return 0; /* request_recv: a connection reset before the header */
	if (request_header_len(data, &len, &err) < 0) {
		CHECK(strcmp(err.msg, "malformed request: Protocol error") == 0);
		return 0;
	}
	CHECK(len > 0 && len <= CONTROL_MAX_REQUEST);
	if (size - REQUEST_HEADER_SIZE < len)
		return 0; /* request_recv: a connection reset in the strings */
	/* Exactly len bytes: what request_recv allocates. */
	req.blob = malloc(len);
	CHECK(req.blob);
	memcpy(req.blob, data + REQUEST_HEADER_SIZE, len);
	if (request_parse(&req, data, &err) == 0)
		check_request(&req, data, len);
	else
		CHECK(strcmp(err.msg, "malformed request: Protocol error") == 0);
	request_release(&req);
	return 0;
}
