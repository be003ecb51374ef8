"""The spf plugin through the real binary: results, actions, headers, skipped clients, rDNS, the
removal of forged Authentication-Results, and a DNS server that answers slowly."""
import threading
import time

from dnsserver import DnsServer
from spftest import spf_gateway, spf_result_of, transaction

ZONE = {
    "sender.test": [("TXT", "v=spf1 ip4:192.0.2.10 ~all"), ("A", "192.0.2.99")],
    "hard.test": [("TXT", "v=spf1 ip4:192.0.2.10 exp=why.hard.test -all")],
    "why.hard.test": [("TXT", "%{i} may not send for %{d}")],
    "plain.test": [("TXT", "v=spf1 -all")],
    "broken.test": [("TXT", "v=spf1 ip4:192.0.2.10 bogus:x -all")],
    "slow.test": [("TIMEOUT", None)],
    "helo.sender.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "10.2.0.192.in-addr.arpa": [("PTR", "client.sender.test.")],
    "11.2.0.192.in-addr.arpa": [("PTR", "evil\r\nX-Injected: yes.sender.test.")],
}


def start(tmp_path, sink, **kw):
    dns = DnsServer(ZONE).start()
    gw = spf_gateway(tmp_path, sink, dns, **kw)
    return dns, gw


def test_pass_headers_and_rdns(tmp_path, sink):
    dns, gw = start(tmp_path, sink)
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.10", "alice@sender.test", helo="mx.sender.test")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        m = sink.messages[0]
        assert spf_result_of(m) == ("pass", "pass")
        rs = m.header("Received-SPF")[0]
        assert "client-ip=192.0.2.10;" in rs and 'envelope-from="alice@sender.test";' in rs
        assert "helo=mx.sender.test;" in rs and "identity=mailfrom;" in rs and "receiver=gw.test;" in rs
        ar = m.header("Authentication-Results")
        assert len(ar) == 1 and ar[0].startswith("gw.test;") and "spf=pass smtp.mailfrom=alice@sender.test" in ar[0]
        assert "(client.sender.test [192.0.2.10])" in m.header("Received")[0]
        assert gw.metric('smtpgw_spf_results_total{result="pass"}') == 1
        assert gw.metric('smtpgw_dns_lookups_total{source="network"}') == 2, gw.metrics()  # PTR of the client, TXT
        # a second message from the same client: PTR and TXT come from the cache
        assert transaction(gw.port, "192.0.2.10", "bob@sender.test", helo="mx.sender.test")[1] == 250
        assert gw.metric('smtpgw_dns_lookups_total{source="cache"}') == 2
        assert gw.metric('smtpgw_dns_lookups_total{source="network"}') == 2
    finally:
        gw.stop()
        dns.stop()


def test_actions_per_result(tmp_path, sink):
    dns, gw = start(tmp_path, sink, on_fail="reject", on_softfail="tag", on_temperror="tempfail", on_permerror="reject")
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.66", "bob@hard.test")
        assert (stage, code) == ("mail", 550), lines
        assert "5.7.23" in lines[0] and "192.0.2.66 may not send for hard.test" in lines[0]
        stage, code, lines = transaction(gw.port, "192.0.2.66", "bob@plain.test")
        assert (stage, code) == ("mail", 550) and "5.7.23" in lines[0], lines
        stage, code, lines = transaction(gw.port, "192.0.2.66", "bob@slow.test")
        assert (stage, code) == ("mail", 451) and "4.7.24" in lines[0], lines
        stage, code, lines = transaction(gw.port, "192.0.2.10", "bob@broken.test")
        assert (stage, code) == ("mail", 550), lines
        stage, code, lines = transaction(gw.port, "192.0.2.66", "carol@sender.test")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        assert spf_result_of(sink.messages[-1]) == ("softfail", "softfail")
    finally:
        gw.stop()
        dns.stop()


def test_null_sender_checks_helo(tmp_path, sink):
    dns, gw = start(tmp_path, sink)
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.10", "", helo="helo.sender.test")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        m = sink.messages[0]
        assert spf_result_of(m) == ("pass", "pass")
        assert "smtp.helo=helo.sender.test" in m.header("Authentication-Results")[0]
        assert "identity=helo;" in m.header("Received-SPF")[0]
    finally:
        gw.stop()
        dns.stop()


def test_trusted_client_is_not_checked_and_forged_results_removed(tmp_path, sink):
    dns, gw = start(tmp_path, sink)
    try:
        body = ("Authentication-Results: gw.test; spf=pass smtp.mailfrom=evil@plain.test\r\n"
                "Authentication-Results: other.example; spf=fail\r\n"
                "Subject: t\r\n\r\nhello\r\n")
        # 127.0.0.0/8 is trusted by default: no SPF check, no headers
        stage, code, lines = transaction(gw.port, "127.0.0.9", "evil@plain.test", body=body)
        assert (stage, code) == ("done", 250), lines
        stage, code, lines = transaction(gw.port, "192.0.2.66", "evil@plain.test", body=body)
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(2)
        trusted, outside = sink.messages
        assert trusted.header("Received-SPF") == []
        assert outside.header("Received-SPF")[0].startswith("fail")
        ar = outside.header("Authentication-Results")
        assert len(ar) == 2
        assert ar[0].startswith("gw.test;") and "spf=fail" in ar[0]
        assert ar[1].startswith("other.example;")
        # the forged one is gone from the trusted client's message too; only the foreign one stays
        assert [a.split(";")[0] for a in trusted.header("Authentication-Results")] == ["other.example"]
    finally:
        gw.stop()
        dns.stop()


