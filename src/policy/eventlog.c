#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "policy/eventlog.h"
#include "common/banned.h"

/* Flushed at this size even while events keep coming. */
#define EVENTLOG_BUFFER (64 * 1024)

int eventlog_open(const char *box_dir, struct error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", box_dir, EVENTLOG_NAME);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return error_set(err, errno, "cannot open the event log '%s'", path);
	return fd;
}

/* One event as a line of JSON, newly allocated. */
static char *format_event(pid_t pid, const char *event, const char *args_json,
			  const char *verdict, const char *why)
{
	_cleanup_free_ char *why_json = why ? json_quote(why) : NULL;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("{\"time\":\"%s.%06ldZ\",\"pid\":%d,\"event\":\"%s\",\"args\":%s,"
			 "\"verdict\":\"%s\"%s%s}\n",
			 stamp, ts.tv_nsec / 1000, (int)pid, event, args_json ? args_json : "{}",
			 verdict, why_json ? ",\"why\":" : "", why_json ? why_json : "");
}

void eventlog_write(int fd, pid_t pid, const char *event, const char *args_json,
		    const char *verdict, const char *why)
{
	_cleanup_free_ char *line = NULL;

	if (fd < 0)
		return;
	line = format_event(pid, event, args_json, verdict, why);
	/* One write on an O_APPEND fd: whole lines, whoever else writes. */
	(void)!write(fd, line, strlen(line));
}

void eventlog_init(struct eventlog *log, int fd, int wake_fd)
{
	log->fd = fd;
	log->wake_fd = wake_fd;
	pthread_mutex_init(&log->lock, NULL);
	log->buf = NULL;
	log->len = log->cap = 0;
}

void eventlog_add(struct eventlog *log, pid_t pid, const char *event, const char *args_json,
		  const char *verdict, const char *why)
{
	_cleanup_free_ char *line = NULL;
	bool was_empty;
	size_t n;

	if (log->fd < 0)
		return;
	line = format_event(pid, event, args_json, verdict, why);
	n = strlen(line);
	pthread_mutex_lock(&log->lock);
	if (log->len + n > EVENTLOG_BUFFER && log->len) {
		(void)!write(log->fd, log->buf, log->len);
		log->len = 0;
	}
	if (log->len + n > log->cap) {
		log->cap = log->len + n > EVENTLOG_BUFFER ? log->len + n : EVENTLOG_BUFFER;
		log->buf = xrealloc(log->buf, log->cap);
	}
	was_empty = log->len == 0;
	memcpy(log->buf + log->len, line, n);
	log->len += n;
	pthread_mutex_unlock(&log->lock);
	if (was_empty && log->wake_fd >= 0) {
		uint64_t one = 1;
		(void)!write(log->wake_fd, &one, sizeof(one));
	}
}

void eventlog_flush(struct eventlog *log)
{
	pthread_mutex_lock(&log->lock);
	if (log->fd >= 0 && log->len)
		(void)!write(log->fd, log->buf, log->len);
	log->len = 0;
	pthread_mutex_unlock(&log->lock);
}
