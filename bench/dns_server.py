"""The bench's DNS server: SPF for bench.test (the smtp-source sender) on 127.0.0.1:PORT."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration", "lib"))
from dnsserver import DnsServer  # noqa: E402

port = int(sys.argv[1])
zone = {"bench.test": [("TXT", "v=spf1 ip4:127.0.0.0/8 -all"), ("A", "127.0.0.1")]}
for name in sys.argv[2:]:  # extra "name=TXT value" records (DKIM keys)
    k, _, v = name.partition("=")
    zone.setdefault(k, []).append(("TXT", v))
DnsServer(zone, port=port, ttl=3600).start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
