/*
 * Why a program's connection failed in a box without network: the first
 * connect to an address off the box's loopback, found in the event log the
 * supervisor writes (policy/eventlog.h), read with jansson as hutch log
 * reads it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "net/net.h"
#include "policy/eventlog.h"
#include "common/banned.h"

#define UNREACHED_SCAN_MAX (4 << 20) /* a run's own events; a flood is not worth reading */

/* Whether a connect to this address could have gone anywhere but loopback. */
static bool off_loopback(const char *family, const char *address)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!strcmp(family, "inet"))
		return inet_pton(AF_INET, address, &a4) == 1 &&
		       (ntohl(a4.s_addr) >> 24) != 127 && a4.s_addr != 0;
	if (strcmp(family, "inet6") || inet_pton(AF_INET6, address, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6))
		return false;
	return !IN6_IS_ADDR_V4MAPPED(&a6) || a6.s6_addr[12] != 127;
}

/* "ADDR:PORT" of one log line, if it is such a connect. */
static bool unreached_line(const char *line, size_t len, char *buf, size_t cap)
{
	json_t *ev = json_loadb(line, len, 0, NULL);
	json_t *args = ev ? json_object_get(ev, "args") : NULL;
	const char *event = ev ? json_string_value(json_object_get(ev, "event")) : NULL;
	const char *family = args ? json_string_value(json_object_get(args, "family")) : NULL;
	const char *address = args ? json_string_value(json_object_get(args, "address")) : NULL;
	json_t *port = args ? json_object_get(args, "port") : NULL;
	bool found = event && !strcmp(event, "connect") && family && address &&
		     json_is_integer(port) && off_loopback(family, address);

	if (found)
		snprintf(buf, cap, "%s%s%s:%lld", strchr(address, ':') ? "[" : "", address,
			 strchr(address, ':') ? "]" : "", (long long)json_integer_value(port));
	json_decref(ev);
	return found;
}

bool net_unreached(int box_dirfd, off_t from, char *buf, size_t len)
{
	_cleanup_close_ int log_fd = openat(box_dirfd, EVENTLOG_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	_cleanup_free_ char *text = NULL;
	size_t size, done = 0;
	bool found = false;

	if (log_fd < 0 || fstat(log_fd, &st) < 0 || st.st_size <= from)
		return false;
	size = (size_t)(st.st_size - from);
	if (size > UNREACHED_SCAN_MAX)
		size = UNREACHED_SCAN_MAX;
	text = malloc(size + 1);
	while (text && done < size) {
		ssize_t n = pread(log_fd, text + done, size - done, from + (off_t)done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	for (char *line = text, *end; !found && line && line < text + done; line = end + 1) {
		end = memchr(line, '\n', (size_t)(text + done - line));
		if (!end)
			break;
		found = unreached_line(line, (size_t)(end - line), buf, len);
	}
	return found;
}
