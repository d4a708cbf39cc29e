#!/usr/bin/env python3
"""Send hand-made ASAP/ENRP messages to an RSPLIB registrar to provoke its
error paths (ASAP Error, ENRP Error, rejections). Used by capture.sh inside
the SCTP lab; the replies are what gets captured.

usage: craft-errors.py REGISTRAR_ADDR [--asap-port 3863] [--enrp-port 9901]
                       [--src ADDR] [--base-port 40000] [--probes all|init]

--probes init sends only the ENRP List Request / Handle Table Requests (for a
registrar that is still in its initialization phase).

Every probe uses a fresh one-to-one SCTP association bound to
SRC:BASE_PORT+n (BASE_PORT..BASE_PORT+99), so capture.sh can leave the crafted
messages themselves out of the vectors (only RSPLIB's answers are vectors).
The SCTP PPID (11 ASAP, 12 ENRP) is set per message with an SCTP_SNDINFO
control message: Python's socket module has no SCTP helpers.
Prints one line per probe with the answers received (hex).
"""
import argparse
import select
import socket
import struct
import sys
import time

IPPROTO_SCTP = 132
SCTP_SNDINFO = 2  # cmsg type, linux/sctp.h enum sctp_cmsg_type
PPID_ASAP, PPID_ENRP = 11, 12


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def tlv(ptype, value):
    """A parameter: type, length (without the final pad), value, pad."""
    return pad4(struct.pack("!HH", ptype, 4 + len(value)) + value)


def msg(mtype, flags, body, length=None):
    """A message; length defaults to header + body (the body is padded)."""
    if length is None:
        length = 4 + len(body)
    return struct.pack("!BBH", mtype, flags, length) + body


def pool_handle(name):
    return tlv(0x0009, name.encode())


def pe_id(i):
    return tlv(0x000E, struct.pack("!I", i))


def ipv4(addr):
    return tlv(0x0001, socket.inet_aton(addr))


def sctp_transport(port, use, *addrs):
    return tlv(0x0004, struct.pack("!HH", port, use) + b"".join(ipv4(a) for a in addrs))


def policy(ptype, *values):
    return tlv(0x0008, struct.pack("!I", ptype) + b"".join(struct.pack("!I", v) for v in values))


def pool_element(ident, home, life_ms, transport, pol):
    return tlv(0x000A, struct.pack("!IIi", ident, home, life_ms) + transport + pol)


def enrp(mtype, flags, sender, receiver, rest=b""):
    return msg(mtype, flags, struct.pack("!II", sender, receiver) + rest)


