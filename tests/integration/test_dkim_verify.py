"""dkim_verify through the real binary: messages signed by independent implementations (Perl
Mail::DKIM for rsa-sha256, Python dkimpy for ed25519-sha256 and rsa-sha1), keys served by a real DNS
server on loopback through the gateway's resolver ([dns] nameservers). The client is untrusted
([trusted] networks = []) so its mail counts as inbound."""
import os
import re
import subprocess

import pytest

from dkimtools import dkimpy_sign, ed25519_seed_b64, mail_dkim_sign, mail_dkim_verify
from dnsserver import DnsServer
from gwtest import BUILD, ROOT, send_message

BIN = os.path.join(BUILD, "smtp-gateway")

MSG = (b"From: Joe <joe@sender.test>\r\nTo: bob@example.test\r\nSubject: verify me\r\n"
       b"Date: Wed, 25 Nov 2026 22:00:00 +0000\r\nMessage-ID: <v1@sender.test>\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
       b"Hello Bob,\r\n  indented line with  spaces \r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")

RFC8463_DNS = {
    "brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "test._domainkey.football.example.com": (
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
        "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+"
        "2kryOTIKT+l/K4w3QIDAQAB"),
}


def keygen(tmp_path, selector, algorithm="rsa-sha256"):
    r = subprocess.run([BIN, "dkim-keygen", "--domain", "sender.test", "--selector", selector, "--algorithm",
                        algorithm, "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return str(tmp_path / ("sender.test.%s.key" % selector)), "".join(re.findall(r'"([^"]*)"', r.stdout))


@pytest.fixture
def dns(tmp_path):
    d = DnsServer({name: [("TXT", txt)] for name, txt in RFC8463_DNS.items()}).start()
    rsa, rsa_txt = keygen(tmp_path, "m1")
    ed, ed_txt = keygen(tmp_path, "e1", "ed25519-sha256")
    d.set("m1._domainkey.sender.test", [("TXT", rsa_txt)])
    d.set("e1._domainkey.sender.test", [("TXT", ed_txt)])
    d.set("slow._domainkey.sender.test", [("TIMEOUT", "")])
    d.rsa_key, d.ed_key = rsa, ed
    yield d
    d.stop()


def verify_gateway(gateway_factory, sink, dns, on_fail="tag", pipeline=("dkim_verify",)):
    cfg = ('\n[dns]\nnameservers = ["%s"]\ntimeout = "2s"\n\n[trusted]\nnetworks = []\n\n'
           '[plugins.dkim_verify]\non_fail = "%s"\n' % (dns.address, on_fail))
    return gateway_factory(cfg, upstream_ports=[sink.port], pipeline=list(pipeline))


def through(gw, sink, body):
    n = sink.count()
    code, lines = send_message(gw.port, sender="joe@sender.test", rcpts=["bob@example.test"], body=body)
    if code != 250:
        return code, None
    assert sink.wait_count(n + 1)
    ar = sink.messages[-1].header("Authentication-Results")
    assert len(ar) == 1, ar
    assert ar[0].startswith("gw.test;")
    return code, ar[0]


def dkim_parts(ar):
    """[(result, {prop: value})] for each dkim= part of an Authentication-Results value."""
    out = []
    for part in ar.split(";")[1:]:
        part = " ".join(part.split())
        m = re.match(r"dkim=(\w+)", part)
        if not m:
            continue
        props = dict((k, v.strip('"')) for k, v in re.findall(r'(header\.\w+)=("[^"]*"|\S+)', part))
        out.append((m.group(1), props))
    return out


@pytest.mark.parametrize("method", ["simple", "relaxed", "relaxed/simple"])
def test_mail_dkim_rsa_signatures_pass(method, gateway_factory, sink, dns):
    gw = verify_gateway(gateway_factory, sink, dns)
    signed = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "m1", method)
    assert signed.startswith(b"DKIM-Signature:")
    code, ar = through(gw, sink, signed)
    assert code == 250
    parts = dkim_parts(ar)
    assert len(parts) == 1, ar
    result, props = parts[0]
    assert result == "pass", ar
    assert props["header.d"] == "sender.test" and props["header.s"] == "m1"
    b = re.search(rb"b=([^;]*)$", signed.split(b"\r\nFrom:")[0]).group(1)
    assert props["header.b"] == re.sub(rb"\s", b"", b)[:8].decode()
    assert gw.metric('smtpgw_dkim_verify_results_total{result="pass"}') == 1


def test_ed25519_and_rfc8463_example_pass(gateway_factory, sink, dns):
    gw = verify_gateway(gateway_factory, sink, dns)
    signed = dkimpy_sign(MSG, "sender.test", "e1", ed25519_seed_b64(dns.ed_key), b"ed25519-sha256")
    code, ar = through(gw, sink, signed)
    assert code == 250
    assert [(r, p["header.a"]) for r, p in dkim_parts(ar)] == [("pass", "ed25519-sha256")], ar
    example = open(os.path.join(ROOT, "tests", "data", "rfc8463-a3.eml"), "rb").read().replace(b"\n", b"\r\n")
    code, ar = through(gw, sink, example)
    assert code == 250
    parts = dkim_parts(ar)
    assert [(r, p["header.s"], p["header.a"]) for r, p in parts] == [
        ("pass", "brisbane", "ed25519-sha256"), ("pass", "test", "rsa-sha256")], ar


def test_tampered_missing_key_and_dns_failure_never_pass(gateway_factory, sink, dns):
    gw = verify_gateway(gateway_factory, sink, dns)
    signed = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "m1", "relaxed")
    body = signed.replace(b"Hello Bob", b"Hello Rob")
    code, ar = through(gw, sink, body)
    assert [r for r, _ in dkim_parts(ar)] == ["fail"], ar
    head = signed.replace(b"Subject: verify me", b"Subject: verify you")
    code, ar = through(gw, sink, head)
    assert [r for r, _ in dkim_parts(ar)] == ["fail"], ar
    # no key published for the selector
    nokey = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "gone", "relaxed")
    code, ar = through(gw, sink, nokey)
    assert [r for r, _ in dkim_parts(ar)] == ["permerror"], ar
    # the key's DNS server never answers: temperror (within dns.timeout)
    slow = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "slow", "relaxed")
    code, ar = through(gw, sink, slow)
    assert [r for r, _ in dkim_parts(ar)] == ["temperror"], ar
    # unsigned mail
    code, ar = through(gw, sink, MSG)
    assert "dkim=none" in ar


