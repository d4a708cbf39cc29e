#!/usr/bin/env python3
"""Turn the pcaps written by capture.sh into golden vectors.

usage: extract.py --work DIR --out DIR [--cap N]   (N default 2)

Reads WORK/pcaps/NN-<scenario>.pcapng in order with tshark, takes every ASAP
and ENRP message (tshark layers asap/enrp: SCTP PPID 11/12 or ports
3863/9901, UDP 3863/9901), leaves out the messages that craft-errors.py sent
itself (WORK/craft-source), deduplicates by bytes and keeps a capped,
structure-preserving subset:

  * group by (protocol, type, flags, length field);
  * in each group keep one vector per distinct structure (parameter tree with
    types and lengths, pool handle / cookie lengths only modulo 4, policy
    types, error cause codes, update actions, transport-use values,
    transport), the most frequent one first;
  * fill each group up to N vectors (default 2) with further distinct ones,
    the most frequent first.

Writes OUT/<proto>-<type>-<name>-<sha8>.hex (one line of lowercase hex, the
complete ASAP/ENRP message as carried in the SCTP DATA chunk or UDP
datagram, padding included) and OUT/index.tsv, after removing the old ones.
Then wraps every vector with text2pcap (SCTP DATA chunk with the right ports
and PPID, or a UDP datagram) and records tshark's verdict in index.tsv.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

ASAP_NAMES = {
    0x01: "registration", 0x02: "deregistration", 0x03: "registration-response",
    0x04: "deregistration-response", 0x05: "handle-resolution",
    0x06: "handle-resolution-response", 0x07: "endpoint-keep-alive",
    0x08: "endpoint-keep-alive-ack", 0x09: "endpoint-unreachable",
    0x0A: "server-announce", 0x0B: "cookie", 0x0C: "cookie-echo",
    0x0D: "business-card", 0x0E: "error",
}
ENRP_NAMES = {
    0x01: "presence", 0x02: "handle-table-request", 0x03: "handle-table-response",
    0x04: "handle-update", 0x05: "list-request", 0x06: "list-response",
    0x07: "init-takeover", 0x08: "init-takeover-ack", 0x09: "takeover-server",
    0x0A: "error",
}
PORT = {"asap": 3863, "enrp": 9901}
PPID = {"asap": 11, "enrp": 12}
PARAM_ABBR = {
    0x0001: "IPv4", 0x0002: "IPv6", 0x0003: "DCCP", 0x0004: "SCTP", 0x0005: "TCP",
    0x0006: "UDP", 0x0007: "UDPLite", 0x0008: "POL", 0x0009: "PH", 0x000A: "PE",
    0x000B: "SI", 0x000C: "ERR", 0x000D: "COOKIE", 0x000E: "PEID", 0x000F: "CSUM",
    0x0010: "OPAQUE", 0x803F: "HROPT",
}
# container parameters: number of fixed bytes before the nested parameters
NESTED = {0x0003: 8, 0x0004: 4, 0x0005: 4, 0x0006: 4, 0x0007: 4, 0x000A: 12, 0x000B: 4}
VARIABLE = {0x0009, 0x000D, 0x0010}  # opaque values: only the pad class matters


def name_of(proto, mtype):
    return (ASAP_NAMES if proto == "asap" else ENRP_NAMES).get(mtype, "unknown-%02x" % mtype)


# ------------------------------------------------------------- structure
def params(buf, policy_types=True):
    """Describe the TLVs in buf: (signature list, human-readable list).
    policy_types=False leaves policy type values out of the signature (only
    the policy parameter's length counts)."""
    sig, txt, off = [], [], 0
    while off + 4 <= len(buf):
        t, ln = struct.unpack_from("!HH", buf, off)
        if ln < 4 or off + ln > len(buf):
            sig.append(("bad", t, ln))
            txt.append("BAD(type 0x%04x len %d at +%d)" % (t, ln, off))
            break
        val = buf[off + 4:off + ln]
        abbr = PARAM_ABBR.get(t, "0x%04x" % t)
        if t in VARIABLE:
            sig.append((t, "len%%4=%d" % (ln % 4)))
            txt.append("%s(%d)" % (abbr, ln - 4))
        elif t in NESTED and len(val) >= NESTED[t]:
            fixed = val[:NESTED[t]]
            extra = ""
            if t in (0x0004, 0x0005, 0x0006, 0x0007):
                use = struct.unpack_from("!H", fixed, 2)[0]
                extra = "use=%d" % use
            elif t == 0x000A:
                life = struct.unpack_from("!I", fixed, 8)[0]
                extra = "life=%d" % life
            s2, t2 = params(val[NESTED[t]:], policy_types)
            sig.append((t, ln if t != 0x000A else None, extra if t != 0x000A else None, tuple(s2)))
            txt.append("%s[%s%s]" % (abbr, extra + " " if extra else "", " ".join(t2)))
        elif t == 0x0008 and len(val) >= 4:
            ptype = struct.unpack_from("!I", val)[0]
            sig.append((t, ln, ptype if policy_types else None))
            rest = ",".join("%d" % struct.unpack_from("!I", val, i)[0] for i in range(4, len(val) - 3, 4))
            txt.append("POL(0x%08x%s)" % (ptype, ":" + rest if rest else ""))
        elif t == 0x000C:
            s2, t2 = causes(val)
            sig.append((t, ln, tuple(s2)))
            txt.append("ERR[%s]" % " ".join(t2))
        elif t == 0x000F and len(val) >= 2:
            sig.append((t, ln))
            txt.append("CSUM(%s)" % val[:2].hex())
        else:
            sig.append((t, ln))
            txt.append("%s(%d)" % (abbr, ln - 4) if t not in (0x0001, 0x0002, 0x000E) else abbr)
        off += (ln + 3) & ~3
    if off < len(buf) and any(buf[off:]):
        sig.append(("trailing", len(buf) - off))
        txt.append("+%d trailing bytes" % (len(buf) - off))
    return sig, txt


def causes(buf):
    sig, txt, off = [], [], 0
    while off + 4 <= len(buf):
        code, ln = struct.unpack_from("!HH", buf, off)
        if ln < 4 or off + ln > len(buf):
            sig.append(("badcause", code, ln))
            txt.append("BADCAUSE(0x%04x len %d)" % (code, ln))
            break
        info = buf[off + 4:off + ln]
        if info:
            s2, t2 = params(info)  # (cause 0x2 would hold a message; not seen)
            sig.append((code, ln, tuple(s2)))
            txt.append("cause 0x%04x[%s]" % (code, " ".join(t2)))
        else:
            sig.append((code, ln))
            txt.append("cause 0x%04x" % code)
        off += (ln + 3) & ~3
    return sig, txt


def describe(proto, msg):
    """(type, flags, length field, signature, text) of one message.
    Policy types are part of the signature only in ASAP Registration and
    Handle Resolution Response: every policy is kept there, while in the
    other messages that carry PEs only the policy parameter's size counts."""
    if len(msg) < 4:
        return None
    mtype, flags, length = struct.unpack_from("!BBH", msg)
    body, head, ids = msg[4:], [], None
    if proto == "enrp":
        # two server IDs; Handle Update: action + reserved; takeover: target ID
        fixed = 8 + (4 if mtype in (0x04, 0x07, 0x08, 0x09) else 0)
        if len(body) >= 8:
            snd, rcv = struct.unpack_from("!II", body)
            head.append("from 0x%08x to 0x%08x" % (snd, rcv))
            ids = (snd == 0, rcv == 0)  # zero IDs are part of the structure
        if mtype == 0x04 and len(body) >= 12:
            head.append("action %d" % struct.unpack_from("!H", body, 8)[0])
        if mtype in (0x07, 0x08, 0x09) and len(body) >= 12:
            head.append("target 0x%08x" % struct.unpack_from("!I", body, 8)[0])
    else:
        fixed = 4 if mtype in (0x07, 0x0A) else 0
        if fixed and len(body) >= 4:
            head.append("server 0x%08x" % struct.unpack_from("!I", body)[0])
    sig, txt = params(body[fixed:], policy_types=(proto == "asap" and mtype in (0x01, 0x06)))
    extra = (mtype == 0x04 and proto == "enrp" and len(body) >= 12) and struct.unpack_from("!H", body, 8)[0]
    pad_note = ""
    if length != len(msg):
        pad_note = "length field %d, %d bytes sent" % (length, len(msg))
    text = "; ".join(x for x in (", ".join(head), " ".join(txt), pad_note) if x)
    return mtype, flags, length, (mtype, flags, extra, ids, len(msg) - length, tuple(sig)), text


# ------------------------------------------------------------- tshark input
def tshark_json(args):
    out = subprocess.run(["tshark"] + args, check=True, capture_output=True).stdout
    return json.loads(out or b"[]")


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) and x and isinstance(x[0], (list, dict)) else [x]


