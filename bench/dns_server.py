"""The bench's DNS server on 127.0.0.1:PORT (UDP and TCP), for the plugin rows of bench/driver.py and
bench/run-anchors.sh. PORT 0 picks a free port; the port is printed on stdout once serving.

    dns_server.py PORT [--negative-ttl N] ["name=TXT value" ...]

What it serves (TTL 3600 for every record):
- bench.test (smtp-source's sender domain and From: domain): SPF `v=spf1 ip4:127.0.0.0/8 -all`,
  A 127.0.0.1, MX 10 mx.bench.test (the MX the typical Lua policy looks up);
  _dmarc.bench.test: `v=DMARC1; p=none` (the policy is evaluated, never enforced).
- Two DNS lists, zen.dnsbl.bench.test (a block list) and list.dnswl.bench.test (an allow list), with
  only their RFC 5782 §5 test entry 127.0.0.2 listed: the bench client 127.0.0.1 is not listed, so
  its queries answer NXDOMAIN.
- Any other name: NXDOMAIN. (The gateway makes no PTR lookup for a loopback client.)

Negative answers carry no SOA by default, so the gateway's resolver keeps them for its default
negative TTL (30 s): the client's list lookups are real DNS queries for the first message of each
gateway process and then come from the cache, as for a client that comes back. With
`--negative-ttl 0` negative answers carry an SOA whose MINIMUM is 0 (RFC 2308 §5), the resolver
keeps nothing, and every connection costs two real queries (one per list), as for a client the
gateway has never seen.
"""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration", "lib"))
from dnslib import QTYPE, RR, SOA, DNSRecord  # noqa: E402
from dnsserver import DnsServer  # noqa: E402

ZONE = {
    "bench.test": [("TXT", "v=spf1 ip4:127.0.0.0/8 -all"), ("A", "127.0.0.1"), ("MX", (10, "mx.bench.test"))],
    "mx.bench.test": [("A", "127.0.0.1")],
    "_dmarc.bench.test": [("TXT", "v=DMARC1; p=none")],
    "2.0.0.127.zen.dnsbl.bench.test": [("A", "127.0.0.2")],
    "2.0.0.127.list.dnswl.bench.test": [("A", "127.0.10.0")],
}


class BenchDns(DnsServer):
    def __init__(self, zone, port, negative_ttl=None):
        super().__init__(zone, port=port, ttl=3600)
        self.negative_ttl = negative_ttl

    def answer(self, data):
        out = super().answer(data)
        if out is None or self.negative_ttl is None:
            return out
        reply = DNSRecord.parse(out)
        if reply.header.rcode == 3 or (reply.header.rcode == 0 and not reply.rr):
            # NXDOMAIN or NODATA: an SOA whose TTL and MINIMUM say how long it may be kept
            n = self.negative_ttl
            reply.add_auth(RR("bench.test", QTYPE.SOA, ttl=n, rdata=SOA(
                "ns.bench.test", "hostmaster.bench.test", (1, 3600, 600, 86400, n))))
            return reply.pack()
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--negative-ttl", type=int, default=None)
    ap.add_argument("records", nargs="*", help='extra "name=TXT value" records (DKIM keys)')
    a = ap.parse_args()
    zone = {k: list(v) for k, v in ZONE.items()}
    for rec in a.records:
        k, _, v = rec.partition("=")
        zone.setdefault(k, []).append(("TXT", v))
    server = BenchDns(zone, a.port, a.negative_ttl).start()
    print(server.port, flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


if __name__ == "__main__":
    main()