def test_rsa_sha1_is_never_a_pass(gateway_factory, sink, dns):
    gw = verify_gateway(gateway_factory, sink, dns)
    pem = open(dns.rsa_key, "rb").read()
    signed = dkimpy_sign(MSG, "sender.test", "m1", pem, b"rsa-sha1")
    assert b"a=rsa-sha1" in signed
    code, ar = through(gw, sink, signed)
    parts = dkim_parts(ar)
    assert len(parts) == 1 and parts[0][0] == "policy", ar


def test_on_fail_actions(gateway_factory, sink, dns):
    signed = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "m1", "relaxed")
    tampered = signed.replace(b"Hello Bob", b"Hello Rob")
    gw = verify_gateway(gateway_factory, sink, dns, on_fail="reject")
    code, _ = through(gw, sink, tampered)
    assert code == 550
    code, ar = through(gw, sink, signed)  # a good one still passes
    assert code == 250 and "dkim=pass" in ar
    # one good signature beside a bad one is enough: no action
    other = mail_dkim_sign(MSG.replace(b"Hello Bob", b"Hello Rob"), dns.rsa_key, "sender.test", "m1", "relaxed")
    bad_sig = other.split(b"\r\nFrom:")[0] + b"\r\n"
    assert bad_sig.startswith(b"DKIM-Signature:") and b"From:" not in bad_sig
    code, ar = through(gw, sink, bad_sig + signed)
    assert code == 250, ar
    assert sorted(r for r, _ in dkim_parts(ar)) == ["fail", "pass"], ar
    gw2 = verify_gateway(gateway_factory, sink, dns, on_fail="tempfail")
    code, _ = through(gw2, sink, tampered)
    assert code == 451


def test_one_authentication_results_header_with_spf_and_dkim(gateway_factory, sink, dns):
    dns.set("sender.test", [("TXT", "v=spf1 ip4:127.0.0.1 -all")])
    gw = verify_gateway(gateway_factory, sink, dns, pipeline=("spf", "dkim_verify"))
    signed = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "m1", "relaxed")
    # a forged A-R with our authserv-id is dropped, the gateway's own is the only one
    forged = b"Authentication-Results: gw.test; dkim=pass header.d=evil.test\r\n" + signed
    code, ar = through(gw, sink, forged)
    assert code == 250
    assert "spf=pass" in ar and "evil.test" not in ar, ar
    assert [(r, p["header.d"]) for r, p in dkim_parts(ar)] == [("pass", "sender.test")], ar
    # the forged field above the signature is not signed, so removing it keeps the signature valid
    # and the message the upstream got still verifies independently
    assert [r[0] for r in mail_dkim_verify(sink.messages[-1].data, dns.port)] == ["pass"]


def test_results_reach_lua(tmp_path, gateway_factory, sink, dns):
    script = tmp_path / "dkim.lua"
    script.write_text(
        'function on_data(tx, msg)\n'
        '  local out = {}\n'
        '  for i, d in ipairs(tx.dkim) do out[#out + 1] = d.domain .. "/" .. d.selector .. "=" .. d.result end\n'
        '  tx:add_header("X-Dkim-Seen", table.concat(out, ","))\n'
        '  if #tx.dkim > 0 and tx.dkim[1].result == "fail" then\n'
        '    return gateway.reject(550, "5.7.1", "lua says no")\n'
        '  end\n'
        'end\n')
    cfg = ('\n[dns]\nnameservers = ["%s"]\ntimeout = "2s"\n\n[trusted]\nnetworks = []\n\n'
           '[plugins.lua]\nscripts = ["%s"]\n' % (dns.address, script))
    gw = gateway_factory(cfg, upstream_ports=[sink.port], pipeline=["dkim_verify", "lua"])
    signed = mail_dkim_sign(MSG, dns.rsa_key, "sender.test", "m1", "relaxed")
    code, ar = through(gw, sink, signed)
    assert code == 250
    assert sink.messages[-1].header("X-Dkim-Seen") == ["sender.test/m1=pass"]
    code, _ = through(gw, sink, signed.replace(b"Hello Bob", b"Hello Rob"))
    assert code == 550
