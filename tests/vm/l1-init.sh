#!/bin/busybox sh
# PID 1 of the outer (L1) test guest: QEMU TCG emulates AMD SVM, so after
# loading kvm-amd /dev/kvm in here is real KVM. Runs /l1/run.sh and reports
# on the serial console, then powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in /l1/modules/*-irqbypass.ko /l1/modules/*-kvm.ko /l1/modules/*-kvm-amd.ko; do
	insmod "$m" || echo "L1: cannot load $m"
done
if [ -c /dev/kvm ]; then echo "L1: kvm ready"; else echo "L1: no /dev/kvm"; fi
# Trace the shutdown (triple fault) exits of KVM's guests, with the guest RIP
# and the event being delivered: exit code 0x7f is SVM_EXIT_SHUTDOWN. Only
# those exits are recorded, so the tracing costs little.
t=/sys/kernel/tracing
if mount -t tracefs tracefs $t 2>/dev/null && [ -d $t/events/kvm/kvm_exit ]; then
	echo 'exit_reason==127' >$t/events/kvm/kvm_exit/filter &&
		echo 1 >$t/events/kvm/kvm_exit/enable
	chmod a+rx $t 2>/dev/null
	chmod a+r $t/trace 2>/dev/null
fi
echo "L1-BEGIN"
if [ -e /l1/as-nobody ]; then
	# As an unprivileged user who was granted the device (a 'kvm' group member).
	chmod 0666 /dev/kvm
	su -s /bin/sh nobody -c 'sh /l1/run.sh'
else
	sh /l1/run.sh
fi
echo "L1-END rc=$?"
sync
poweroff -f