def raw_hex(entry):
    # "-x" raw fields: [hex, offset, length, bitmask, type]
    return entry[0] if isinstance(entry, list) else entry


def first(layer, key):
    if isinstance(layer, list):
        layer = layer[0]
    v = layer.get(key) if isinstance(layer, dict) else None
    return v[0] if isinstance(v, list) else v


def read_pcap(path, scenario, craft):
    """Yield (proto, bytes, transport, scenario) for every message in path."""
    frames = tshark_json(["-r", path, "-Y", "asap || enrp", "-T", "json", "-x",
                          "--no-duplicate-keys", "-o", "sctp.reassembly:TRUE"])
    for fr in frames:
        layers = fr["_source"]["layers"]
        if "icmp" in layers or "icmpv6" in layers:
            continue  # quoted packets inside ICMP errors
        transport = "udp" if "udp" in layers else "sctp"
        tl = layers.get(transport, {})
        src = first(layers.get("ip", {}), "ip.src") or first(layers.get("ipv6", {}), "ipv6.src")
        sport = int(first(tl, transport + ".srcport") or 0)
        if craft and scenario == craft[0] and src == craft[1] and craft[2] <= sport <= craft[3]:
            continue
        for proto in ("asap", "enrp"):
            for entry in as_list(layers.get(proto + "_raw")):
                yield proto, bytes.fromhex(raw_hex(entry)), transport


