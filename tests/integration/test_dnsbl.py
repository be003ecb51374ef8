"""The dnsbl plugin through the real binary, against the test DNS server: list hits and the reply,
codes (single and ranges), list error answers, weights and the threshold, allow lists, IPv6 nibble
names, refusal at RCPT or at connect, sender-domain lists, tx.dnsbl and the per-zone metrics."""
import os
import subprocess

import pytest

from dnsbltest import client_name, connect, dnsbl_gateway, queried, transaction
from dnsserver import DnsServer
from gwtest import BUILD


def listed(ip, zone, *codes):
    return {client_name(ip, zone): [("A", c) for c in (codes or ("127.0.0.2",))]}


@pytest.fixture
def dns():
    d = DnsServer().start()
    yield d
    d.stop()


def serve(dns, *zones):
    for z in zones:
        for name, records in z.items():
            dns.set(name, records)


def test_hit_refuses_every_rcpt_and_nothing_is_forwarded(tmp_path, sink, dns):
    serve(dns, listed("192.0.2.10", "bl.test"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\n[[plugins.dnsbl.lists]]\nzone = "bl.test"\n')
    try:
        c, code, _, _ = connect(gw.port, "192.0.2.10")
        assert code == 220  # reject_at = "rcpt" (default): the greeting is not held
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<alice@sender.test>")[0] == 250
        for rcpt in ("bob@example.test", "carol@example.test"):
            code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
            assert code == 554, lines
            assert lines[0] == "554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl.test", lines
        assert c.cmd("DATA")[0] in (503, 554)
        assert c.cmd("QUIT")[0] == 221
        c.close()
        # a refused recipient never reaches the upstream
        assert not [x for x in sink.commands if x.upper().startswith("RCPT")], sink.commands

        assert transaction(gw.port, "192.0.2.11")[:2] == ("done", 250)  # not listed
        assert sink.wait_count(1)
        assert [x for x in sink.commands if x.upper().startswith("RCPT")] == ["RCPT TO:<bob@example.test>"]
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="bl.test"}') == 1
        assert gw.metric('smtpgw_plugin_verdicts_total{plugin="dnsbl",verdict="reject"}') == 2
        # the client comes back: refused again, from the resolver's cache (no second query)
        assert transaction(gw.port, "192.0.2.10")[:2] == ("rcpt", 554)
        assert queried(dns, "bl.test").count(client_name("192.0.2.10", "bl.test")) == 1
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="bl.test"}') == 2
        log = gw.log()
        assert "dnsbl_hit" in log and "code=127.0.0.2" in log and "dnsbl_refused" in log
    finally:
        gw.stop()


def test_codes_single_and_ranges(tmp_path, sink, dns):
    answers = {"192.0.2.20": ["127.0.0.2"], "192.0.2.21": ["127.0.0.3"], "192.0.2.22": ["127.0.0.5"],
               "192.0.2.23": ["127.0.0.8"], "192.0.2.24": ["127.0.0.3", "127.0.0.7"], "192.0.2.25": ["127.0.0.4"]}
    for ip, codes in answers.items():
        serve(dns, listed(ip, "codes.test", *codes))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\n[[plugins.dnsbl.lists]]\nzone = "codes.test"\n'
                       'codes = ["127.0.0.2", "127.0.0.4-127.0.0.7"]\n')
    try:
        got = {ip: transaction(gw.port, ip)[1] for ip in answers}
        assert got == {"192.0.2.20": 554, "192.0.2.21": 250, "192.0.2.22": 554, "192.0.2.23": 250,
                       "192.0.2.24": 554, "192.0.2.25": 554}, got
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="codes.test"}') == 4
    finally:
        gw.stop()


def test_error_answers_and_answers_outside_127_never_count(tmp_path, sink, dns):
    serve(dns, listed("192.0.2.30", "any.test", "127.255.255.254"),
          listed("192.0.2.30", "named.test", "127.255.255.252"),
          listed("192.0.2.31", "any.test", "10.0.0.2"),
          listed("192.0.2.31", "named.test", "192.0.2.1"),
          listed("192.0.2.32", "named.test", "127.255.255.255", "127.0.0.2"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\n[[plugins.dnsbl.lists]]\nzone = "any.test"\n'
                       '[[plugins.dnsbl.lists]]\nzone = "named.test"\n'
                       'codes = ["127.255.255.0-127.255.255.255", "127.0.0.2"]\n')
    try:
        assert transaction(gw.port, "192.0.2.30")[:2] == ("done", 250)
        assert transaction(gw.port, "192.0.2.31")[:2] == ("done", 250)
        # an error answer next to a real one: the real one counts
        stage, code, lines = transaction(gw.port, "192.0.2.32")
        assert (stage, code) == ("rcpt", 554) and "blocked using named.test" in lines[0], lines
        assert gw.metric('smtpgw_dnsbl_list_error_answers_total{zone="any.test"}') == 1
        assert gw.metric('smtpgw_dnsbl_list_error_answers_total{zone="named.test"}') == 1
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="any.test"}') == 0
        assert "dnsbl_list_error" in gw.log()
    finally:
        gw.stop()


