"""Fault test: the DNS server stops mid-run. SPF goes temperror (on_temperror = "tempfail": 451),
nothing hangs, clients retry, and once DNS is back every message is delivered exactly once."""
import time

from dnsserver import DnsServer
from test_fault import Load, check_exact


def zone(n):
    # one sender domain per message, so the resolver's cache cannot hide the outage
    return {"s%d-%d.test" % (s, i): [("TXT", "v=spf1 ip4:192.0.2.0/24 -all")] for s in range(n) for i in range(40)}


class SpfLoad(Load):
    pause = 0.05
    proxy_ip = "192.0.2.10"  # not loopback: libspf2 passes loopback clients without asking DNS
    def sender(self, sid, i):
        return "a@s%d-%d.test" % (sid, i)


def test_dns_server_stopped_mid_run(sink, gateway_factory):
    dns = DnsServer(zone(20)).start()
    port = dns.port
    cfg = """
[trusted]
networks = []
[relay]
domains = ["example.test"]
[dns]
nameservers = ["127.0.0.1:%d"]
timeout = "1s"
[plugins.spf]
on_temperror = "tempfail"
""" % port
    gw = gateway_factory(cfg, upstream_ports=[sink.port], pipeline=["spf"], proxy_protocol=True)
    load = SpfLoad(gw.port, sessions=20, per=40, retries=60)
    load.start()
    sink.wait_count(20, timeout=30)
    dns.stop()
    time.sleep(2.5)
    dns = DnsServer(zone(20), port=port).start()
    try:
        load.join(timeout=180)
        print("acked %d of %d, tempfails %d, dns queries %d" % (len(load.acked), 800, load.tempfails, dns.queries))
        assert load.tempfails > 0, "the outage should have been felt:\n" + gw.log()[-3000:]
        assert "spf=temperror" in gw.log() or "4.7.24" in gw.log() or load.tempfails > 0
        check_exact("DNS stopped mid-run", load, sink)
        for m in sink.messages:
            assert m.header("Received-SPF")[0].startswith("pass"), m.header("Received-SPF")
    finally:
        dns.stop()
