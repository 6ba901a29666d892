/*
 * hutch log: what a box's programs did, from the box's event log
 * ($HUTCH_HOME/boxes/BOX/log.jsonl, format in policy/eventlog.h).
 *
 * The log is parsed with jansson (libjansson-dev): strict JSON, UTF-8
 * checked, duplicate keys refused. The log is hutch's own, but the paths,
 * arguments and addresses in it come from the box's programs, so every
 * string is escaped before it reaches a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "policy/eventlog.h"
#include "common/banned.h"

/* A longer line is not one hutch wrote: skipped rather than held in memory. */
#define LOG_LINE_MAX (4 * 1024 * 1024)
/* --follow re-reads at least this often (ms), inotify or not. */
#define FOLLOW_POLL_MS 1000
#define FOLLOW_POLL_NO_INOTIFY_MS 100

struct log_reader {
	const char *path;
	bool json;
	int fd;
	off_t offset; /* of the first byte not yet read */
	char *line;   /* a partial line, until its '\n' comes */
	size_t len, cap;
	bool skipping; /* inside an overlong line */
	unsigned long lineno;
};

static void log_help(void)
{
	printf("usage: hutch log [--follow] [--json] BOX\n\n"
	       "Show what box BOX's programs did, one line per event from its event log:\n"
	       "  TIME  PID  EVENT  ARGS  VERDICT  (why)\n"
	       "TIME is local; ARGS is the program and its arguments for exec, the\n"
	       "address for connect and bind, the system call for a denied one.\n"
	       "A box that has logged nothing prints nothing.\n\n"
	       "  -f, --follow  keep printing events as they come, until interrupted\n"
	       "  --json        print the events as they are logged, one JSON object a line\n"
	       "  -h, --help    show this help\n");
}

/* A value of args in compact form: strings as words, arrays as a,b, objects as JSON. */
static void print_value(FILE *f, const json_t *v)
{
	size_t i;
	json_t *item;

	switch (json_typeof(v)) {
	case JSON_STRING:
		term_write_string(f, json_string_value(v), TERM_QUOTE_WORD);
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("true", f);
		break;
	case JSON_FALSE:
		fputs("false", f);
		break;
	case JSON_NULL:
		fputs("null", f);
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, item)
		{
			if (i)
				putc(',', f);
			print_value(f, item);
		}
		break;
	case JSON_OBJECT: {
		char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (text)
			term_write_string(f, text, TERM_QUOTE_LOOSE);
		free(text);
		break;
	}
	}
}

static const char *str_of(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key)); /* NULL unless a string */
}

/*
 * ARGS, compactly, for the events the supervisor logs:
 *   exec {"path","argv"}               the command line (argv[0] only when
 *                                      it is not the path or its basename)
 *   connect/bind {"family":"inet","address","port"}   ADDRESS:PORT
 *   connect/bind {"family":"unix","path","abstract"}  unix:PATH, unix:@NAME
 *   a denied call {"syscall","nr"}     its name
 * and every other key as key=value. No args: "-".
 */
static void print_args(FILE *f, const json_t *args)
{
	const char *path = str_of(args, "path"), *addr = str_of(args, "address");
	const char *sys = str_of(args, "syscall"), *family = str_of(args, "family");
	json_t *argv = json_object_get(args, "argv"), *port = json_object_get(args, "port");
	bool unix_sock = family && !strcmp(family, "unix") && path;
	bool abstract = json_is_true(json_object_get(args, "abstract"));
	const char *key, *sep = "";
	json_t *v;
	size_t i;

	if (!json_is_array(argv) || unix_sock)
		argv = NULL;
	if (!json_is_integer(port))
		port = NULL;
	if (unix_sock) {
		fputs(abstract ? "unix:@" : "unix:", f);
		term_write_string(f, path, TERM_QUOTE_WORD);
		sep = " ";
	} else if (path) {
		const char *base = strrchr(path, '/');
		term_write_string(f, path, TERM_QUOTE_WORD);
		sep = " ";
		json_array_foreach(argv, i, v)
		{
			const char *arg = json_string_value(v);
			if (i == 0 && arg &&
			    (!strcmp(arg, path) || (base && !strcmp(arg, base + 1))))
				continue;
			fputs(i == 0 ? " [as " : " ", f);
			print_value(f, v);
			if (i == 0)
				putc(']', f);
		}
	}
	if (addr) {
		fputs(sep, f);
		if (port && strchr(addr, ':') && addr[0] != '[') {
			putc('[', f);
			term_write_string(f, addr, TERM_QUOTE_WORD);
			putc(']', f);
		} else {
			term_write_string(f, addr, TERM_QUOTE_WORD);
		}
		if (port)
			fprintf(f, ":%" JSON_INTEGER_FORMAT, json_integer_value(port));
		sep = " ";
	}
	if (sys) {
		fputs(sep, f);
		term_write_string(f, sys, TERM_QUOTE_WORD);
		sep = " ";
	}
	json_object_foreach((json_t *)args, key, v)
	{
		bool shown = (path && !strcmp(key, "path")) || (argv && !strcmp(key, "argv")) ||
			     (addr && !strcmp(key, "address")) || (port && !strcmp(key, "port")) ||
			     (sys && (!strcmp(key, "syscall") || !strcmp(key, "nr"))) ||
			     (unix_sock && !strcmp(key, "abstract")) ||
			     (!strcmp(key, "family") &&
			      (unix_sock || (addr && family && str_has_prefix(family, "inet"))));
		if (shown)
			continue;
		fputs(sep, f);
		term_write_string(f, key, TERM_QUOTE_WORD);
		putc('=', f);
		print_value(f, v);
		sep = " ";
	}
	if (!*sep)
		putc('-', f);
}