LISTS3 = """[plugins.dnsbl]
threshold = 3
[[plugins.dnsbl.lists]]
zone = "one.test"
weight = 1
[[plugins.dnsbl.lists]]
zone = "two.test"
weight = 2
[[plugins.dnsbl.lists]]
zone = "other.test"
weight = 1
"""


def test_weights_and_threshold(tmp_path, sink, dns):
    # .40: one.test (twice: a list counts once) + other.test = 2 < 3; .41: one.test + two.test = 3
    serve(dns, listed("192.0.2.40", "one.test", "127.0.0.2", "127.0.0.3"), listed("192.0.2.40", "other.test"),
          listed("192.0.2.41", "one.test"), listed("192.0.2.41", "two.test", "127.0.0.9"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address, LISTS3, binary="smtp-gateway-test",
                       pipeline=("dnsbl", "test_facts"))
    try:
        assert transaction(gw.port, "192.0.2.40")[:2] == ("done", 250)
        assert sink.wait_count(1)
        assert sink.messages[0].header("X-Test-Dnsbl-Fact") == ["2 one.test=1=127.0.0.2 other.test=1=127.0.0.2"]
        stage, code, lines = transaction(gw.port, "192.0.2.41")
        assert (stage, code) == ("rcpt", 554), lines
        # the list with the largest weight that hit names the reply
        assert lines[0] == "554 5.7.1 Service unavailable; client [192.0.2.41] blocked using two.test", lines
        assert transaction(gw.port, "192.0.2.42")[:2] == ("done", 250)
        assert sink.wait_count(2)
        assert sink.messages[1].header("X-Test-Dnsbl-Fact") == ["0"]
    finally:
        gw.stop()


def test_allow_list_with_negative_weight_cancels_a_hit(tmp_path, sink, dns):
    serve(dns, listed("192.0.2.50", "bl.test"), listed("192.0.2.50", "wl.test", "127.0.10.0"),
          listed("192.0.2.51", "bl.test"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\n[[plugins.dnsbl.lists]]\nzone = "bl.test"\n'
                       '[[plugins.dnsbl.lists]]\nzone = "wl.test"\nweight = -5\n', binary="smtp-gateway-test",
                       pipeline=("dnsbl", "test_facts"))
    try:
        assert transaction(gw.port, "192.0.2.50")[:2] == ("done", 250)
        assert sink.wait_count(1)
        assert sink.messages[0].header("X-Test-Dnsbl-Fact") == ["-4 bl.test=1=127.0.0.2 wl.test=-5=127.0.10.0"]
        assert transaction(gw.port, "192.0.2.51")[:2] == ("rcpt", 554)  # on the block list only
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="wl.test"}') == 1
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="bl.test"}') == 2
    finally:
        gw.stop()


