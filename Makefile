# hutch — GNU Makefile. `make` builds build/hutch; `make check` runs every test.
CC ?= cc
PKG_CONFIG ?= pkg-config
BUILD ?= build

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 -Wvla \
        -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -Isrc
HUTCH_CFLAGS = -std=gnu11 $(WARN) -MMD -MP $(CFLAGS) $(PKG_CFLAGS)
LDLIBS ?=
# inih (libinih-dev) reads profiles (src/policy/profile.c); jansson (libjansson-dev) the event log (src/cli/cmd_log.c).
HUTCH_PKGS += inih jansson
# libseccomp builds the box's syscall filter (src/policy/seccomp.c).
HUTCH_PKGS += libseccomp

# Every .c under src/ belongs to hutch except the guest side of the VM,
# which is built by its own rules (static, for inside the guest), and the
# helpers hutch runs (src/libexec/, below).
SRCS := $(shell find src -name '*.c' -not -path 'src/guest/*' -not -path 'src/libexec/*' | sort)
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
# libhutch.a: the box, its policy, its network and what they stand on, for
# every front end: the CLI, the unit tests, later an OCI runtime and the
# init inside a VM. The CLI and the VMM link it; it calls neither.
LIBHUTCH_SRCS := $(filter src/box/% src/policy/% src/net/% src/common/%,$(SRCS))
LIBHUTCH_OBJS := $(LIBHUTCH_SRCS:%.c=$(BUILD)/%.o)
LIBHUTCH := $(BUILD)/libhutch.a
FRONT_OBJS := $(filter-out $(LIBHUTCH_OBJS) $(BUILD)/src/main.o,$(OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(HUTCH_PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(HUTCH_PKGS))
CMOCKA_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka)

HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

.PHONY: all unit helpers check check-unit check-integration clean format man install uninstall

all: $(BUILD)/hutch $(BUILD)/hutch-nft

# hutch-nft loads --allow's rules through libnftables (Debian libnftables-dev),
# which Debian ships shared only: a small dynamic helper beside the static
# hutch (src/net/nft.h), found next to it or in PREFIX/lib/hutch.
$(BUILD)/hutch-nft: src/libexec/hutch-nft.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(HUTCH_CFLAGS) $(shell $(PKG_CONFIG) --cflags libnftables) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs libnftables)