def test_slow_dns_does_not_slow_other_sessions(tmp_path, sink):
    """A nameserver that answers slow.example only after 3 s: while SPF lookups for it hang,
    transactions for other domains keep flowing at full speed (their answers are cached)."""
    zone = dict(ZONE)
    zone["slow.example"] = [("TXT", "v=spf1 +all")]
    dns = DnsServer(zone).start()
    real_answer = dns.answer

    def answer(data):
        from dnslib import DNSRecord
        if str(DNSRecord.parse(data).q.qname).rstrip(".").lower() == "slow.example":
            time.sleep(3.0)
        return real_answer(data)

    dns.answer = answer
    gw = spf_gateway(tmp_path, sink, dns, dns_timeout="5s", threads=2)
    try:
        # warm the cache for the fast domain, and measure the harness's own pace
        assert transaction(gw.port, "192.0.2.10", "a@sender.test")[1] == 250
        t0 = time.monotonic()
        base = [transaction(gw.port, "192.0.2.10", "c%d@sender.test" % i)[1] for i in range(25)]
        baseline = (time.monotonic() - t0) / 25
        assert base == [250] * 25
        slow_results = []

        hang_start = time.monotonic()

        def slow():
            r = transaction(gw.port, "192.0.2.10", "x@slow.example")
            slow_results.append((r, time.monotonic() - hang_start))

        hung = [threading.Thread(target=slow) for _ in range(20)]
        for t in hung:
            t.start()
        time.sleep(0.3)  # the slow lookups are now in flight
        t0 = time.monotonic()
        fast = [transaction(gw.port, "192.0.2.10", "b%d@sender.test" % i) for i in range(25)]
        during = (time.monotonic() - t0) / 25
        still_hanging = len(slow_results)
        for t in hung:
            t.join()
        assert all(r[1] == 250 for r in fast), fast[:3]
        assert still_hanging == 0  # every fast transaction finished while the slow lookups hung
        assert during < baseline * 1.5 + 0.01, (during, baseline)
        assert len(slow_results) == 20
        assert all(r[1] == 250 and dur >= 2.9 for r, dur in slow_results), slow_results[:3]
        # the 20 concurrent sessions asking for slow.example shared one query
        assert sum(1 for n, t in dns.log if n == "slow.example") == 1
        assert sink.wait_count(71)
        assert sum(1 for m in sink.messages if spf_result_of(m)[0] == "pass") == 71
    finally:
        gw.stop()
        dns.stop()


def test_config_errors_are_located(tmp_path):
    import subprocess
    from gwtest import BUILD
    cases = [
        ('[dns]\nnameservers = ["dns.example:53"]\n', "nameservers"),
        ('[dns]\ntimeout = "0s"\n', "timeout"),
        ('[plugins.spf]\non_fail = "bounce"\n', "on_fail"),
        ('[plugins.spf]\nexplain = "x"\n', "explain"),
    ]
    for body, key in cases:
        path = tmp_path / "bad.toml"
        path.write_text('pipeline = ["spf"]\n[[listener]]\naddress = "127.0.0.1:2525"\n'
                        '[upstream]\nservers = ["127.0.0.1:10025"]\n' + body)
        p = subprocess.run([BUILD + "/smtp-gateway", "--check-config", "--config", str(path)],
                           capture_output=True, text=True, timeout=30)
        out = p.stdout + p.stderr
        assert p.returncode == 1, out
        assert str(path) + ":" in out and key in out, out


def test_exit_while_lookups_hang(tmp_path, sink):
    """SIGTERM while sessions wait on DNS: after drain_timeout the process exits 0 (the lookups in
    flight are abandoned, not resumed on contexts that are going away)."""
    import signal
    dns = DnsServer({"hang.example": [("TIMEOUT", None)]}).start()
    gw = spf_gateway(tmp_path, sink, dns, dns_timeout="20s", drain_timeout="1s", threads=2)
    try:
        def hang():
            try:
                transaction(gw.port, "192.0.2.10", "x@hang.example", timeout=10)
            except (EOFError, OSError):
                pass  # the gateway closes the session at the end of the drain

        for i in range(4):
            threading.Thread(target=hang, daemon=True).start()
        time.sleep(1.0)
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(10) == 0, gw.log()[-2000:]
        assert time.monotonic() - t0 < 5
    finally:
        gw.stop()
        dns.stop()


def test_ptr_name_that_is_not_a_host_name_is_ignored(tmp_path, sink):
    dns, gw = start(tmp_path, sink)
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.11", "alice@sender.test")
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        m = sink.messages[0]
        assert m.header("X-Injected") == []
        assert "(unknown [192.0.2.11])" in m.header("Received")[0]
        assert any(n == "11.2.0.192.in-addr.arpa" for n, t in dns.log)  # it was asked
    finally:
        gw.stop()
        dns.stop()
