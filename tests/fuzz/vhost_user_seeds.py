#!/usr/bin/python3
"""Write the seed corpus for fuzz_vhost_user: the request sequence QEMU 7.2
sends a vhost-user-vsock back-end on microvm (virtio-mmio, modern mode),
from boot to shutdown, byte for byte as observed with a logging back-end
(QEMU 7.2.22, Debian bookworm; see docs/vsock.md), plus a few broken
variants. Each file: one control byte (fd count, see the harness), then
header and payload in host (little-endian) order.

    /usr/bin/python3 tests/fuzz/vhost_user_seeds.py [REPO_ROOT]
"""
import os
import struct
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus", "vhost_user")

GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 5, 8, 9, 10
GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 11, 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE, GET_CONFIG = 18, 24


def msg(req, payload=b"", flags=0x1, nfds=0):
    return bytes([nfds]) + struct.pack("<III", req, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


def region(gpa, size, uva, off):
    return struct.pack("<QQQQ", gpa, size, uva, off)


MEM = struct.pack("<II", 2, 0) + region(0x0, 0xf0000, 0x7f2fe3fff000, 0x0) + \
    region(0x100000, 0xff00000, 0x7f2fe40ff000, 0x100000)

# The observed sequence, in order.
SEQUENCE = [
    msg(GET_FEATURES),
    msg(GET_PROTOCOL_FEATURES),
    msg(SET_PROTOCOL_FEATURES, u64(0x209)),
    msg(GET_QUEUE_NUM),
    msg(SET_OWNER),
    msg(SET_VRING_CALL, u64(0), nfds=1),
    msg(SET_VRING_ERR, u64(0), nfds=1),
    msg(SET_VRING_CALL, u64(1), nfds=1),
    msg(GET_CONFIG, struct.pack("<III", 0, 8, 0) + bytes(8)),
    msg(SET_FEATURES, u64(0x160000000)),
    msg(SET_MEM_TABLE, MEM, flags=0x9, nfds=2),
    msg(SET_VRING_NUM, state(0, 128)),
    msg(SET_VRING_BASE, state(0, 0)),
    msg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, 0x7f2fe40ff000,
                                    0x7f2fe4101000, 0x7f2fe40ff800, 0x102000)),
    msg(SET_VRING_KICK, u64(0), nfds=1),
    msg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 1, 0, 0x7f2fe4103000,
                                    0x7f2fe4105000, 0x7f2fe4103800, 0x106000)),
    msg(SET_VRING_KICK, u64(1), nfds=1),
    msg(SET_VRING_ENABLE, state(0, 1)),
    msg(SET_VRING_ENABLE, state(1, 1)),
    msg(SET_VRING_ENABLE, state(1, 0)),
    msg(GET_VRING_BASE, state(0, 0)),
    msg(GET_VRING_BASE, state(1, 0)),
]

# Broken on purpose: each is refused, for a different reason.
BROKEN = {
    "bad-version": msg(GET_FEATURES, flags=0x2),
    "reply-flag": msg(GET_FEATURES, flags=0x5),
    "too-big": bytes([0]) + struct.pack("<III", SET_FEATURES, 1, 5000),
    "short-payload": msg(SET_FEATURES, u64(1))[:-3],
    "trailing": msg(SET_FEATURES, u64(1)) + b"x",
    "vring-index-2": msg(SET_VRING_NUM, state(2, 128)),
    "vring-num-not-pow2": msg(SET_VRING_NUM, state(0, 100)),
    "kick-nofd-with-fd": msg(SET_VRING_KICK, u64(0x100), nfds=1),
    "kick-stray-bits": msg(SET_VRING_KICK, u64(0x10000), nfds=1),
    "call-no-fd": msg(SET_VRING_CALL, u64(0)),
    "fd-on-features": msg(SET_FEATURES, u64(1), nfds=1),
    "mem-fd-count": msg(SET_MEM_TABLE, MEM, nfds=1),
    "mem-negative-fd": msg(SET_MEM_TABLE, MEM, nfds=2 | 0x10),
    "mem-overlap": msg(SET_MEM_TABLE, struct.pack("<II", 2, 0) +
                       region(0, 0x200000, 0x1000000, 0) +
                       region(0x100000, 0x100000, 0x9000000, 0), nfds=2),
    "mem-wrap": msg(SET_MEM_TABLE, struct.pack("<II", 1, 0) +
                    region(0xffffffffffff0000, 0x100000, 0, 0), nfds=1),
    "mem-zero-regions": msg(SET_MEM_TABLE, struct.pack("<II", 0, 0)),
    "mem-nine-regions": msg(SET_MEM_TABLE, struct.pack("<II", 9, 0) +
                            region(0, 0x1000, 0, 0) * 9, nfds=9),
    "config-outside": msg(GET_CONFIG, struct.pack("<III", 250, 8, 0) + bytes(8)),
    "config-size-mismatch": msg(GET_CONFIG, struct.pack("<III", 0, 8, 0)),
    "addr-log-flag": msg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 1, 0, 0, 0, 0)),
    "enable-2": msg(SET_VRING_ENABLE, state(0, 2)),
    "base-17-bits": msg(SET_VRING_BASE, state(0, 0x10000)),
    "unsupported-log-base": msg(6, u64(0)),
    "too-many-fds": msg(SET_MEM_TABLE, MEM, nfds=12),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, m in enumerate(SEQUENCE):
        req = struct.unpack("<I", m[1:5])[0]
        with open(os.path.join(OUT, "qemu72-%02d-req%d" % (i, req)), "wb") as f:
            f.write(m)
    for name, m in BROKEN.items():
        with open(os.path.join(OUT, "bad-" + name), "wb") as f:
            f.write(m)


if __name__ == "__main__":
    main()
