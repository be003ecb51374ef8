"""The dmarc plugin through the real binary: policies served by the test DNS server, SPF and DKIM
results from the spf and dkim_verify plugins (DKIM signatures by Perl Mail::DKIM), the reply, the
Authentication-Results part, the quarantine header and the config check."""
import subprocess

import pytest

from dmarctest import BAD_IP, BIN, GOOD_IP, dmarc_gateway, dmarc_part, keygen, message, send, signed
from dnsserver import DnsServer

SPF = "v=spf1 ip4:%s -all" % GOOD_IP
ZONE = {
    "reject.test": [("TXT", SPF)], "_dmarc.reject.test": [("TXT", "v=DMARC1; p=reject")],
    "mail.reject.test": [("TXT", SPF)],
    "quar.test": [("TXT", SPF)], "_dmarc.quar.test": [("TXT", "v=DMARC1; p=quarantine")],
    "none.test": [("TXT", SPF)], "_dmarc.none.test": [("TXT", "v=DMARC1; p=none")],
    "pct0.test": [("TXT", SPF)], "_dmarc.pct0.test": [("TXT", "v=DMARC1; p=reject; pct=0")],
    "pct0q.test": [("TXT", SPF)], "_dmarc.pct0q.test": [("TXT", "v=DMARC1; p=quarantine; pct=0")],
    "pct100.test": [("TXT", SPF)], "_dmarc.pct100.test": [("TXT", "v=DMARC1; p=reject; pct=100")],
    "org.test": [("TXT", SPF)], "_dmarc.org.test": [("TXT", "v=DMARC1; p=none; sp=reject")],
    "sub.org.test": [("TXT", SPF)],
    "own.org.test": [("TXT", SPF)], "_dmarc.own.org.test": [("TXT", "v=DMARC1; p=quarantine; sp=reject")],
    "strict.test": [("TXT", SPF)], "_dmarc.strict.test": [("TXT", "v=DMARC1; p=reject; aspf=s; adkim=s")],
    "mail.strict.test": [("TXT", SPF)],
    "nopolicy.test": [("TXT", SPF)],
    "two.test": [("TXT", SPF)], "_dmarc.two.test": [("TXT", "v=DMARC1; p=reject"), ("TXT", "v=DMARC1; p=none")],
    "badp.test": [("TXT", SPF)], "_dmarc.badp.test": [("TXT", "v=DMARC1; p=bogus")],
    "other.test": [("TXT", "v=DMARC1 is not here; p=reject"), ("TXT", SPF)],
    "_dmarc.other.test": [("TXT", "v=spf1 -all"), ("TXT", "v=DMARC1; p=reject")],
    "slow.test": [("TXT", SPF)], "_dmarc.slow.test": [("TIMEOUT", None)],
}


@pytest.fixture(scope="module")
def dns():
    d = DnsServer(ZONE).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory, dns):
    tmp = tmp_path_factory.mktemp("keys")
    out = {}
    for domain in ("reject.test", "mail.strict.test", "strict.test"):
        key, txt = keygen(tmp, domain, "s1")
        dns.set("s1._domainkey." + domain, [("TXT", txt)])
        out[domain] = key
    return out


def test_pass_by_aligned_spf_and_by_aligned_dkim(tmp_path, sink, dns, keys):
    gw = dmarc_gateway(tmp_path, sink, dns)
    code, _, m = send(gw, sink, GOOD_IP, "a@reject.test", message("A <a@reject.test>"))
    assert code == 250
    assert dmarc_part(m) == "dmarc=pass (p=reject dis=none) header.from=reject.test"
    # relaxed SPF: MAIL FROM a subdomain of the From domain
    code, _, m = send(gw, sink, GOOD_IP, "bounce@mail.reject.test", message("a@reject.test"))
    assert dmarc_part(m) == "dmarc=pass (p=reject dis=none) header.from=reject.test"
    # SPF fails (wrong client) but a DKIM signature with d=reject.test passes
    body = signed(message("a@reject.test", "dkim"), keys["reject.test"], "reject.test", "s1")
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", body)
    assert code == 250
    assert "dkim=pass" in m.header("Authentication-Results")[0]
    assert dmarc_part(m) == "dmarc=pass (p=reject dis=none) header.from=reject.test"
    assert gw.metric('smtpgw_dmarc_results_total{result="pass"}') == 3


