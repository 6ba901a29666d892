#!/usr/bin/env python3
"""A lying upstream resolver for allow.bats, on 127.0.0.1 (never anything
else): every query it gets is written to LOG in hex, one a line, and
answered with the question, an A record of the query name (10.99.0.1, TTL
60) and an A record of another name, evil.example (10.99.0.2, TTL 600000),
which the box's stub must not allow. Prints the port, then serves until
killed.

usage: allow_upstream.py LOG
"""
import socket
import struct
import sys


def question_end(q):
    off = 12
    while q[off]:
        off += 1 + q[off]
    return off + 5


def answer(q):
    end = question_end(q)
    rrs = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([10, 99, 0, 1])
    rrs += b"\x04evil\x07example\x00" + struct.pack(">HHIH", 1, 1, 600000, 4) + bytes([10, 99, 0, 2])
    return q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 2, 0, 0) + q[12:end] + rrs


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    with open(sys.argv[1], "a") as log:
        while True:
            q, peer = s.recvfrom(4096)
            log.write(q.hex() + "\n")
            log.flush()
            if len(q) >= 12:
                s.sendto(answer(q), peer)


main()
