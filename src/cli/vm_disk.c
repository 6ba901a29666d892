/*
 * --disk for `hutch vm run`: the spec, the checks, and the VM's store.
 * A VM named NAME keeps its state in $HUTCH_HOME/vms/NAME (by default
 * ~/.local/share/hutch/vms/NAME): for the disk at position N given with
 * ,overlay, diskN.qcow2 (a qcow2 overlay whose backing file is the base,
 * by its absolute path) and diskN.base (that path, to refuse a later run
 * that names another base for the same overlay). The base is opened
 * read-only and never written; the overlay survives across runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "box/store.h"
#include "cli/vm_disk.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

void vm_disk_spec_release(struct vm_disk_spec *s)
{
	free(s->file);
	s->file = NULL;
}

int vm_disk_parse(const char *arg, struct vm_disk_spec *s, struct error *err)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *opt, *rest = copy, *file;

	memset(s, 0, sizeof(*s));
	file = strsep(&rest, ",");
	if (!*file)
		return error_set(err, 0, "--disk '%s': no image file before the options", arg);
	while ((opt = strsep(&rest, ",")) != NULL) {
		if (!strcmp(opt, "ro")) {
			s->ro = true;
		} else if (!strcmp(opt, "overlay")) {
			s->overlay = true;
		} else if (!strncmp(opt, "format=", 7)) {
			if (!strcmp(opt + 7, "raw"))
				s->format = DISK_FORMAT_RAW;
			else if (!strcmp(opt + 7, "qcow2"))
				s->format = DISK_FORMAT_QCOW2;
			else
				return error_set(
				    err, 0, "--disk '%s': unsupported format '%s' (raw or qcow2)",
				    arg, opt + 7);
		} else {
			return error_set(err, 0,
					 "--disk '%s': unknown option '%s' (ro, overlay, format=)",
					 arg, opt);
		}
	}
	if (s->ro && s->overlay)
		return error_set(err, 0,
				 "--disk '%s': ro and overlay together: an overlay is there to be "
				 "written (the base is never written either way)",
				 arg);
	s->file = xstrdup(file);
	return 0;
}

int vm_name_check(const char *name, struct error *err)
{
	size_t len = strlen(name);

	if (len == 0 || len > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
		goto bad;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._+@-", c)))
			goto bad;
	}
	return 0;
bad:
	return error_set(err, 0,
			 "invalid VM name '%.64s': 1 to %d of A-Z a-z 0-9 . _ + @ -, not "
			 "starting with '.' or '-'",
			 name, VM_NAME_MAX);
}

/* Open the image the way the VM will, and close it again: every refusal comes now. */
static int check_image(const char *path, enum disk_format format, bool read_only, struct error *err)
{
	struct disk_open_options o = {.format = format, .read_only = read_only};
	struct disk *d = disk_open(path, &o, err);

	if (!d)
		return -1;
	disk_close(d);
	return 0;
}

/* What diskN.base says, or NULL if there is no such overlay yet. */
static char *recorded_base(const char *base_file, struct error *err)
{
	char *s;
	size_t n;

	if (access(base_file, F_OK) < 0 && errno == ENOENT)
		return NULL;
	s = read_file(base_file, PATH_MAX + 1, err);
	if (s && (n = strlen(s)) > 0 && s[n - 1] == '\n')
		s[n - 1] = '\0';
	return s;
}

