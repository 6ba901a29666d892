#!/usr/bin/env python3
"""The far side for allow.bats, inside the network namespace of a box's
keeper (net/net.h), which a test's own user owns: join its user and network
namespaces (setns keeps this process's capabilities there, an exec would
not), give the box's loopback the made-up addresses 10.99.0.1 and 10.99.0.2
and fd99::1, and serve on each: TCP on ports 8080 and 8081 (answer "hello
PORT" and close), UDP on 8080 and 8081 (echo). Prints "ready" when serving
and serves until killed. No traffic leaves the namespace.

usage: allow_servers.py KEEPER_PID
"""
import ctypes
import fcntl
import os
import select
import socket
import struct
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCSIFADDR = 0x8916
SIOCSIFFLAGS = 0x8914
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
PORTS = (8080, 8081)
ADDRS4 = ("10.99.0.1", "10.99.0.2")
ADDR6 = "fd99::1"

libc = ctypes.CDLL(None, use_errno=True)


def setns(path, kind):
    fd = os.open(path, os.O_RDONLY)
    if libc.setns(fd, kind) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    os.close(fd)


def add_addr4(sock, label, addr):
    ifr = struct.pack("16sH2s4s8s", label.encode(), socket.AF_INET, b"\0\0",
                      socket.inet_aton(addr), b"\0" * 8)
    fcntl.ioctl(sock, SIOCSIFADDR, ifr)


def add_addr6(addr):
    # struct in6_ifreq: address, prefix length, interface index.
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    req = struct.pack("16sIi", socket.inet_pton(socket.AF_INET6, addr), 128,
                      socket.if_nametoindex("lo"))
    fcntl.ioctl(s6, SIOCSIFADDR, req)
    s6.close()


def free_bind(sock, fam):
    # An IPv6 address is tentative for a moment after it is added.
    if fam == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, 78, 1)  # IPV6_FREEBIND
    else:
        sock.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND


def main():
    keeper = sys.argv[1]
    setns("/proc/%s/ns/user" % keeper, CLONE_NEWUSER)
    setns("/proc/%s/ns/net" % keeper, CLONE_NEWNET)
    # ICMP datagram sockets for every group (this namespace's own sysctl,
    # set by its owner U1), so that the box's ICMP meets the rules rather
    # than EACCES at socket().
    # The range takes groups mapped in the namespace's owner only.
    with open("/proc/%s/gid_map" % keeper) as f:
        spans = [[int(x) for x in line.split()] for line in f if line.strip()]
    lo = min(inside for inside, _, _ in spans)
    hi = max(inside + count - 1 for inside, _, count in spans)
    with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
        f.write("%d %d\n" % (lo, hi))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, a in enumerate(ADDRS4):
        add_addr4(s, "lo:%d" % (i + 1), a)
    add_addr6(ADDR6)
    listeners, dgrams = [], []
    for a, fam in [(x, socket.AF_INET) for x in ADDRS4] + [(ADDR6, socket.AF_INET6)]:
        for p in PORTS:
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            free_bind(t, fam)
            t.bind((a, p))
            t.listen(16)
            listeners.append(t)
            u = socket.socket(fam, socket.SOCK_DGRAM)
            free_bind(u, fam)
            u.bind((a, p))
            dgrams.append(u)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(listeners + dgrams, [], [])
        for r in ready:
            if r in listeners:
                c, _ = r.accept()
                c.sendall(b"hello %d\n" % r.getsockname()[1])
                c.close()
            else:
                data, peer = r.recvfrom(2048)
                r.sendto(data, peer)


main()