/* "2026-11-27T23:30:01.123456Z" -> "2026-11-28 00:30:01.123" in local time; else as logged. */
static void print_time(FILE *f, const char *stamp)
{
	struct tm tm = {0};
	const char *rest = strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	char buf[32], frac[4] = "000";
	time_t t;

	if (rest && *rest == '.') {
		for (int i = 0; i < 3 && rest[1 + i] >= '0' && rest[1 + i] <= '9'; i++)
			frac[i] = rest[1 + i];
		rest++;
		while (*rest >= '0' && *rest <= '9')
			rest++;
	}
	if (!rest || strcmp(rest, "Z") || (t = timegm(&tm)) == (time_t)-1 ||
	    !localtime_r(&t, &tm)) {
		term_write_string(f, stamp, TERM_QUOTE_WORD);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "%s.%s", buf, frac);
}

/* Check one line is an event; NULL (and a warning) if not. */
static json_t *parse_event(struct log_reader *r, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *bad = NULL;

	if (!ev)
		bad = jerr.text;
	else if (!json_is_object(ev))
		bad = "not a JSON object";
	else if (!str_of(ev, "time") || !json_is_integer(json_object_get(ev, "pid")) ||
		 !str_of(ev, "event") || !str_of(ev, "verdict"))
		bad = "time, pid, event or verdict missing or of the wrong type";
	else if (json_object_get(ev, "args") && !json_is_object(json_object_get(ev, "args")))
		bad = "args is not an object";
	else if (json_object_get(ev, "why") && !str_of(ev, "why"))
		bad = "why is not a string";
	if (bad) {
		warn("%s:%lu: not an event, skipped: %s", r->path, r->lineno, bad);
		json_decref(ev);
		return NULL;
	}
	return ev;
}

static void print_event(const json_t *ev)
{
	const json_t *args = json_object_get(ev, "args");
	const char *why = str_of(ev, "why");

	print_time(stdout, str_of(ev, "time"));
	printf("  %6" JSON_INTEGER_FORMAT "  ", json_integer_value(json_object_get(ev, "pid")));
	term_write_string(stdout, str_of(ev, "event"), TERM_QUOTE_WORD);
	fputs("  ", stdout);
	if (args)
		print_args(stdout, args);
	else
		putchar('-');
	fputs("  ", stdout);
	term_write_string(stdout, str_of(ev, "verdict"), TERM_QUOTE_WORD);
	if (why) {
		fputs("  (", stdout);
		term_write_string(stdout, why, TERM_QUOTE_LOOSE);
		putchar(')');
	}
	putchar('\n');
}

/* One complete line (without its '\n'). */
static void handle_line(struct log_reader *r, const char *line, size_t len)
{
	json_t *ev;

	r->lineno++;
	if (!len)
		return;
	ev = parse_event(r, line, len);
	if (!ev)
		return;
	if (r->json) {
		fwrite(line, 1, len, stdout);
		putchar('\n');
	} else {
		print_event(ev);
	}
	json_decref(ev);
}

