#!/usr/bin/env bats
# hutch vm run: a command in a KVM micro-VM.
#
# The checks that boot a guest need real KVM. This machine's /dev/kvm
# (kvm_pvm, nested paravirtual) cannot boot a stock kernel, so by default
# setup_file boots ONE outer (L1) guest under QEMU's TCG emulator with an
# emulated AMD SVM CPU, loads kvm-amd in it and runs tests/vm/vm-checks.sh
# there against its real /dev/kvm; each test below reads that run's result
# for one check. On a host with hardware KVM (kvm_intel/kvm_amd loaded) the
# checks run directly instead. The bad-input tests run on this host.
#
# Environment: HUTCH, HUTCH_VM_DIR (guest kernel + initramfs, default
# build/vm beside $HUTCH or in the repository), HUTCH_VM_TESTS=l1|direct
# (force a mode) or none (skip the guest checks, e.g. while editing).

load helpers

vm_assets_dir()
{
	local d
	for d in "${HUTCH_VM_DIR:-}" "$(dirname "$HUTCH")/vm" "$REPO_ROOT/build/vm"; do
		if [ -n "$d" ] && [ -r "$d/vmlinux" ] && [ -r "$d/initramfs.cpio" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

setup_file()
{
	local assets guest mode log
	export VM_RESULTS="$BATS_FILE_TMPDIR/checks.txt"
	export VM_SKIP=""
	: >"$VM_RESULTS"

	if [ "${HUTCH_VM_TESTS:-}" = none ]; then
		export VM_SKIP="guest checks disabled by HUTCH_VM_TESTS=none${HUTCH_VM_TESTS_WHY:+: $HUTCH_VM_TESTS_WHY}"
		return 0
	fi
	# Build or refresh them where this hutch looks (build/vm beside it), if
	# this is a checkout we may write to (cheap when they are up to date).
	local build
	build=$(dirname "$HUTCH")
	if [ -f "$REPO_ROOT/Makefile" ] && [ -w "$build" ]; then
		make -C "$REPO_ROOT" BUILD="$build" vm-assets >"$BATS_FILE_TMPDIR/assets.log" 2>&1 ||
			echo "make vm-assets failed: $(tail -n 1 "$BATS_FILE_TMPDIR/assets.log")" >&3
	fi
	if ! assets=$(vm_assets_dir); then
		export VM_SKIP="no guest kernel and initramfs (run 'make vm-assets'; hutch looks in build/vm or \$HUTCH_VM_DIR): $(tail -n 1 "$BATS_FILE_TMPDIR/assets.log" 2>/dev/null || echo "$build is not writable")"
		return 0
	fi
	guest=${HUTCH_VM_GUEST:-$(dirname "$assets")/guest}
	mode=${HUTCH_VM_TESTS:-}
	if [ -z "$mode" ]; then
		if { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } &&
			[ -r /dev/kvm ] && [ -w /dev/kvm ]; then
			mode=direct
		else
			mode=l1
		fi
	fi
	if [ "$mode" = direct ]; then
		HUTCH_VM_DIR="$assets" HUTCH="$HUTCH" PROBE="$guest/hutch-probe" \
			sh "$REPO_ROOT/tests/vm/vm-checks.sh" >"$VM_RESULTS" 2>&1
		return 0
	fi
	# The emulator l1-run.sh will use: $QEMU, the bench's own QEMU 10.0 in
	# build/vm/qemu (make vm-assets), or the host's.
	local qemu
	qemu=$(. "$REPO_ROOT/tests/vm/qemu.sh" && l1_qemu "$assets")
	if ! command -v "$qemu" >/dev/null; then
		export VM_SKIP="no hardware KVM here and no $qemu to emulate a KVM host (make vm-assets, or apt-get install qemu-system-x86)"
		return 0
	fi
	for f in "$assets/busybox" "$assets/l1-modules.cpio" "$guest/hutch-probe"; do
		if [ ! -r "$f" ]; then
			export VM_SKIP="missing $f (run 'make vm-assets')"
			return 0
		fi
	done
	# Root runs the checks as root in L1; anyone else runs them as a user
	# without privileges there too (given access to /dev/kvm, as a kvm group does).
	# QEMU's TCG (7.2 more than 10.0) now and then hangs the L1 guest (docs/vm.md,
	# "the L1 bench"): all of it took 7 minutes with other work on both cores
	# (load 3.6) and more than 7 under load 6 (2026-12-03); past 12 it is
	# hung, and it is run once more, in plain sight. Twice hung fails every check.
	local attempt
	for attempt in 1 2; do
		L1_AS_NOBODY=$([ "$(id -u)" -eq 0 ] && echo 0 || echo 1) \
			HUTCH="$HUTCH" VM_ASSETS="$assets" GUEST_BIN="$guest" L1_TIMEOUT=720 \
			"$REPO_ROOT/tests/vm/l1-run.sh" "$REPO_ROOT/tests/vm/vm-checks.sh" \
			$(command -v qemu-img) >"$BATS_FILE_TMPDIR/l1.log" 2>&1 || true
		# L1's serial console ends lines with \r\n.
		tr -d '\r' <"$BATS_FILE_TMPDIR/l1.log" >"$VM_RESULTS"
		if grep -q "^L1-END" "$VM_RESULTS" || [ "$attempt" = 2 ]; then
			break
		fi
		echo "# INFO the L1 guest did not finish within 720 s (last line: $(tail -n 1 "$VM_RESULTS")); running it once more" >&3
	done
	grep "^l1-run: QEMU" "$VM_RESULTS" | head -n 1 | sed 's/^l1-run: /# INFO L1 emulator: /' >&3 || true
	# A boot retried after a triple fault of the emulator (vm-checks.sh) is
	# no failure, but it is shown.
	grep "^INFO retried" "$VM_RESULTS" | sed 's/^/# /' >&3 || true
	if ! grep -q "^L1-BEGIN" "$VM_RESULTS"; then
		return 0 # each test fails, showing the log
	fi
	if grep -q "^L1: no /dev/kvm" "$VM_RESULTS"; then
		export VM_SKIP="the emulated L1 guest offers no /dev/kvm (this QEMU emulates no SVM: $("$qemu" --version | head -n1))"
	fi
}

# vm_check NAME: the check NAME of vm-checks.sh passed.
vm_check()
{
	[ -z "$VM_SKIP" ] || skip "$VM_SKIP"
	if grep -q "^CHECK $1 ok$" "$VM_RESULTS"; then
		return 0
	fi
	if grep -q "^CHECK $1 skip " "$VM_RESULTS"; then
		skip "$(grep "^CHECK $1 skip " "$VM_RESULTS" | head -n 1 | cut -d' ' -f4-)"
	fi
	echo "check '$1' did not pass; its lines of the run:"
	grep -E "^(CHECK|  )$1 " "$VM_RESULTS" || echo "(none: the run ended early)"
	echo "--- end of the run's log:"
	tail -n 30 "$VM_RESULTS"
	return 1
}

@test "a VM with 1 vCPU boots and its guest reports 1 CPU" {
	vm_check cpus-1
}

@test "a VM with --cpus 4 boots and its guest reports 4 CPUs" {
	vm_check cpus-4
}

@test "exit status 0 of the guest command passes through" {
	vm_check exit-0
}

@test "exit status 1 of the guest command passes through" {
	vm_check exit-1
}

@test "exit status 42 of the guest command passes through" {
	vm_check exit-42
}

@test "a guest command killed by SIGKILL makes hutch exit 137" {
	vm_check exit-signal
}

@test "the default kernel is the uncompressed vmlinux, running where its ELF header loads it" {
	vm_check kernel-elf
}

@test "a bzImage given with --kernel boots too" {
	vm_check kernel-bzimage
}

@test "guest stdout reaches stdout byte for byte (all 256 byte values)" {
	vm_check stdout-bytes
}

@test "guest stdout and stderr stay separate, newlines untranslated" {
	vm_check stdout-stderr
}

@test "the guest sees exactly --memory in its firmware memory map" {
	vm_check memory-exact
}

@test "unemulated ports and MMIO read all-ones, are refused and counted, the VM goes on" {
	vm_check unhandled-io
}

@test "a guest kernel panic stops the VM with a clear message and status 125" {
	vm_check stop-panic
}

@test "a guest reboot stops the VM with a clear message and status 125" {
	vm_check stop-reboot
}

@test "a guest poweroff before the command reports stops the VM with a message" {
	vm_check stop-poweroff
}

@test "SIGINT (Ctrl-C) on the host stops the VM, status 130" {
	vm_check host-interrupt
}

@test "--shell reads the host's input through the interrupt-driven UART" {
	vm_check shell-input
}

@test "--shell on a terminal: window size reaches the guest, Ctrl-C stops the guest's job" {
	vm_check shell-terminal
}

@test "virtio-rng: the guest binds virtio_rng as its hardware RNG and reads bytes from it" {
	vm_check virtio-rng
}

@test "more vCPUs than KVM allows is refused, status 125" {
	vm_check bad-cpus-kvm
}

@test "--disk raw: the guest makes a file system on it, the data is on the host file, a second run reads it" {
	vm_check disk-raw
}

@test "--disk ,ro: the guest sees a read-only disk and cannot write the image" {
	vm_check disk-ro
}

@test "--disk ,overlay: the base's sha256 stays, the guest's writes survive a second run, qemu-img check is clean" {
	vm_check disk-overlay
}

@test "--disk qcow2 made by qemu-img: after the guest's writes qemu-img check is clean and convert gives its bytes" {
	vm_check disk-qcow2
}

@test "--disk ,overlay: kill -9 of the VMM while the guest writes leaves an overlay qemu-img check accepts, with what the guest flushed" {
	vm_check disk-kill9
}

@test "--disk ,overlay: an unprivileged user (given /dev/kvm) runs a VM on disks in its own store" {
	vm_check disk-unprivileged
}

@test "a hostile guest driver (bad queue sizes, rings outside RAM, looping and over-long chains) gets NEEDS_RESET, counted; the VMM goes on" {
	vm_check hostile-guest
}

# --- bad input, checked on this host before any guest runs ---

# A file with just enough of a bzImage header to pass hutch's checks.
# make_bzimage FILE PROTOCOL(hex, e.g. 020f)
make_bzimage()
{
	local f=$1 v=$2
	head -c 16384 /dev/zero >"$f"
	poke() { printf "$2" | dd of="$f" bs=1 seek=$(($1)) conv=notrunc status=none; }
	poke 0x1f1 '\x03'                          # setup_sects
	poke 0x1fe '\x55\xaa'                      # boot_flag
	poke 0x202 'HdrS'
	poke 0x206 "\\x${v:2:2}\\x${v:0:2}"        # version
	poke 0x211 '\x01'                          # loadflags: LOADED_HIGH
	poke 0x22c '\xff\xff\xff\x7f'              # initrd_addr_max
	poke 0x236 '\x01'                          # xloadflags: XLF_KERNEL_64
	poke 0x238 '\xff\x07\x00\x00'              # cmdline_size
	poke 0x260 '\x00\x00\x00\x01'              # init_size: 16 MiB
}

# make_elf FILE PADDR(8 little-endian bytes as \x escapes): an ELF64 x86-64
# executable with one PT_LOAD of 4 KiB at file offset 4 KiB, loaded at PADDR,
# entered at its start.
make_elf()
{
	local f=$1 paddr=$2
	head -c 8192 /dev/zero >"$f"
	poke() { printf "$2" | dd of="$f" bs=1 seek=$(($1)) conv=notrunc status=none; }
	poke 0 '\x7fELF\x02\x01\x01'                 # ELF64, little-endian
	poke 16 '\x02\x00\x3e\x00\x01'              # ET_EXEC, EM_X86_64, version 1
	poke 24 "$paddr"                              # e_entry
	poke 32 '\x40'                                # e_phoff 64
	poke 52 '\x40\x00\x38\x00\x01'              # e_ehsize, e_phentsize 56, e_phnum 1
	poke 64 '\x01\x00\x00\x00\x05'              # PT_LOAD, R+X
	poke 72 '\x00\x10'                            # p_offset 4096
	poke 88 "$paddr"                              # p_paddr
	poke 96 '\x00\x10'                            # p_filesz 4096
	poke 104 '\x00\x10'                           # p_memsz 4096
}

setup()
{
	hutch_setup
	VMDIR=$(mktemp -d /var/tmp/hutch-vm.XXXXXX)
	chmod 0755 "$VMDIR"
	make_bzimage "$VMDIR/bzImage" 020f
	head -c 4096 /dev/zero >"$VMDIR/initrd"
	chmod 0644 "$VMDIR"/*
}

teardown()
{
	rm -rf "$VMDIR"
	hutch_teardown
}

# expect_refused_with TEXT: one line on stderr, "hutch: ..." containing TEXT, status 125.
expect_refused_with()
{
	if [ "$status" -ne 125 ] || [ "${#stderr_lines[@]}" -ne 1 ] ||
		[[ ${stderr_lines[0]} != "hutch: "* ]] || [[ $stderr != *"$1"* ]]; then
		echo "status $status, stderr:"
		echo "$stderr"
		echo "(wanted status 125 and one line containing: $1)"
		return 1
	fi
}

vm_run()
{
	hrun vm run --kernel "$VMDIR/bzImage" --initrd "$VMDIR/initrd" "$@"
}

@test "a kernel file that is neither an ELF vmlinux nor a bzImage is refused" {
	head -c 65536 /dev/urandom >"$VMDIR/notkernel"
	hrun vm run --kernel "$VMDIR/notkernel" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "not an ELF or bzImage kernel"
}

@test "an ELF kernel that is not x86-64, is truncated or loads below 1 MiB is refused" {
	make_elf "$VMDIR/low" '\x00\x70\x00\x00\x00\x00\x00\x00'
	hrun vm run --kernel "$VMDIR/low" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "cannot boot '$VMDIR/low': ELF kernel segment 0 loads at 0x7000, below 1 MiB"
	make_elf "$VMDIR/ok" '\x00\x00\x00\x01\x00\x00\x00\x00'
	head -c 6000 "$VMDIR/ok" >"$VMDIR/short"
	hrun vm run --kernel "$VMDIR/short" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "truncated ELF kernel: segment 0 lies past the file's end"
	cp "$VMDIR/ok" "$VMDIR/arm"
	printf '\xb7' | dd of="$VMDIR/arm" bs=1 seek=18 conv=notrunc status=none # EM_AARCH64
	hrun vm run --kernel "$VMDIR/arm" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "ELF kernel is not for x86-64"
	head -c 40 "$VMDIR/ok" >"$VMDIR/tiny"
	hrun vm run --kernel "$VMDIR/tiny" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "truncated ELF kernel: only 40 bytes"
}

@test "a bzImage with a boot protocol older than 2.12 is refused" {
	make_bzimage "$VMDIR/old" 0208
	hrun vm run --kernel "$VMDIR/old" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "boot protocol 2.08, hutch needs 2.12 or newer"
}

@test "a missing kernel file is refused" {
	hrun vm run --kernel "$VMDIR/nope" --initrd "$VMDIR/initrd" -- true
	expect_refused_with "cannot open kernel '$VMDIR/nope'"
}

@test "--memory too small for the kernel is refused" {
	vm_run --memory 8M -- true
	expect_refused_with "--memory 8 MiB is too small"
}

@test "--memory beyond what the host has is refused" {
	vm_run --memory 64T -- true
	expect_refused_with "is more than this host has"
}

@test "an initrd too large for guest memory is refused" {
	truncate -s 600M "$VMDIR/initrd"
	vm_run --memory 512M -- true
	expect_refused_with "initrd '$VMDIR/initrd' (600 MiB) is too large for --memory 512 MiB"
}

@test "--cpus 0 is refused" {
	vm_run --cpus 0 -- true
	expect_refused_with "--cpus 0"
}

@test "a malformed --memory is refused" {
	vm_run --memory lots -- true
	expect_refused_with "invalid --memory 'lots'"
}

@test "a size without a unit is refused by vm as by run, with the same line" {
	vm_run --memory 300 -- true
	expect_refused_with "--memory '300' needs a unit: 300K, 300M, 300G"
	local vm_says=$stderr
	hrun run --memory 300 -- true
	[ "$status" -eq 125 ]
	[ "$stderr" = "$vm_says" ]
	# A unit means the same for both: 8M is 8 MiB, too small for this kernel.
	vm_run --memory 8M -- true
	expect_refused_with "--memory 8 MiB is too small"
	vm_run --memory 0G -- true
	expect_refused_with "--memory '0G' must be more than zero"
	vm_run --memory 16777216T -- true
	expect_refused_with "--memory '16777216T' is too large"
}

@test "without /dev/kvm hutch says KVM is unavailable and how to get it" {
	HUTCH_KVM_DEVICE="$VMDIR/kvm" vm_run -- true
	expect_refused_with "cannot open '$VMDIR/kvm': it does not exist, so KVM is not available here; enable virtualization"
}

@test "without permission on /dev/kvm hutch says so and how to fix it" {
	[ -e /dev/kvm ] || skip "this host has no /dev/kvm"
	if [ "$(id -u)" -eq 0 ]; then
		command -v setpriv >/dev/null || skip "setpriv (util-linux) is missing"
		[ "$(stat -c %a /dev/kvm)" = 600 ] || skip "/dev/kvm is open to other users here"
		run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$HUTCH" vm run --kernel "$VMDIR/bzImage" --initrd "$VMDIR/initrd" -- true
	else
		[ ! -r /dev/kvm ] || skip "this user may open /dev/kvm"
		vm_run -- true
	fi
	expect_refused_with "cannot open '/dev/kvm': permission denied"
}

@test "more vCPUs than this host's KVM allows is refused" {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "this user may not open /dev/kvm"
	vm_run --cpus 4000 -- true
	expect_refused_with "--cpus 4000 is out of range: KVM here allows 1 to"
}

@test "a missing command is refused" {
	vm_run
	expect_refused_with "missing command to run in the VM"
}

# --- --disk: bad input, refused before anything is made (HUTCH_HOME stays absent) ---

# expect_disk_refused TEXT: refused with TEXT, the VM store not made, the image unchanged.
expect_disk_refused()
{
	expect_refused_with "$1"
	if [ -e "$HUTCH_HOME" ]; then
		echo "the store was made: $(find "$HUTCH_HOME")"
		return 1
	fi
	if [ -e "$VMDIR/disk.raw" ] && [ "$(sha256sum <"$VMDIR/disk.raw")" != "$DISK_SUM" ]; then
		echo "the image changed"
		return 1
	fi
}

disk_setup()
{
	head -c 1048576 /dev/urandom >"$VMDIR/disk.raw"
	DISK_SUM=$(sha256sum <"$VMDIR/disk.raw")
}

@test "--disk: a missing image is refused" {
	vm_run --disk "$VMDIR/nope.raw" -- true
	expect_disk_refused "cannot open disk image '$VMDIR/nope.raw': No such file or directory"
	vm_run --disk "$VMDIR/nope.raw,overlay" -- true
	expect_disk_refused "cannot open disk image '$VMDIR/nope.raw'"
}

@test "--disk: an unreadable image is refused" {
	[ "$(id -u)" -ne 0 ] || skip "root reads a file of mode 000 (the unprivileged pass runs this)"
	disk_setup
	chmod 000 "$VMDIR/disk.raw"
	vm_run --disk "$VMDIR/disk.raw,ro" -- true
	expect_refused_with "cannot open disk image '$VMDIR/disk.raw': Permission denied"
	[ ! -e "$HUTCH_HOME" ]
}

@test "--disk: a directory is refused" {
	mkdir "$VMDIR/adir"
	vm_run --disk "$VMDIR/adir" -- true
	expect_disk_refused "disk image '$VMDIR/adir' is a directory"
	vm_run --disk "$VMDIR/adir,overlay" -- true
	expect_disk_refused "disk image '$VMDIR/adir' is a directory"
}

@test "--disk: an unsupported format, an unknown option, ro with overlay are refused" {
	disk_setup
	vm_run --disk "$VMDIR/disk.raw,format=vmdk" -- true
	expect_disk_refused "--disk '$VMDIR/disk.raw,format=vmdk': unsupported format 'vmdk' (raw or qcow2)"
	vm_run --disk "$VMDIR/disk.raw,rw" -- true
	expect_disk_refused "--disk '$VMDIR/disk.raw,rw': unknown option 'rw'"
	vm_run --disk "$VMDIR/disk.raw,ro,overlay" -- true
	expect_disk_refused "--disk '$VMDIR/disk.raw,ro,overlay': ro and overlay together"
	vm_run --disk ",ro" -- true
	expect_disk_refused "--disk ',ro': no image file before the options"
}

@test "--disk: more than 8 disks are refused" {
	disk_setup
	local args=() i
	for i in 1 2 3 4 5 6 7 8 9; do args+=(--disk "$VMDIR/disk.raw,overlay"); done
	vm_run "${args[@]}" -- true
	expect_disk_refused "too many disks: at most 8 --disk"
}

@test "--disk: a corrupt qcow2 image, also as an overlay's base, is refused" {
	disk_setup
	# qcow2's magic, then a header no image has (version 0).
	{ printf 'QFI\373'; head -c 508 /dev/zero; } >"$VMDIR/bad.qcow2"
	local sum
	sum=$(sha256sum <"$VMDIR/bad.qcow2")
	vm_run --disk "$VMDIR/disk.raw,overlay" --disk "$VMDIR/bad.qcow2,overlay" -- true
	expect_disk_refused "$VMDIR/bad.qcow2"
	[ "$(sha256sum <"$VMDIR/bad.qcow2")" = "$sum" ]
	vm_run --disk "$VMDIR/bad.qcow2" -- true
	expect_disk_refused "$VMDIR/bad.qcow2"
	[ "$(sha256sum <"$VMDIR/bad.qcow2")" = "$sum" ]
}

@test "--disk: an unsupported qcow2 feature, a looping and a too deep backing chain are refused" {
	command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is missing"
	disk_setup
	local d=$VMDIR i sums
	# A kernel refused after the disks: a disk wrongly taken fails fast, no guest boots.
	head -c 65536 /dev/urandom >"$d/notkernel"
	dvm() { hrun vm run --kernel "$d/notkernel" --initrd "$d/initrd" "$@"; }
	qemu-img create -q -f qcow2 -o extended_l2=on "$d/sub.qcow2" 1M
	dvm --disk "$d/sub.qcow2,overlay" -- true
	expect_disk_refused "disk image '$d/sub.qcow2': extended L2 entries (subclusters) are not supported"
	# a over b over a.
	qemu-img create -q -f qcow2 -b "$d/disk.raw" -F raw "$d/a.qcow2"
	qemu-img create -q -f qcow2 -b "$d/a.qcow2" -F qcow2 "$d/b.qcow2"
	qemu-img rebase -q -u -b "$d/b.qcow2" -F qcow2 "$d/a.qcow2"
	sums=$(sha256sum "$d"/*.qcow2)
	dvm --disk "$d/a.qcow2" -- true
	expect_disk_refused "backing chain loops back to an image above it"
	dvm --disk "$d/b.qcow2,overlay" -- true
	expect_disk_refused "backing chain loops back to an image above it"
	# Nine images over the raw one: one more than the 8 allowed.
	qemu-img create -q -f qcow2 -b "$d/disk.raw" -F raw "$d/c1.qcow2"
	for i in 2 3 4 5 6 7 8 9; do
		qemu-img create -q -f qcow2 -b "$d/c$((i - 1)).qcow2" -F qcow2 "$d/c$i.qcow2"
	done
	# Eight are taken: the disks pass, and the kernel after them is refused.
	dvm --disk "$d/c8.qcow2,ro" -- true
	expect_refused_with "not an ELF or bzImage kernel"
	dvm --disk "$d/c9.qcow2" -- true
	expect_disk_refused "backing chain deeper than 8 images"
	[ "$(sha256sum "$d"/a.qcow2 "$d"/b.qcow2 "$d"/sub.qcow2)" = "$(grep -E '/(a|b|sub)\.qcow2$' <<< "$sums")" ]
}

@test "--name: an invalid VM name is refused" {
	disk_setup
	vm_run --name ../x --disk "$VMDIR/disk.raw,overlay" -- true
	expect_disk_refused "invalid VM name '../x'"
}

# make_overlay NAME N BASE: the store a run of VM NAME leaves once its guest
# has run with --disk BASE,overlay as disk N (this host's KVM boots no Linux:
# the L1 checks make it for real, vm-checks.sh disk-overlay).
make_overlay()
{
	mkdir -p "$HUTCH_HOME/vms/$1"
	qemu-img create -q -f qcow2 -F raw -b "$(realpath "$3")" "$HUTCH_HOME/vms/$1/disk$2.qcow2"
	realpath "$3" >"$HUTCH_HOME/vms/$1/disk$2.base"
}

@test "--disk ,overlay: a later run naming another base for the same disk is refused" {
	command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is missing"
	disk_setup
	cp "$VMDIR/disk.raw" "$VMDIR/other.raw"
	make_overlay default 0 "$VMDIR/disk.raw"
	local sum
	sum=$(sha256sum <"$HUTCH_HOME/vms/default/disk0.qcow2")
	vm_run --disk "$VMDIR/other.raw,overlay" -- true
	expect_refused_with "disk 0 of VM 'default' is an overlay over '$(realpath "$VMDIR/disk.raw")', not '$(realpath "$VMDIR/other.raw")'"
	[ "$(sha256sum <"$HUTCH_HOME/vms/default/disk0.qcow2")" = "$sum" ]
	grep -qx "$(realpath "$VMDIR/disk.raw")" "$HUTCH_HOME/vms/default/disk0.base"
	[ "$(sha256sum <"$VMDIR/disk.raw")" = "$DISK_SUM" ]
}

@test "--disk ,overlay: a VM refused before its guest ran leaves no overlay and no store" {
	disk_setup
	# Refused while checking the kernel, after the overlay was made.
	head -c 65536 /dev/urandom >"$VMDIR/notkernel"
	hrun vm run --kernel "$VMDIR/notkernel" --initrd "$VMDIR/initrd" --disk "$VMDIR/disk.raw,overlay" -- true
	expect_disk_refused "not an ELF or bzImage kernel"
	# Refused by KVM itself, after the VM was made with its disks.
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		vm_run --cpus 4000 --name other --disk "$VMDIR/disk.raw,overlay" -- true
		expect_disk_refused "--cpus 4000 is out of range"
	fi
	# A store that was there stays, and so does the overlay of another disk.
	command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is missing"
	make_overlay default 0 "$VMDIR/disk.raw"
	hrun vm run --kernel "$VMDIR/notkernel" --initrd "$VMDIR/initrd" \
		--disk "$VMDIR/disk.raw,overlay" --disk "$VMDIR/disk.raw,ro" --disk "$VMDIR/disk.raw,overlay" -- true
	expect_refused_with "not an ELF or bzImage kernel"
	[ "$(ls "$HUTCH_HOME/vms/default")" = "$(printf 'disk0.base\ndisk0.qcow2')" ]
}

# with_write_lock FILE COMMAND...: COMMAND while another process holds a
# POSIX write lock on FILE, as another writer would (it conflicts with
# hutch's OFD lock); at most 30 s.
with_write_lock()
{
	local file=$1 locker i
	shift
	python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+b"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(30)' \
		"$file" >"$VMDIR/lock.out" &
	locker=$!
	for i in $(seq 50); do grep -q locked "$VMDIR/lock.out" && break; sleep 0.1; done
	"$@"
	kill "$locker"
	wait "$locker" || true
}

@test "--disk ,overlay: an overlay another program has open is refused, unchanged" {
	command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is missing"
	disk_setup
	make_overlay default 0 "$VMDIR/disk.raw"
	local ov=$HUTCH_HOME/vms/default/disk0.qcow2 sum
	sum=$(sha256sum <"$ov")
	with_write_lock "$ov" vm_run --disk "$VMDIR/disk.raw,overlay" -- true
	expect_refused_with "disk image '$ov' is in use: another program has it open"
	[ "$(sha256sum <"$ov")" = "$sum" ]
	# Its base, written by another program, cannot be an overlay's base meanwhile.
	with_write_lock "$VMDIR/disk.raw" vm_run --name two --disk "$VMDIR/disk.raw,overlay" -- true
	expect_refused_with "disk image '$VMDIR/disk.raw' is in use: another program has it open for writing"
	[ ! -e "$HUTCH_HOME/vms/two" ]
}
