#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/cleanup.h"
#include "vmm/kvm.h"
#include "common/banned.h"

const char *kvm_device_path(void)
{
	const char *p = getenv("HUTCH_KVM_DEVICE");

	return p && *p ? p : "/dev/kvm";
}

int kvm_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r;
}

int kvm_open(struct error *err)
{
	const char *path = kvm_device_path();
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	int version;

	if (fd < 0) {
		int e = errno;
		struct stat st;

		if (e == ENOENT)
			return error_set(
			    err, 0,
			    "cannot open '%s': it does not exist, so KVM is not available "
			    "here; enable virtualization in the firmware and load kvm_intel "
			    "or kvm_amd (modprobe kvm_amd)",
			    path);
		if (e == EACCES || e == EPERM) {
			if (stat(path, &st) == 0 && (st.st_mode & S_IRWXG) && st.st_gid != 0)
				return error_set(
				    err, 0,
				    "cannot open '%s': permission denied: add your user "
				    "to the group that owns it (usermod -aG kvm $USER) "
				    "and log in again",
				    path);
			return error_set(err, 0,
					 "cannot open '%s': permission denied: grant your user "
					 "read-write access to it (for example a 'kvm' group with "
					 "mode 0660 and usermod -aG kvm $USER)",
					 path);
		}
		return error_set(err, e, "cannot open '%s'", path);
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return error_set(err, 0, "'%s' speaks KVM API version %d, hutch needs %d", path,
				 version, KVM_API_VERSION);
	return steal_fd(&fd);
}

unsigned kvm_max_vcpus(int kvm_fd)
{
	int n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (n <= 0)
		n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (n <= 0)
		n = 4; /* Documentation/virt/kvm/api.rst: assume 4 when neither is reported */
	return (unsigned)n;
}