def test_ipv6_nibble_names_and_ipv6_false(tmp_path, sink, dns):
    ip = "2001:db8:1:2:3:4:567:89ab"
    name = client_name(ip, "bl6.test")
    assert name == "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl6.test"  # RFC 5782 §2.4
    serve(dns, listed(ip, "bl6.test"), listed(ip, "v4only.test"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\n[[plugins.dnsbl.lists]]\nzone = "bl6.test"\n'
                       '[[plugins.dnsbl.lists]]\nzone = "v4only.test"\nweight = 5\nipv6 = false\n')
    try:
        stage, code, lines = transaction(gw.port, ip)
        assert (stage, code) == ("rcpt", 554), lines
        assert lines[0] == "554 5.7.1 Service unavailable; client [%s] blocked using bl6.test" % ip, lines
        assert queried(dns, "bl6.test") == [name]
        assert queried(dns, "v4only.test") == []  # ipv6 = false: IPv6 clients are not looked up there
        assert transaction(gw.port, "2001:db8:1:2:3:4:567:89ac")[:2] == ("done", 250)
    finally:
        gw.stop()


def test_reject_at_connect(tmp_path, sink, dns):
    serve(dns, listed("192.0.2.60", "bl.test"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address,
                       '[plugins.dnsbl]\nreject_at = "connect"\n[[plugins.dnsbl.lists]]\nzone = "bl.test"\n')
    try:
        c, code, lines, _ = connect(gw.port, "192.0.2.60")
        assert code == 554, lines
        assert lines[0] == "554 5.7.1 Service unavailable; client [192.0.2.60] blocked using bl.test", lines
        # RFC 5321 §3.1: after a 554 greeting, every command but QUIT gets 503
        for cmd in ("EHLO client.test", "HELO client.test", "MAIL FROM:<alice@sender.test>", "RCPT TO:<bob@example.test>",
                    "NOOP"):
            code, lines = c.cmd(cmd)
            assert code == 503, (cmd, lines)
        assert c.cmd("QUIT")[0] == 221
        assert c.closed()
        c.close()
        assert sink.connections == 0 and sink.commands == []
        assert transaction(gw.port, "192.0.2.61")[:2] == ("done", 250)
        assert gw.metric('smtpgw_plugin_verdicts_total{plugin="dnsbl",verdict="reject"}') == 1
        assert "stage=connect" in gw.log()
    finally:
        gw.stop()


DOMAIN_LISTS = """[plugins.dnsbl]
threshold = 2
reject_at = "connect"
[[plugins.dnsbl.lists]]
zone = "bl.test"
[[plugins.dnsbl.domain_lists]]
zone = "dbl.test"
weight = 2
[[plugins.dnsbl.domain_lists]]
zone = "half.test"
codes = ["127.0.1.2"]
"""


def test_domain_lists_at_mail_refused_at_rcpt(tmp_path, sink, dns):
    serve(dns, {"spam.example.dbl.test": [("A", "127.0.1.2")], "grey.example.half.test": [("A", "127.0.1.2")]},
          listed("192.0.2.71", "bl.test"))
    gw = dnsbl_gateway(tmp_path, sink, dns.address, DOMAIN_LISTS)
    try:
        # domain lists refuse at RCPT, also with reject_at = "connect"
        c, code, _, _ = connect(gw.port, "192.0.2.70")
        assert code == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<Alice@Spam.Example>")[0] == 250
        code, lines = c.cmd("RCPT TO:<bob@example.test>")
        assert lines[0] == "554 5.7.1 Sender domain spam.example blocked using dbl.test", lines
        # the next transaction of the same session has its own sender domain
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("MAIL FROM:<alice@sender.test>")[0] == 250
        assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
        c.cmd("QUIT")
        c.close()
        assert "spam.example.dbl.test" in queried(dns, "dbl.test")
        # a domain hit (1) adds to a client hit (1): together they reach the threshold (2)
        assert transaction(gw.port, "192.0.2.70", sender="x@grey.example")[:2] == ("done", 250)
        stage, code, lines = transaction(gw.port, "192.0.2.71", sender="x@grey.example")
        assert (stage, code) == ("rcpt", 554) and "client [192.0.2.71] blocked using bl.test" in lines[0], lines
        # the null sender has no domain: no domain list query
        before = len(queried(dns, "dbl.test"))
        assert transaction(gw.port, "192.0.2.70", sender="")[:2] == ("done", 250)
        assert len(queried(dns, "dbl.test")) == before
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="dbl.test"}') == 1
        assert gw.metric('smtpgw_dnsbl_hits_total{zone="half.test"}') == 2
    finally:
        gw.stop()


def test_bad_config_is_refused(tmp_path):
    cases = [('[[plugins.dnsbl.lists]]\nzone = "bl.test"\ncodes = ["10.0.0.2"]\n', "127.0.0.0/8"),
             ('[[plugins.dnsbl.lists]]\nzone = "bl.test"\ncodes = ["127.0.0.7-127.0.0.4"]\n', "ends before"),
             ('[[plugins.dnsbl.lists]]\nweight = 1\n', "zone"),
             ('[[plugins.dnsbl.lists]]\nzone = "bad zone"\n', "zone"),
             ('[[plugins.dnsbl.domain_lists]]\nzone = "d.test"\nipv6 = true\n', "ipv6"),
             ('reject_at = "data"\n', "reject_at"),
             ('on_error = "reject"\n', "on_error"),
             ('threshold = 0\n', "threshold"),
             ('treshold = 2\n', "treshold")]
    for i, (body, word) in enumerate(cases):
        path = tmp_path / ("c%d.toml" % i)
        path.write_text('pipeline = ["dnsbl"]\n[[listener]]\naddress = "127.0.0.1:2525"\n'
                        '[upstream]\nservers = ["127.0.0.1:10025"]\n[plugins.dnsbl]\n' + body)
        r = subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", str(path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, body
        assert str(path) in r.stderr and word in r.stderr, (body, r.stderr)


def test_accept_by_an_earlier_plugin_at_mail_drops_the_previous_sender_domain(tmp_path, sink, dns):
    serve(dns, {"spam.example.dbl.test": [("A", "127.0.1.2")]})
    script = tmp_path / "vip.lua"
    script.write_text('function on_mail_from(tx, addr)\n  if addr == "vip@good.example" then return gateway.accept() end\nend\n')
    body = ('[plugins.lua]\nscripts = ["%s"]\n[plugins.dnsbl]\n[[plugins.dnsbl.domain_lists]]\nzone = "dbl.test"\n'
            % script)
    gw = dnsbl_gateway(tmp_path, sink, dns.address, body, pipeline=("lua", "dnsbl"))
    try:
        c, code, _, _ = connect(gw.port, "192.0.2.75")
        assert code == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<x@spam.example>")[0] == 250
        assert c.cmd("RCPT TO:<bob@example.test>")[0] == 554
        assert c.cmd("RSET")[0] == 250
        # lua accepts this MAIL, so dnsbl never hears of it: spam.example must not refuse its RCPT
        assert c.cmd("MAIL FROM:<vip@good.example>")[0] == 250
        code, lines = c.cmd("RCPT TO:<bob@example.test>")
        assert code == 250, lines
        c.cmd("QUIT")
        c.close()
    finally:
        gw.stop()