def test_fail_reject_quarantine_none(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns)
    code, text, _ = send(gw, sink, BAD_IP, "a@reject.test", message("a@reject.test"))
    assert code == 550 and "5.7.1" in text and "reject.test" in text, text
    # an aligned DKIM signature that does not verify is no pass
    code, text, _ = send(gw, sink, BAD_IP, "a@reject.test",
                         message("a@reject.test", extra="DKIM-Signature: v=1; a=rsa-sha256; d=reject.test; s=s1; "
                                 "h=from; bh=AAAA; b=AAAA\r\n"))
    assert code == 550, text
    code, _, m = send(gw, sink, BAD_IP, "a@quar.test", message("a@quar.test"))
    assert code == 250
    assert dmarc_part(m) == "dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test"
    assert m.header("X-Spam-Flag") == ["YES"]
    code, _, m = send(gw, sink, BAD_IP, "a@none.test", message("a@none.test"))
    assert code == 250
    assert dmarc_part(m) == "dmarc=fail (p=none dis=none) header.from=none.test"
    assert m.header("X-Spam-Flag") == []
    assert gw.metric('smtpgw_dmarc_dispositions_total{disposition="reject"}') == 2


def test_actions_tag_and_downgrades(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns, dmarc='on_reject = "quarantine"\non_quarantine = "tag"\n'
                                                   'quarantine_header = "X-Quarantine: dmarc said so"')
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", message("a@reject.test"))
    assert code == 250
    assert dmarc_part(m) == "dmarc=fail (p=reject dis=quarantine) header.from=reject.test"
    assert m.header("X-Quarantine") == ["dmarc said so"] and m.header("X-Spam-Flag") == []
    code, _, m = send(gw, sink, BAD_IP, "a@quar.test", message("a@quar.test"))
    assert dmarc_part(m) == "dmarc=fail (p=quarantine dis=none) header.from=quar.test"
    assert m.header("X-Quarantine") == []
    gw.stop()
    gw = dmarc_gateway(tmp_path, sink, dns, dmarc='on_reject = "tag"')
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", message("a@reject.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=fail (p=reject dis=none) header.from=reject.test"


def test_pct_downgrades(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns)
    for _ in range(5):  # pct=0 never applies the policy: reject -> quarantine, quarantine -> none
        code, _, m = send(gw, sink, BAD_IP, "a@pct0.test", message("a@pct0.test"))
        assert code == 250
        assert dmarc_part(m) == "dmarc=fail (p=reject dis=quarantine) header.from=pct0.test"
        assert m.header("X-Spam-Flag") == ["YES"]
        code, _, m = send(gw, sink, BAD_IP, "a@pct0q.test", message("a@pct0q.test"))
        assert dmarc_part(m) == "dmarc=fail (p=quarantine dis=none) header.from=pct0q.test"
        code, text, _ = send(gw, sink, BAD_IP, "a@pct100.test", message("a@pct100.test"))
        assert code == 550 and "pct100.test" in text


