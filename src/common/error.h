/*
 * Error objects carried upward (crun's libcrun_error_t, simplified).
 *
 * A fallible function returns -1 and fills a caller-owned struct error with
 * errno and a one-line message; callers add context as it travels up with
 * error_prefix() ("cannot run box 'a': cannot mount ...: No such file").
 * Only main() and a child about to exec or exit print and exit.
 */
#ifndef HUTCH_COMMON_ERROR_H
#define HUTCH_COMMON_ERROR_H

#include <stddef.h>

/* Exit statuses shared with env(1) and container runtimes. */
enum hutch_exit {
	EXIT_HUTCH_FAILED = 125,     /* hutch itself failed (bad input, setup) */
	EXIT_CANNOT_EXECUTE = 126,   /* command found but not executable */
	EXIT_NOT_FOUND = 127,        /* command not found */
};

struct error {
	int errnum;     /* errno of the root cause, 0 if none */
	char msg[1024]; /* lowercase, no full stop, no "hutch: " prefix */
};

/* Set msg from fmt; append ": strerror(errnum)" when errnum != 0. Returns -1. */
int error_set(struct error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend "fmt: " to the message already in err. Returns -1. */
int error_prefix(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "hutch: msg" on stderr. */
void error_print(const struct error *err);

/* Print "hutch: fmt" on stderr and exit with status. */
_Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* die() with ": strerror(errno)" appended. */
_Noreturn void die_errno(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "hutch: warning: fmt" on stderr. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "hutch: fmt" on stderr: what hutch did or found, not a failure of its own. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
