"""Trust is the config's alone: with `[trusted] networks = []` a loopback client is checked by SPF like
any other. libspf2 passes every loopback client without a DNS query unless the gateway works around it
(docs/spf.md); these fail on a gateway that lets it."""
from dnsserver import DnsServer
from gwtest import Client
from spftest import spf_gateway, spf_result_of, transaction

ZONE = {
    "fail.example.org": [("TXT", "v=spf1 -all")],
    "loop4.example.org": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
    "loop6.example.org": [("TXT", "v=spf1 ip6:::1 -all")],
    "other.example.org": [("TXT", "v=spf1 ip4:127.0.0.2 -all")],
}


def test_loopback_clients_are_checked_like_any_other(tmp_path, sink):
    dns = DnsServer(ZONE).start()
    gw = spf_gateway(tmp_path, sink, dns, on_fail="reject", trusted=[])
    try:
        before = dns.queries
        for ip in ("127.0.0.1", "::1", "127.9.9.9"):
            stage, code, lines = transaction(gw.port, ip, "user@fail.example.org")
            assert (stage, code) == ("mail", 550), (ip, lines)
        assert dns.queries > before, "no DNS query was made"  # later ones come from the cache
        # a domain that does not exist is "none", not "pass"
        stage, code, lines = transaction(gw.port, "127.0.0.1", "user@nowhere.example.org")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        assert spf_result_of(sink.messages[-1])[0] == "none"
        # the record is evaluated against the real loopback address, in both families
        assert transaction(gw.port, "127.0.0.1", "user@loop4.example.org")[:2] == ("done", 250)
        assert spf_result_of(sink.messages[-1])[0] == "pass"
        assert transaction(gw.port, "::1", "user@loop6.example.org")[:2] == ("done", 250)
        assert spf_result_of(sink.messages[-1])[0] == "pass"
        assert transaction(gw.port, "127.0.0.1", "user@other.example.org")[:2] == ("mail", 550)
        log = gw.log()
        assert 'spf=pass' not in log.split("user@fail.example.org")[-1].split("\n")[0]
    finally:
        gw.stop()
        dns.stop()


def test_direct_loopback_connection_without_proxy(tmp_path, sink):
    """The case of a local hop without PROXY: the socket's own peer is 127.0.0.1."""
    dns = DnsServer(ZONE).start()
    gw = spf_gateway(tmp_path, sink, dns, on_fail="reject", trusted=[], proxy=False)
    try:
        c = Client(gw.port)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        code, lines = c.cmd("MAIL FROM:<user@fail.example.org>")
        assert code == 550, lines
        assert "fail.example.org" in gw.log() and 'verdicts="spf=pass"' not in gw.log()
        c.close()
    finally:
        gw.stop()
        dns.stop()