static void take_bytes(struct log_reader *r, const char *buf, size_t n)
{
	while (n) {
		const char *nl = memchr(buf, '\n', n);
		size_t chunk = nl ? (size_t)(nl - buf) : n;

		if (!r->skipping && r->len + chunk > LOG_LINE_MAX) {
			warn("%s:%lu: line longer than %d bytes, skipped", r->path, r->lineno + 1,
			     LOG_LINE_MAX);
			r->skipping = true;
			r->len = 0;
		}
		if (!r->skipping) {
			if (r->len + chunk + 1 > r->cap) {
				r->cap = (r->len + chunk + 1) * 2;
				r->line = xrealloc(r->line, r->cap);
			}
			memcpy(r->line + r->len, buf, chunk);
			r->len += chunk;
		}
		if (!nl)
			return;
		if (r->skipping)
			r->lineno++;
		else
			handle_line(r, r->line, r->len);
		r->skipping = false;
		r->len = 0;
		buf = nl + 1;
		n -= chunk + 1;
	}
}

/* Read what was appended since the last call. */
static int read_more(struct log_reader *r, struct error *err)
{
	char buf[65536];
	ssize_t n;

	while ((n = pread(r->fd, buf, sizeof(buf), r->offset)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error_set(err, errno, "cannot read '%s'", r->path);
		}
		r->offset += n;
		take_bytes(r, buf, (size_t)n);
	}
	if (fflush(stdout) != 0)
		return error_set(err, errno, "cannot write the log");
	return 0;
}

/* Open the log; 0 and fd -1 when there is none (yet). */
static int open_log(struct log_reader *r, struct error *err)
{
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (r->fd < 0 && errno != ENOENT)
		return error_set(err, errno, "cannot open '%s'", r->path);
	r->offset = 0;
	r->len = 0;
	r->skipping = false;
	r->lineno = 0;
	return 0;
}

/*
 * --follow: wait for the log to change (inotify on the box's folder, which
 * also sees the log created, replaced or removed) and print what was added.
 * A log that shrank or was replaced is read again from its start. Ends when
 * the box is removed.
 */
static int follow(struct log_reader *r, const char *box_dir, struct error *err)
{
	_cleanup_close_ int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int timeout = FOLLOW_POLL_MS;

	if (in < 0 || inotify_add_watch(in, box_dir,
					IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE |
					    IN_DELETE_SELF | IN_MOVE_SELF) < 0)
		timeout = FOLLOW_POLL_NO_INOTIFY_MS;
	for (;;) {
		struct pollfd p = {.fd = in, .events = POLLIN};
		struct stat now, open_st;

		if (poll(&p, 1, timeout) < 0 && errno != EINTR)
			return error_set(err, errno, "cannot wait for the log");
		while (in >= 0 && read(in, events, sizeof(events)) > 0)
			;
		if (access(box_dir, F_OK) < 0)
			return 0; /* the box was removed */
		if (r->fd >= 0 && (lstat(r->path, &now) < 0 || fstat(r->fd, &open_st) < 0 ||
				   now.st_ino != open_st.st_ino || now.st_dev != open_st.st_dev ||
				   now.st_size < r->offset)) {
			/* Removed, replaced or truncated: what is there now is new. */
			read_more(r, err);
			close(r->fd);
			r->fd = -1;
		}
		if (r->fd < 0 && open_log(r, err) < 0)
			return -1;
		if (r->fd >= 0 && read_more(r, err) < 0)
			return -1;
	}
}

int cmd_log(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_free_ char *box_dir = NULL;
	_cleanup_free_ char *path = NULL;
	struct log_reader r = {.fd = -1};
	struct error err;
	bool follow_it = false;
	int c, rc = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			follow_it = true;
			break;
		case 'j':
			r.json = true;
			break;
		case 'h':
			log_help();
			return 0;
		default:
			usage_error("log ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (boxcmd_named("log ", argc, argv, true, &box_dir) < 0)
		return EXIT_HUTCH_FAILED;
	path = xasprintf("%s/%s", box_dir, EVENTLOG_NAME);
	r.path = path;
	if (follow_it)
		setvbuf(stdout, NULL, _IOFBF, 65536); /* flushed after each batch */
	if (open_log(&r, &err) < 0 || (r.fd >= 0 && read_more(&r, &err) < 0) ||
	    (follow_it && follow(&r, box_dir, &err) < 0)) {
		error_print(&err);
		rc = EXIT_HUTCH_FAILED;
	} else if (!follow_it && r.len && !r.skipping) {
		/* A last line without its '\n': print it if it is whole. */
		json_error_t jerr;
		json_t *ev = json_loadb(r.line, r.len, JSON_REJECT_DUPLICATES, &jerr);
		if (ev) {
			json_decref(ev);
			handle_line(&r, r.line, r.len);
		}
	}
	if (r.fd >= 0)
		close(r.fd);
	free(r.line);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno(EXIT_HUTCH_FAILED, "cannot write the log");
	return rc;
}