/* The folders of path (and its parents, up to 3) that mkdir_p() would make. */
static void note_missing_dirs(const char *path, struct vm_store_made *made)
{
	_cleanup_free_ char *p = xstrdup(path);
	char *slash;

	while (made->nr_dirs < ARRAY_SIZE(made->dirs) && access(p, F_OK) < 0 && errno == ENOENT) {
		made->dirs[made->nr_dirs++] = xstrdup(p);
		slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
}

void vm_disks_unmake(struct vm_store_made *made, bool undo)
{
	for (unsigned i = 0; i < made->nr_files; i++) {
		if (undo)
			unlink(made->files[i]);
		free(made->files[i]);
	}
	for (unsigned i = 0; i < made->nr_dirs; i++) {
		if (undo)
			rmdir(made->dirs[i]);
		free(made->dirs[i]);
	}
	made->nr_files = made->nr_dirs = 0;
}

int vm_disks_prepare(const struct vm_disk_spec *specs, unsigned n, const char *name,
		     struct vmm_config *cfg, char **paths, struct vm_store_made *made,
		     struct error *err)
{
	_cleanup_free_ char *vmdir = NULL;
	struct store store = {0};
	char *bases[VMM_MAX_DISKS] = {0};
	bool exists[VMM_MAX_DISKS] = {0};
	int ret = -1;
	unsigned i;

	memset(made, 0, sizeof(*made));
	for (i = 0; i < n; i++)
		paths[i] = NULL;
	/* First every check, so that bad input leaves nothing behind. */
	for (i = 0; i < n; i++) {
		const struct vm_disk_spec *s = &specs[i];

		if (check_image(s->file, s->format, s->ro || s->overlay, err) < 0)
			goto out;
		if (!s->overlay)
			continue;
		if (!vmdir) {
			if (store_init(&store, err) < 0)
				goto out;
			vmdir = xasprintf("%s/vms/%s", store.home, name);
		}
		bases[i] = realpath(s->file, NULL);
		if (!bases[i]) {
			error_set(err, errno, "cannot resolve disk image '%s'", s->file);
			goto out;
		}
		paths[i] = xasprintf("%s/disk%u.qcow2", vmdir, i);
		_cleanup_free_ char *base_file = xasprintf("%s/disk%u.base", vmdir, i);
		_cleanup_free_ char *was = recorded_base(base_file, err);

		if (!was && err->msg[0])
			goto out;
		if (was && strcmp(was, bases[i])) {
			error_set(err, 0,
				  "disk %u of VM '%s' is an overlay over '%s', not '%s' (remove "
				  "'%s' to start it again)",
				  i, name, was, bases[i], paths[i]);
			goto out;
		}
		exists[i] = was != NULL;
		if (exists[i] && check_image(paths[i], DISK_FORMAT_QCOW2, false, err) < 0)
			goto out;
	}
	/* Then the overlays that are new. */
	for (i = 0; i < n; i++) {
		const struct vm_disk_spec *s = &specs[i];
		struct vmm_disk *d = &cfg->disks[i];

		if (s->overlay && !exists[i]) {
			_cleanup_free_ char *base_file = xasprintf("%s/disk%u.base", vmdir, i);
			_cleanup_free_ char *rec = xasprintf("%s\n", bases[i]);
			_cleanup_close_ int fd = -1;

			if (!made->nr_files)
				note_missing_dirs(vmdir, made);
			if (mkdir_p(vmdir, 0700, err) < 0)
				goto out;
			/* A stale overlay of a base no longer recorded: made again. */
			if (unlink(paths[i]) < 0 && errno != ENOENT) {
				error_set(err, errno, "cannot remove '%s'", paths[i]);
				goto out;
			}
			if (disk_create_overlay(paths[i], bases[i], s->format, err) < 0)
				goto out;
			made->files[made->nr_files++] = xstrdup(paths[i]);
			fd = open(base_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (fd >= 0)
				made->files[made->nr_files++] = xstrdup(base_file);
			if (fd < 0 || write_all(fd, rec, strlen(rec)) < 0 || fsync(fd) < 0) {
				error_set(err, errno, "cannot write '%s'", base_file);
				goto out;
			}
		}
		if (s->overlay) {
			d->path = paths[i];
			d->format = DISK_FORMAT_QCOW2;
			d->read_only = false;
		} else {
			paths[i] = xstrdup(s->file);
			d->path = paths[i];
			d->format = s->format;
			d->read_only = s->ro;
		}
	}
	cfg->nr_disks = n;
	ret = 0;
out:
	if (ret < 0) {
		vm_disks_unmake(made, true);
		for (i = 0; i < n; i++) {
			free(paths[i]);
			paths[i] = NULL;
		}
	}
	for (i = 0; i < n; i++)
		free(bases[i]);
	store_release(&store);
	return ret;
}
