#!/usr/bin/env python3
"""msgs/s of the real gateway with the spf plugin on and off (same PROXY listener, same clients).

Sender domains d0..d99.bench.test are served by the test DNS server (tests/integration/lib) on
loopback; clients send from 192.0.2.10 via PROXY v1 (so they are not trusted and SPF runs), each
transaction on its own connection, from CLIENTS processes in parallel.
    GATEWAY_BUILD=build /usr/bin/python3 bench/spf_msgs.py [SECONDS] [CLIENTS]
The Python clients and sink cost more CPU than the gateway: compare the two rows, not absolutes."""
import multiprocessing
import os
import pathlib
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "lib"))

from dnsserver import DnsServer  # noqa: E402
from gwtest import RecordingSink  # noqa: E402
from spftest import spf_gateway, transaction  # noqa: E402


def client(port, seconds, idx, out):
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        stage, code, _ = transaction(port, "192.0.2.10", "u%d@d%d.bench.test" % (n, (idx * 7 + n) % 100))
        if code == 250:
            n += 1
    out.put(n)


def run(pipeline_on, seconds, clients, tmp, sink, dns):
    gw = spf_gateway(tmp, sink, dns, log_level="warn", threads=1)
    if not pipeline_on:  # same config without the plugin
        gw.stop()
        text = open(gw.config_path).read().replace('pipeline = ["spf"]', "pipeline = []")
        open(gw.config_path, "w").write(text)
        gw.start()
    try:
        transaction(gw.port, "192.0.2.10", "warm@d0.bench.test")
        q = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=client, args=(gw.port, seconds, i, q)) for i in range(clients)]
        t0 = time.time()
        for p in procs:
            p.start()
        total = sum(q.get() for _ in procs)
        for p in procs:
            p.join()
        return total / (time.time() - t0)
    finally:
        gw.stop()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    zone = {"d%d.bench.test" % i: [("TXT", "v=spf1 ip4:198.51.100.0/24 a:out.bench.test -all")] for i in range(100)}
    zone["out.bench.test"] = [("A", "192.0.2.10")]
    dns = DnsServer(zone, ttl=3600).start()
    sink = RecordingSink()
    sink.start()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="spf-bench-"))
    try:
        off = run(False, seconds, clients, tmp, sink, dns)
        on = run(True, seconds, clients, tmp, sink, dns)
        print("gateway msgs/s, %d clients, 1 worker thread: spf off %.0f, spf on %.0f (%.0f%%)"
              % (clients, off, on, 100.0 * on / off))
    finally:
        sink.stop()
        dns.stop()


if __name__ == "__main__":
    main()