# ------------------------------------------------------------- tshark check
def check_with_tshark(vectors, tmp):
    """vectors: list of dicts (proto, transport, data); sets v['tshark']."""
    groups = collections.defaultdict(list)
    for v in vectors:
        groups[(v["proto"], v["transport"])].append(v)
    for (proto, transport), vs in sorted(groups.items()):
        txt = os.path.join(tmp, "%s-%s.txt" % (proto, transport))
        pcap = os.path.join(tmp, "%s-%s.pcap" % (proto, transport))
        with open(txt, "w") as f:
            for v in vs:
                d = v["data"]
                for off in range(0, len(d), 16):
                    f.write("%06x %s\n" % (off, " ".join("%02x" % b for b in d[off:off + 16])))
        port = PORT[proto]
        if transport == "sctp":
            wrap = ["-S", "%d,%d,%d" % (port, port, PPID[proto])]
        else:
            wrap = ["-u", "%d,%d" % (port, port)]
        subprocess.run(["text2pcap", "-q"] + wrap + [txt, pcap], check=True, capture_output=True)
        frames = tshark_json(["-r", pcap, "-T", "json", "--no-duplicate-keys"])
        if len(frames) != len(vs):
            sys.exit("extract.py: text2pcap made %d frames from %d vectors" % (len(frames), len(vs)))
        for v, fr in zip(vs, frames):
            layers = fr["_source"]["layers"]
            experts, malformed = [], "_ws.malformed" in layers
            walk(layers.get(proto, {}), experts)
            walk(layers.get("_ws.malformed", {}), experts)
            if not layers.get(proto):
                malformed, experts = True, experts + ["not dissected as " + proto.upper()]
            msgs = []
            for e in experts:
                if e not in msgs:
                    msgs.append(e)
            status = "MALFORMED" if malformed else "OK"
            v["tshark"] = status + (": " + "; ".join(msgs) if msgs else "")


SEVERITY = {"2097152": "chat", "4194304": "note", "6291456": "warning", "8388608": "error"}


def walk(node, experts):
    """Collect the expert infos under a dissection tree."""
    if isinstance(node, dict):
        for k, val in node.items():
            if k == "_ws.expert":
                for e in (val if isinstance(val, list) else [val]):
                    if isinstance(e, dict) and "_ws.expert.message" in e:
                        sev = e.get("_ws.expert.severity", "?")
                        experts.append("%s [%s]" % (e["_ws.expert.message"], SEVERITY.get(sev, sev)))
            walk(val, experts)
    elif isinstance(node, list):
        for x in node:
            walk(x, experts)