def probe(args, n, name, ppid, port, payload, wait=1.0):
    """Send payload on a fresh association from base_port+n; print replies."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    replies, note = [], ""
    try:
        s.bind((args.src, args.base_port + n))
        s.settimeout(3)
        s.connect((args.registrar, port))
        # struct sctp_sndinfo: u16 sid, u16 flags, u32 ppid (sent as is, so
        # already in network order), u32 context, s32 assoc_id
        info = struct.pack("=HH", 0, 0) + struct.pack("!I", ppid) + struct.pack("=Ii", 0, 0)
        s.sendmsg([payload], [(IPPROTO_SCTP, SCTP_SNDINFO, info)])
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data = s.recv(65536)
            if not data:
                note = " (association closed by peer)"
                break
            replies.append(data.hex())
    except OSError as e:
        note = " (%s)" % e
    finally:
        s.close()
    shown = " | ".join(r[:64] + ("..." if len(r) > 64 else "") for r in replies) or "no answer"
    print("%-44s -> %s%s" % (name, shown, note), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("registrar")
    ap.add_argument("--asap-port", type=int, default=3863)
    ap.add_argument("--enrp-port", type=int, default=9901)
    ap.add_argument("--src", default="0.0.0.0")
    ap.add_argument("--base-port", type=int, default=40000)
    ap.add_argument("--probes", choices=("all", "init"), default="all")
    a = ap.parse_args()
    A, E = a.asap_port, a.enrp_port
    me = 0x0BAD0001  # the crafted "peer registrar" ID
    ph = pool_handle("EchoPool")
    unknown = lambda t: tlv(t, b"\xde\xad\xbe\xef")  # noqa: E731

    asap = [
        ("ASAP HR + unknown param 0x4abc (stop+report)", msg(0x05, 0, ph + unknown(0x4ABC))),
        ("ASAP HR + unknown param 0x4abc, 5-byte value", msg(0x05, 0, ph + tlv(0x4ABC, b"12345"))),
        ("ASAP HR + unknown param 0xcabc (skip+report)", msg(0x05, 0, ph + unknown(0xCABC))),
        ("ASAP HR + unknown param 0x0abc (stop)", msg(0x05, 0, ph + unknown(0x0ABC))),
        ("ASAP HR + unknown param 0x8abc (skip)", msg(0x05, 0, ph + unknown(0x8ABC))),
        ("ASAP HR, S flag set", msg(0x05, 0x01, ph)),
        ("ASAP HR, unknown pool handle", msg(0x05, 0, pool_handle("NoSuchPool"))),
        ("ASAP HR, pool handle TLV overruns message", msg(0x05, 0, struct.pack("!HH", 0x0009, 40) + b"EchoPool")),
        ("ASAP HR, message length too short", msg(0x05, 0, ph, length=6)),
        ("ASAP message type 0x4f (report if unknown)", msg(0x4F, 0, ph)),
        ("ASAP message type 0x3f (unknown)", msg(0x3F, 0, ph)),
        ("ASAP Deregistration of an unknown PE", msg(0x02, 0, ph + pe_id(0x0BAD0BAD))),
        ("ASAP Registration, unknown policy 0x0000abcd",
         msg(0x01, 0, pool_handle("CraftPool") + pool_element(
             0x0BAD0002, 0, 30000, sctp_transport(7777, 1, a.src), policy(0x0000ABCD)))),
        ("ASAP Registration, policy TLV too short",
         msg(0x01, 0, pool_handle("CraftPool") + pool_element(
             0x0BAD0003, 0, 30000, sctp_transport(7777, 1, a.src), tlv(0x0008, b"\0\0")))),
        ("ASAP Registration, loopback-only address",
         msg(0x01, 0, pool_handle("CraftPool") + pool_element(
             0x0BAD0004, 0, 30000, sctp_transport(7777, 1, "127.0.0.1"), policy(1)))),
        ("ASAP Endpoint Unreachable, unknown PE", msg(0x09, 0, ph + pe_id(0x0BAD0BAD))),
    ]
    enrp_probes = [
        ("ENRP Presence + unknown param 0x4abc",
         enrp(0x01, 0, me, 0, tlv(0x000F, b"\xff\xff") + unknown(0x4ABC))),
        ("ENRP Presence + unknown param 0x4abc, 5-byte value",
         enrp(0x01, 0, me, 0, tlv(0x000F, b"\xff\xff") + tlv(0x4ABC, b"12345"))),
        ("ENRP HT Request + unknown param 0x4abc", enrp(0x02, 0, me, 0, unknown(0x4ABC))),
        ("ENRP HT Request, W flag", enrp(0x02, 0x01, me, 0)),
        ("ENRP List Request", enrp(0x05, 0, me, 0)),
        ("ENRP Handle Update + unknown param 0x4abc",
         enrp(0x04, 0, me, 0, struct.pack("!HH", 0, 0) + unknown(0x4ABC))),
        ("ENRP message type 0x4e (report if unknown)", enrp(0x4E, 0, me, 0)),
        ("ENRP Presence, length field beyond data", msg(0x01, 0, struct.pack("!II", me, 0), length=64)),
        ("ENRP Presence, PE checksum TLV overruns", enrp(0x01, 0, me, 0, struct.pack("!HH", 0x000F, 30) + b"\xff\xff")),
        ("ENRP Init Takeover for an unknown server", enrp(0x07, 0, me, 0, struct.pack("!I", 0x0BAD0099))),
    ]
    if a.probes == "init":
        asap = []
        enrp_probes = [
            ("ENRP List Request (registrar initializing)", enrp(0x05, 0, me, 0)),
            ("ENRP HT Request (registrar initializing)", enrp(0x02, 0, me, 0)),
            ("ENRP HT Request, W flag (initializing)", enrp(0x02, 0x01, me, 0)),
        ]
    n = 0
    for name, payload in asap:
        probe(a, n, name, PPID_ASAP, A, payload)
        n += 1
    for name, payload in enrp_probes:
        probe(a, n, name, PPID_ENRP, E, payload)
        n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