-include $(wildcard src/*/*.mk)

# Linked statically (STATIC=0 for a dynamic build): every `hutch run` starts
# a fresh hutch, and the dynamic loader's work for libc, inih, jansson and
# libseccomp costs about 0.4 ms of a box's start (docs/benchmarks.md).
# hutch uses nothing of glibc that needs dlopen (no NSS, no iconv).
STATIC ?= 1
HUTCH_LDFLAGS = $(if $(filter 1,$(STATIC)),-static-pie)
PKG_STATIC = $(if $(filter 1,$(STATIC)),--static)

$(LIBHUTCH): $(LIBHUTCH_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/hutch: $(BUILD)/src/main.o $(FRONT_OBJS) $(LIBHUTCH)
	$(CC) $(LDFLAGS) $(HUTCH_LDFLAGS) -o $@ $^ $(LDLIBS) $(shell $(PKG_CONFIG) --libs $(PKG_STATIC) $(HUTCH_PKGS))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(HUTCH_CFLAGS) -c -o $@ $<

# Unit tests link the library, and the VMM's and CLI's objects for theirs.
$(BUILD)/tests/unit/%: tests/unit/%.c $(FRONT_OBJS) $(LIBHUTCH)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(HUTCH_CFLAGS) $(CMOCKA_CFLAGS) -o $@ $< $(FRONT_OBJS) $(LIBHUTCH) $(CMOCKA_LIBS) $(LDLIBS) $(PKG_LIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(HUTCH_CFLAGS) -o $@ $<

unit: $(UNIT_BINS)
helpers: $(HELPER_BINS)

check: all unit helpers man
	tests/run-all

clean:
	rm -rf $(BUILD)

# Man pages, written in scdoc (Debian's scdoc) in docs/man/NAME.SECTION.scd.
SCDOC ?= scdoc
MAN_SRCS := $(wildcard docs/man/*.scd)
MAN_PAGES := $(MAN_SRCS:docs/man/%.scd=$(BUILD)/man/%)

man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the man pages, the
# bash completion and, when `make vm-assets` has built them, the VM's guest
# kernel and initramfs. hutch finds those in ../lib/hutch/vm from its own
# folder (src/vmm/vm.c), so they follow PREFIX/bin and PREFIX/lib, and an
# install in a DESTDIR works where it is. uninstall removes exactly these
# files, and hutch's own folders if they are left empty.
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
VM_INSTALL_DIR = $(PREFIX)/lib/hutch/vm
VM_ASSETS_DIR ?= $(BUILD)/vm
VM_ASSET_FILES := vmlinux initramfs.cpio
INSTALL ?= install

install: all man
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(BUILD)/hutch $(DESTDIR)$(PREFIX)/bin/hutch
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/lib/hutch
	$(INSTALL) -m 0755 $(BUILD)/hutch-nft $(DESTDIR)$(PREFIX)/lib/hutch/hutch-nft
	$(INSTALL) -m 0644 completions/hutch.bash $(DESTDIR)$(BASHCOMPDIR)/hutch
	for page in $(notdir $(MAN_PAGES)); do \
		sect=$${page##*.}; \
		$(INSTALL) -d $(DESTDIR)$(MANDIR)/man$$sect && \
		$(INSTALL) -m 0644 $(BUILD)/man/$$page $(DESTDIR)$(MANDIR)/man$$sect/$$page || exit 1; \
	done
	@if [ -f $(VM_ASSETS_DIR)/vmlinux ] && [ -f $(VM_ASSETS_DIR)/initramfs.cpio ]; then \
		echo "$(INSTALL) -d $(DESTDIR)$(VM_INSTALL_DIR)"; \
		$(INSTALL) -d $(DESTDIR)$(VM_INSTALL_DIR) && \
		for f in $(VM_ASSET_FILES); do \
			echo "$(INSTALL) -m 0644 $(VM_ASSETS_DIR)/$$f $(DESTDIR)$(VM_INSTALL_DIR)/$$f"; \
			$(INSTALL) -m 0644 $(VM_ASSETS_DIR)/$$f $(DESTDIR)$(VM_INSTALL_DIR)/$$f || exit 1; \
		done; \
	else \
		echo "make install: no VM assets in $(VM_ASSETS_DIR), none installed: run 'make vm-assets' first, or give 'hutch vm' HUTCH_VM_DIR or --kernel and --initrd"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hutch $(DESTDIR)$(BASHCOMPDIR)/hutch
	rm -f $(DESTDIR)$(PREFIX)/lib/hutch/hutch-nft
	for page in $(notdir $(MAN_PAGES)); do \
		rm -f $(DESTDIR)$(MANDIR)/man$${page##*.}/$$page || exit 1; \
	done
	rm -f $(addprefix $(DESTDIR)$(VM_INSTALL_DIR)/,$(VM_ASSET_FILES))
	for d in $(DESTDIR)$(VM_INSTALL_DIR) $(DESTDIR)$(PREFIX)/lib/hutch; do \
		[ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d || exit 1; \
	done

# libFuzzer targets (Debian's clang and libclang-rt-14-dev): `make fuzz`
# builds build/tests/fuzz/fuzz_*; tests/run-all runs each for a bounded time
# on its seeds in tests/fuzz/corpus/NAME/. Each links only the sources it
# fuzzes. clang's -Wformat=2 also flags error.c's vsnprintf of a va_list.
FUZZ_CC ?= clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 $(WARN) -Wno-format-nonliteral \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BINS := $(BUILD)/tests/fuzz/fuzz_control $(BUILD)/tests/fuzz/fuzz_qcow2 \
             $(BUILD)/tests/fuzz/fuzz_virtq $(BUILD)/tests/fuzz/fuzz_kernel

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
$(FUZZ_BINS): tests/fuzz/fuzz.h
check: fuzz

$(BUILD)/tests/fuzz/fuzz_control: tests/fuzz/fuzz_control.c src/box/control.c src/common/util.c \
                                  src/common/error.c src/box/control.h src/common/util.h src/common/error.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

FUZZ_DISK_SRCS := $(wildcard src/vmm/disk/*.c) src/common/util.c src/common/error.c
$(BUILD)/tests/fuzz/fuzz_qcow2: tests/fuzz/fuzz_qcow2.c $(FUZZ_DISK_SRCS) $(wildcard src/vmm/disk/*.h) \
                                src/common/util.h src/common/error.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/tests/fuzz/fuzz_virtq: tests/fuzz/fuzz_virtq.c src/vmm/virtio/virtq.c src/vmm/memory.c \
                                src/vmm/kvm.c src/common/error.c src/vmm/virtio/virtq.h \
                                src/vmm/virtio/virtio.h src/vmm/memory.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/tests/fuzz/fuzz_kernel: tests/fuzz/fuzz_kernel.c src/vmm/arch/x86_64/boot.c \
                                 src/vmm/arch/x86_64/elf.c src/vmm/arch/x86_64/acpi.c \
                                 src/vmm/memory.c src/vmm/kvm.c src/common/error.c \
                                 src/vmm/arch/arch.h src/vmm/arch/x86_64/boot.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

format:
	clang-format -i $$(find src tests -name '*.[ch]')

-include $(OBJS:.o=.d)