def test_subdomain_policy_from_the_organizational_domain(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns)
    # no _dmarc.sub.org.test: org.test's record, and its sp= applies
    code, text, _ = send(gw, sink, BAD_IP, "a@sub.org.test", message("a@sub.org.test"))
    assert code == 550 and "sub.org.test" in text, text
    q = [n for n, t in dns.log if n.startswith("_dmarc.") and n.endswith("org.test")]
    assert "_dmarc.sub.org.test" in q and "_dmarc.org.test" in q
    code, _, m = send(gw, sink, BAD_IP, "a@org.test", message("a@org.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=fail (p=none dis=none) header.from=org.test"
    # a subdomain with its own record: its p= applies, not sp=
    code, _, m = send(gw, sink, BAD_IP, "a@own.org.test", message("a@own.org.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=fail (p=quarantine dis=quarantine) header.from=own.org.test"
    # relaxed alignment across the organization: MAIL FROM org.test, From sub.org.test
    code, _, m = send(gw, sink, GOOD_IP, "b@org.test", message("a@sub.org.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=pass (p=reject dis=none) header.from=sub.org.test"


def test_strict_alignment(tmp_path, sink, dns, keys):
    gw = dmarc_gateway(tmp_path, sink, dns)
    # SPF passes for mail.strict.test: aligned in relaxed mode only
    code, text, _ = send(gw, sink, GOOD_IP, "b@mail.strict.test", message("a@strict.test"))
    assert code == 550, text
    body = signed(message("a@strict.test", "sub-signed"), keys["mail.strict.test"], "mail.strict.test", "s1")
    code, text, _ = send(gw, sink, BAD_IP, "b@other.test", body)
    assert code == 550, text
    body = signed(message("a@strict.test", "exact"), keys["strict.test"], "strict.test", "s1")
    code, _, m = send(gw, sink, BAD_IP, "b@other.test", body)
    assert code == 250 and dmarc_part(m) == "dmarc=pass (p=reject dis=none) header.from=strict.test"
    code, _, m = send(gw, sink, GOOD_IP, "b@strict.test", message("a@strict.test"))
    assert code == 250 and dmarc_part(m).startswith("dmarc=pass")


def test_no_policy(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns)
    for domain in ("nopolicy.test", "two.test", "badp.test"):
        code, _, m = send(gw, sink, BAD_IP, "a@" + domain, message("a@" + domain))
        assert code == 250
        assert dmarc_part(m) == "dmarc=none (p=none dis=none) header.from=" + domain
    # TXT records that are not DMARC records are skipped
    code, text, _ = send(gw, sink, BAD_IP, "a@other.test", message("a@other.test"))
    assert code == 550, text


def test_temperror_tag_and_tempfail(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns, dns_timeout="1s")
    code, _, m = send(gw, sink, BAD_IP, "a@slow.test", message("a@slow.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=temperror (p=none dis=none) header.from=slow.test"
    gw.stop()
    gw = dmarc_gateway(tmp_path, sink, dns, dns_timeout="1s", dmarc='on_temperror = "tempfail"')
    code, text, _ = send(gw, sink, BAD_IP, "a@slow.test", message("a@slow.test"))
    assert code == 451 and "4.7.1" in text and "slow.test" in text, text


def test_from_field_problems_are_permerror(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns)
    two = "From: a@reject.test\r\nFrom: b@none.test\r\nTo: bob@example.test\r\nSubject: two\r\n\r\nx\r\n"
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", two)
    assert code == 250 and dmarc_part(m) == "dmarc=permerror (p=none dis=none)"
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", message("a@reject.test, b@none.test"))
    assert code == 250 and dmarc_part(m) == "dmarc=permerror (p=none dis=none)"
    code, _, m = send(gw, sink, BAD_IP, "a@reject.test", "To: bob@example.test\r\nSubject: none\r\n\r\nx\r\n")
    assert code == 250 and dmarc_part(m) == "dmarc=permerror (p=none dis=none)"
    # several addresses of one domain, display names, comments and groups are one From domain
    code, text, _ = send(gw, sink, BAD_IP, "a@reject.test",
                         message('"Doe, J (x@none.test)" <j@Reject.Test.> (c@none.test), b@reject.test'))
    assert code == 550 and "reject.test" in text, text
    code, text, _ = send(gw, sink, BAD_IP, "a@reject.test", message("team: a@reject.test, b@reject.test;"))
    assert code == 550, text


def test_trusted_client_gets_no_query(tmp_path, sink, dns):
    gw = dmarc_gateway(tmp_path, sink, dns, trusted=["192.0.2.200/32"])
    before = len([n for n, _ in dns.log if n == "_dmarc.pct100.test"])
    code, _, m = send(gw, sink, "192.0.2.200", "a@pct100.test", message("a@pct100.test"))
    assert code == 250
    assert not m.header("Authentication-Results") or dmarc_part(m) is None
    assert len([n for n, _ in dns.log if n == "_dmarc.pct100.test"]) == before
    code, _, _ = send(gw, sink, BAD_IP, "a@pct100.test", message("a@pct100.test"))
    assert code == 550


@pytest.mark.parametrize("pipeline", [["dkim_verify", "dmarc"], ["spf", "dmarc", "dkim_verify"], ["dmarc", "spf", "dkim_verify"]])
def test_check_config_needs_spf_and_dkim_verify_before(tmp_path, sink, dns, pipeline):
    gw = dmarc_gateway(tmp_path, sink, dns, pipeline=pipeline, start=False)
    r = subprocess.run([BIN, "--check-config", "--config", gw.config_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith(gw.config_path + ":1:"), r.stderr  # line 1: the pipeline key
    assert "dmarc" in r.stderr and ("spf" in r.stderr or "dkim_verify" in r.stderr)
    good = dmarc_gateway(tmp_path, sink, dns, start=False)
    r = subprocess.run([BIN, "--check-config", "--config", good.config_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_check_config_public_suffix_list_and_quarantine_header(tmp_path, sink, dns):
    for body, key in (('public_suffix_list = "%s"' % (tmp_path / "missing.dat"), "public_suffix_list"),
                      ('quarantine_header = "no colon here"', "quarantine_header"),
                      ('on_reject = "drop"', "on_reject"), ('bogus = 1', "bogus")):
        gw = dmarc_gateway(tmp_path, sink, dns, dmarc=body, start=False)
        r = subprocess.run([BIN, "--check-config", "--config", gw.config_path], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1, body
        line = [i for i, l in enumerate(open(gw.config_path).read().splitlines(), 1) if l.startswith(body[:8])][0]
        assert r.stderr.startswith("%s:%d:" % (gw.config_path, line)), (body, r.stderr)
        assert key in r.stderr
