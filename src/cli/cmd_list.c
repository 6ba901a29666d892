#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "box/changes.h"
#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "common/banned.h"

struct box_info {
	char *name;
	unsigned long long size;
	long long changes; /* -1: unknown */
	bool running;
	bool used;
	time_t last_used;
};

static void list_help(void)
{
	printf("usage: hutch list [--json | --names]\n\n"
	       "List the boxes in the store: name, size on disk, number of changed\n"
	       "paths (as 'hutch diff' counts them), running or idle, last used.\n\n"
	       "  --json      print a JSON array of {name, size, changes, state, last_used}\n"
	       "  --names     print only the names, one a line (for scripts and completion)\n"
	       "  -h, --help  show this help\n");
}

/* Bytes allocated below dfd/name (st_blocks), never following a symlink or crossing a mount. */
static unsigned long long disk_usage(int dfd, const char *name, dev_t dev, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	unsigned long long sum;
	struct dirent *e;
	struct stat st;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	sum = (unsigned long long)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode) || (dev && st.st_dev != dev) || depth > 2048)
		return sum;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) /* an overlay work dir (mode 0) of someone else's */
		return sum;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sum;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			sum += disk_usage(dirfd(d), e->d_name, st.st_dev, depth + 1);
	return sum;
}

static void box_info_read(struct box_info *b, const char *boxes, const char *name)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", boxes, name);
	_cleanup_free_ char *lock = xasprintf("%s/running", dir);
	struct changes ch;
	struct error err;
	struct stat st;

	*b = (struct box_info){.name = xstrdup(name), .changes = -1};
	b->size = disk_usage(AT_FDCWD, dir, 0, 0);
	if (changes_collect(&ch, dir, "", &err) == 0) {
		b->changes = (long long)ch.n;
		changes_release(&ch);
	} else {
		warn("cannot count the changes of box '%s': %s", name, err.msg);
	}
	/*
	 * A box that never ran has no lock file; box_lock() would create one
	 * (and with it a "last used" time), so look first.
	 */
	if (lstat(lock, &st) == 0) {
		int fd = box_lock(dir, BOX_LOCK_RUNNING, BOX_LOCK_EXCLUSIVE, 0, &err);
		if (fd >= 0)
			close(fd);
		b->running = fd < 0 && err.errnum == EWOULDBLOCK;
		b->used = true;
		b->last_used = st.st_mtim.tv_sec;
	}
}

static void human_size(char *buf, size_t size, unsigned long long n)
{
	static const char units[] = "KMGTPE";
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, size, "%lluB", n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void print_json(const struct box_info *boxes, size_t n)
{
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		const struct box_info *b = &boxes[i];
		fputs(i ? ",\n  {\"name\":" : "\n  {\"name\":", stdout);
		json_write_string(stdout, b->name);
		printf(",\"size\":%llu,\"changes\":", b->size);
		if (b->changes >= 0)
			printf("%lld", b->changes);
		else
			fputs("null", stdout);
		printf(",\"state\":\"%s\",\"last_used\":", b->running ? "running" : "idle");
		if (b->used) {
			char t[32];
			struct tm tm;
			gmtime_r(&b->last_used, &tm);
			strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("\"%s\"}", t);
		} else {
			fputs("null}", stdout);
		}
	}
	fputs(n ? "\n]\n" : "]\n", stdout);
}

static void print_table(const struct box_info *boxes, size_t n)
{
	int wname = 4;

	for (size_t i = 0; i < n; i++)
		if ((int)strlen(boxes[i].name) > wname)
			wname = (int)strlen(boxes[i].name);
	printf("%-*s  %6s  %7s  %-7s  %s\n", wname, "NAME", "SIZE", "CHANGES", "STATE",
	       "LAST USED");
	for (size_t i = 0; i < n; i++) {
		const struct box_info *b = &boxes[i];
		char size[16], changes[24], used[32] = "never";
		struct tm tm;

		human_size(size, sizeof(size), b->size);
		if (b->changes >= 0)
			snprintf(changes, sizeof(changes), "%lld", b->changes);
		else
			snprintf(changes, sizeof(changes), "?");
		if (b->used && localtime_r(&b->last_used, &tm))
			strftime(used, sizeof(used), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-*s  %6s  %7s  %-7s  %s\n", wname, b->name, size, changes,
		       b->running ? "running" : "idle", used);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct box_info *)a)->name, ((const struct box_info *)b)->name);
}

int cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"names", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_free_ char *boxes_dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct box_info *boxes = NULL;
	size_t n = 0;
	struct store store;
	struct error err;
	struct dirent *e;
	bool json = false, names = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'N':
			names = true;
			break;
		case 'h':
			list_help();
			return 0;
		default:
			usage_error("list ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("list ", "unexpected argument '%s'", argv[optind]);
	if (json && names)
		usage_error("list ", "--json and --names exclude each other");
	if (store_init(&store, &err) < 0) {
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	boxes_dir = xasprintf("%s/boxes", store.home);
	store_release(&store);
	d = opendir(boxes_dir);
	if (!d && errno != ENOENT) {
		error_set(&err, errno, "cannot read the box store '%s'", boxes_dir);
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	while (d && (e = readdir(d))) {
		struct stat st;
		if (box_name_check(e->d_name, &err) < 0 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		boxes = xrealloc(boxes, (n + 1) * sizeof(*boxes));
		/*
		 * --names is what shell completion asks at every Tab: it reads
		 * no box, which would cost a walk of its whole store.
		 */
		if (names)
			boxes[n++] = (struct box_info){.name = xstrdup(e->d_name)};
		else
			box_info_read(&boxes[n++], boxes_dir, e->d_name);
	}
	if (n > 1)
		qsort(boxes, n, sizeof(*boxes), name_cmp);
	if (names)
		for (size_t i = 0; i < n; i++)
			puts(boxes[i].name);
	else if (json)
		print_json(boxes, n);
	else
		print_table(boxes, n);
	for (size_t i = 0; i < n; i++)
		free(boxes[i].name);
	free(boxes);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno(EXIT_HUTCH_FAILED, "cannot write the list");
	return 0;
}
