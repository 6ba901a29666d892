/*
 * The box's event log: JSON Lines in $HUTCH_HOME/boxes/NAME/log.jsonl, one
 * object per event, written by the host side of a run and by the box's
 * PID 1 (the supervisor):
 *   {"time":"2026-11-27T23:30:01.123456Z","pid":42,"event":"exec",
 *    "args":{...},"verdict":"allowed"|"denied"|"killed"|"info","why":"..."}
 * Each line is appended with one write(2) on an O_APPEND fd, so lines from
 * several writers never interleave.
 */
#ifndef HUTCH_POLICY_EVENTLOG_H
#define HUTCH_POLICY_EVENTLOG_H

#include <pthread.h>
#include <sys/types.h>

#include "common/error.h"

#define EVENTLOG_NAME "log.jsonl"

/* Open (creating) a box's log for appending; returns an O_CLOEXEC fd. */
int eventlog_open(const char *box_dir, struct error *err);

/*
 * Append one event. args_json is a JSON object text or NULL ({}); why is a
 * human sentence or NULL. Failures are ignored: logging never stops a box.
 */
void eventlog_write(int fd, pid_t pid, const char *event, const char *args_json,
		    const char *verdict, const char *why);

/*
 * A buffered log, shared by PID 1's threads: a program that connects in a
 * loop would otherwise cost the supervisor a write(2) per call. Lines are
 * kept in order and written whole. When the buffer stops being empty,
 * wake_fd (an eventfd) is signalled once, so that PID 1's main loop flushes
 * it within a bounded delay, even while the box is otherwise idle.
 */
struct eventlog {
	int fd;
	int wake_fd;
	pthread_mutex_t lock;
	char *buf;
	size_t len, cap;
};

/* wake_fd: an eventfd to signal when events wait, or -1. */
void eventlog_init(struct eventlog *log, int fd, int wake_fd);
void eventlog_add(struct eventlog *log, pid_t pid, const char *event, const char *args_json,
		  const char *verdict, const char *why);
void eventlog_flush(struct eventlog *log);

#endif