# ------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cap", type=int, default=2)
    a = ap.parse_args()

    craft = None
    cf = os.path.join(a.work, "craft-source")
    if os.path.exists(cf):
        scen, addr, ports = open(cf).read().split()
        lo, hi = (int(x) for x in ports.split("-"))
        craft = (scen, addr, lo, hi)

    pdir = os.path.join(a.work, "pcaps")
    pcaps = sorted(f for f in os.listdir(pdir) if f.endswith(".pcapng")) if os.path.isdir(pdir) else []
    if not pcaps:
        sys.exit("extract.py: no pcaps in %s/pcaps" % a.work)
    seen = collections.OrderedDict()  # (proto, bytes) -> info
    total = 0
    for f in pcaps:
        scenario = re.sub(r"^\d+-", "", f[:-len(".pcapng")])
        n = 0
        for proto, data, transport in read_pcap(os.path.join(a.work, "pcaps", f), scenario, craft):
            n += 1
            key = (proto, data)
            if key not in seen:
                seen[key] = {"proto": proto, "data": data, "count": 0, "transports": set(),
                             "scenario": scenario}
            seen[key]["count"] += 1
            seen[key]["transports"].add(transport)
        print("extract.py: %-24s %5d messages" % (scenario, n))
        total += n

    # group and select
    groups = collections.OrderedDict()
    for v in seen.values():
        d = describe(v["proto"], v["data"])
        if d is None:
            continue
        v["type"], v["flags"], v["length"], sig, v["note"] = d
        v["transport"] = ",".join(sorted(v["transports"]))
        v["sig"] = (sig, v["transport"])
        groups.setdefault((v["proto"], v["type"], v["flags"], v["length"]), []).append(v)
    chosen = []
    for key, vs in groups.items():
        vs.sort(key=lambda v: -v["count"])  # stable: first seen among equals
        picked, sigs = [], set()
        for v in vs:
            if v["sig"] not in sigs:
                sigs.add(v["sig"])
                picked.append(v)
        for v in vs:
            if len(picked) >= a.cap:
                break
            if v not in picked:
                picked.append(v)
        chosen.extend(picked)
    chosen.sort(key=lambda v: (v["proto"], v["type"], v["flags"], v["length"], -v["count"]))

    with tempfile.TemporaryDirectory(prefix="vectors-") as tmp:
        check_with_tshark(chosen, tmp)

    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.out):
        if f.endswith(".hex") or f == "index.tsv":
            os.remove(os.path.join(a.out, f))
    rows = []
    for v in chosen:
        sha = hashlib.sha256(v["data"]).hexdigest()[:8]
        fname = "%s-%02x-%s-%s.hex" % (v["proto"], v["type"], name_of(v["proto"], v["type"]), sha)
        with open(os.path.join(a.out, fname), "w") as f:
            f.write(v["data"].hex() + "\n")
        rows.append([fname, v["proto"], "0x%02x" % v["type"], name_of(v["proto"], v["type"]),
                     "0x%02x" % v["flags"], str(v["length"]), str(len(v["data"])), str(v["count"]),
                     v["transport"], v["scenario"], v["tshark"], v["note"]])
    with open(os.path.join(a.out, "index.tsv"), "w") as f:
        f.write("\t".join(["file", "proto", "msg_type", "msg_name", "flags", "length", "bytes",
                           "occurrences", "transport", "scenario", "tshark_4.0.17", "structure"]) + "\n")
        for r in rows:
            f.write("\t".join(x.replace("\t", " ") for x in r) + "\n")

    kinds = collections.Counter((v["proto"], v["type"], v["flags"]) for v in chosen)
    print("extract.py: %d messages, %d distinct, %d vectors written to %s" % (total, len(seen), len(chosen), a.out))
    for (proto, t, fl), n in sorted(kinds.items()):
        print("  %s 0x%02x %-28s flags 0x%02x: %d" % (proto, t, name_of(proto, t), fl, n))
    got = {(p, t) for p, t, _ in kinds}
    absent = ["%s 0x%02x %s" % (p, t, name_of(p, t))
              for p, names in (("asap", ASAP_NAMES), ("enrp", ENRP_NAMES))
              for t in sorted(names) if (p, t) not in got]
    print("extract.py: message types not captured: %s" % (", ".join(absent) or "none"))
    bad = [v for v in chosen if not v["tshark"].startswith("OK")]
    print("extract.py: tshark: %d OK, %d MALFORMED" % (len(chosen) - len(bad), len(bad)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
