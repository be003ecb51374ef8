#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_dns_wire (tests/fuzz/corpus/dns_wire/): DNS responses as a
resolver sends them (RFC 1035 §4.1), one file each. Run it again after changing a seed:
    python3 tests/fuzz/make_dns_wire_seeds.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dns_wire")
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 41
PTR_QNAME = 0xC00C  # a compression pointer to the question name at offset 12


def name(n):
    out = b""
    for label in n.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(id_, flags, qd, an, ns=0, ar=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def question(n, t):
    return name(n) + struct.pack(">HH", t, 1)


def rr(owner, t, ttl, rdata, cls=1):
    """owner: wire bytes (a name or a pointer)."""
    return owner + struct.pack(">HHIH", t, cls, ttl, len(rdata)) + rdata


def ptr(offset):
    return struct.pack(">H", 0xC000 | offset)


def opt(udp=1232):
    return b"\0" + struct.pack(">HHIH", OPT, udp, 0, 0)


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)


def seeds():
    ok = 0x8180  # QR RD RA, rcode 0
    # An A answer with an EDNS0 OPT in the additional section.
    yield "a", (header(0x1001, ok, 1, 1, 0, 1) + question("example.com", A)
                + rr(ptr(12), A, 300, bytes([192, 0, 2, 10])) + opt())
    # Two TXT records, the SPF one split into several character-strings.
    yield "txt_multi", (header(0x1002, ok, 1, 2) + question("example.com", TXT)
                        + rr(ptr(12), TXT, 3600, txt("v=spf1 ip4:192.0.2.0/24 ", "include:_spf.example.net ", "-all"))
                        + rr(ptr(12), TXT, 3600, txt("google-site-verification=abc", "")))
    # Compressed names everywhere: a CNAME whose target points into the owner, then the A of the target.
    q = header(0x1003, ok, 1, 2) + question("www.example.com", A)
    cname_rdata = b"\x04host" + ptr(16)  # host + "example.com" of the question (offset 12 + 4)
    first = rr(ptr(12), CNAME, 600, cname_rdata)
    target_at = len(q) + 12  # the CNAME's rdata starts 12 octets into its record
    yield "cname_compressed", q + first + rr(ptr(target_at), A, 60, bytes([198, 51, 100, 7]))
    # MX answers with the exchange compressed against the question.
    q = header(0x1004, ok, 1, 2) + question("example.com", MX)
    yield "mx_compressed", (q + rr(ptr(12), MX, 300, struct.pack(">H", 10) + b"\x04mail" + ptr(12))
                            + rr(ptr(12), MX, 300, struct.pack(">H", 20) + b"\x06backup" + ptr(12)))
    # NXDOMAIN with the zone's SOA in the authority section (RFC 2308 negative TTL).
    q = header(0x1005, 0x8183, 1, 0, 1) + question("nope.example.com", TXT)
    soa = b"\x02ns" + ptr(17) + b"\x0ahostmaster" + ptr(17) + struct.pack(">IIIII", 2026120301, 7200, 900, 1209600, 300)
    yield "nxdomain_soa", q + rr(ptr(17), SOA, 3600, soa)
    # A PTR answer for a reverse lookup.
    yield "ptr", (header(0x1006, ok, 1, 1) + question("10.2.0.192.in-addr.arpa", PTR)
                  + rr(ptr(12), PTR, 86400, name("mail.example.com")))
    # AAAA.
    yield "aaaa", (header(0x1007, ok, 1, 1) + question("example.com", AAAA)
                   + rr(ptr(12), AAAA, 300, bytes.fromhex("20010db8000000000000000000000001")))
    # Truncated over UDP: TC set, the answer cut after the question (the caller retries over TCP).
    yield "truncated_tc", header(0x1008, ok | 0x0200, 1, 3) + question("big.example.com", TXT)
    # Cut in the middle of a record without TC: must be rejected, never read past the end.
    whole = (header(0x1009, ok, 1, 1) + question("example.com", TXT)
             + rr(ptr(12), TXT, 300, txt("v=spf1 -all")))
    yield "cut_mid_record", whole[:-5]
    # SERVFAIL.
    yield "servfail", header(0x100A, 0x8182, 1, 0) + question("example.com", A)


def main():
    os.makedirs(OUT, exist_ok=True)
    for fname, data in seeds():
        with open(os.path.join(OUT, fname), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
