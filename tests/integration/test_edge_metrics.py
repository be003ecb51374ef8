"""/metrics (Prometheus text format 0.0.4): the counters move with what happens."""
import re
import time

from gwtest import Client, open_session, send_message
from edgetest import gateway_config, start_gateway

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? '
                    r'(-?[0-9.eE+]+|\+Inf|NaN)$')


def snapshot(gw):
    raw = gw.metrics()
    head, _, text = raw.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.") and " 200 " in head.split("\r\n")[0], head
    assert "text/plain" in head, head
    out = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not Prometheus text format: %r" % line
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in typed or base in typed, "sample without # TYPE: %r" % line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(4))
    return out


def delta(a, b, key):
    return b.get(key, 0.0) - a.get(key, 0.0)


def test_counters_move(tmp_path, sink):
    config = gateway_config([{}], pipeline=["test_a"], relay=["example.test"], trusted=[],
                            body='\n[[plugins.test_a.rules]]\nstage = "rcpt"\ncontains = "deny"\nverdict = "reject"\n')
    gw = start_gateway(tmp_path, config, [sink.port], binary="smtp-gateway-test", max_connections=6)
    try:
        m0 = snapshot(gw)
        # every family is there from the start, at 0
        for key in ('smtpgw_auth_total{result="success"}', 'smtpgw_auth_total{result="failure"}',
                    'smtpgw_tls_handshakes_total{result="ok"}', 'smtpgw_tls_handshakes_total{result="failed"}',
                    "smtpgw_connections_open", "smtpgw_upstream_latency_seconds_count"):
            assert key in m0, key
        # delivered
        assert send_message(gw.port)[0] == 250
        # a plugin verdict and a relay denial (5xx replies, the transaction is aborted at QUIT)
        c = open_session(gw.port)
        c.cmd("MAIL FROM:<a@sender.test>")
        assert c.cmd("RCPT TO:<deny@example.test>")[0] == 550
        assert c.cmd("RCPT TO:<x@elsewhere.test>")[0] == 554
        c.cmd("QUIT")
        c.close()
        # rejected and tempfailed by the upstream after the data
        sink.data_reply = lambda msg: "554 5.7.1 no thanks"
        assert send_message(gw.port)[0] == 554
        sink.data_reply = lambda msg: "451 4.3.0 later"
        assert send_message(gw.port)[0] == 451
        sink.data_reply = lambda msg: None
        m1 = snapshot(gw)
        assert delta(m0, m1, 'smtpgw_transactions_total{outcome="delivered"}') == 1
        assert delta(m0, m1, 'smtpgw_transactions_total{outcome="rejected"}') == 1
        assert delta(m0, m1, 'smtpgw_transactions_total{outcome="tempfailed"}') == 1
        assert delta(m0, m1, 'smtpgw_transactions_total{outcome="aborted"}') == 1
        assert delta(m0, m1, 'smtpgw_plugin_verdicts_total{plugin="test_a",verdict="reject"}') == 1
        assert delta(m0, m1, 'smtpgw_replies_total{class="2xx"}') >= 12
        assert delta(m0, m1, 'smtpgw_replies_total{class="3xx"}') == 3
        assert delta(m0, m1, 'smtpgw_replies_total{class="4xx"}') == 1
        assert delta(m0, m1, 'smtpgw_replies_total{class="5xx"}') == 3
        assert delta(m0, m1, "smtpgw_connections_total") >= 4
        assert delta(m0, m1, "smtpgw_upstream_latency_seconds_count") == 3
        assert delta(m0, m1, 'smtpgw_upstream_latency_seconds_bucket{le="+Inf"}') == 3
        assert m1["smtpgw_upstream_latency_seconds_sum"] > 0

        # connections open now, and refused beyond max_connections
        clients = [open_session(gw.port) for _ in range(6)]
        time.sleep(0.1)
        m2 = snapshot(gw)
        assert m2["smtpgw_connections_open"] >= 6
        extra = Client(gw.port)
        code, lines = extra.reply()
        assert code == 421, lines
        extra.close()
        for c in clients:
            c.cmd("QUIT")
            c.close()
        time.sleep(0.2)
        m3 = snapshot(gw)
        assert delta(m0, m3, "smtpgw_connections_refused_total") == 1
        assert m3["smtpgw_connections_open"] == 0
    finally:
        gw.stop()
