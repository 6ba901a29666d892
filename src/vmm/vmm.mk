# hutch vm: the guest side (static binaries for inside the VM) and the
# default guest kernel + initramfs. Included by the top-level Makefile.
#
#   make guest        build/guest/hutch-init and hutch-probe (static)
#   make vm-assets    fetch the Debian cloud kernel and busybox-static with
#                     apt-get download (nothing is installed on the host),
#                     build the initramfs, put both in $(VM_CACHE) and
#                     copy them to build/vm, where build/hutch finds them;
#                     and the test bench's own QEMU 10.0 from
#                     bookworm-backports (tests/vm/qemu-backport.sh, the
#                     same way: nothing installed), linked as build/vm/qemu.
#
# VM_CACHE defaults to $XDG_CACHE_HOME/hutch/vm (~/.cache/hutch/vm).

VM_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hutch/vm
GUEST_CFLAGS = -std=gnu11 -O2 -static -Wall -Wextra -Wshadow -Wformat=2 -Wvla \
               -Wno-unused-parameter $(if $(filter 1,$(WERROR)),-Werror) -D_GNU_SOURCE -Isrc
GUEST_BINS := $(BUILD)/guest/hutch-init $(BUILD)/guest/hutch-probe

.PHONY: guest vm-assets check-vm

all: $(GUEST_BINS)
guest: $(GUEST_BINS)

$(BUILD)/guest/hutch-init: src/guest/init.c src/guest/hutch-ports.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $<

$(BUILD)/guest/hutch-probe: src/guest/probe.c src/guest/probe_virtio.c src/guest/probe-virtio.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -o $@ $(filter %.c,$^)

vm-assets: $(BUILD)/vm/.stamp

# The cache is shared by every checkout on the machine (each with its own
# hutch-init): one build, and the copy of what it built, at a time.
$(BUILD)/vm/.stamp: $(GUEST_BINS) src/vmm/vm-assets.sh tests/vm/qemu-backport.sh
	@mkdir -p "$(VM_CACHE)" $(BUILD)/vm
	flock "$(VM_CACHE)/.lock" sh -c 'src/vmm/vm-assets.sh "$(VM_CACHE)" $(GUEST_BINS) && \
	   tests/vm/qemu-backport.sh "$(VM_CACHE)/qemu" && \
	   cp "$(VM_CACHE)/vmlinux" "$(VM_CACHE)/vmlinuz" "$(VM_CACHE)/initramfs.cpio" "$(VM_CACHE)/kernel-release" \
	      "$(VM_CACHE)/busybox" "$(VM_CACHE)/l1-modules.cpio" $(BUILD)/vm/'
	ln -sfn "$(abspath $(VM_CACHE))/qemu" $(BUILD)/vm/qemu
	touch $@

# The VM tests alone (they boot an outer QEMU guest when this host's KVM cannot).
check-vm: all vm-assets
	bats tests/integration/vm.bats

# tests/helpers/disktool drives vmm/disk from tests/integration/qcow2.bats:
# it links the disk objects and what they stand on.
DISK_OBJS := $(filter $(BUILD)/src/vmm/disk/%,$(OBJS))
$(BUILD)/tests/helpers/disktool: tests/helpers/disktool.c $(DISK_OBJS) $(LIBHUTCH)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(HUTCH_CFLAGS) -o $@ $< $(DISK_OBJS) $(LIBHUTCH)
