"""`smtp-gateway dmarc-report` on results the dmarc plugin recorded in the store (embedded LMDB and
Redis), run while the gateway runs: the files, their names, the XML against the schema of RFC 7489
Appendix C (tests/data), the counts, and that a second run writes nothing."""
import gzip
import os
import subprocess
import time

import pytest
from lxml import etree

from dmarctest import BAD_IP, BIN, GOOD_IP, dmarc_gateway, keygen, message, send, signed
from dnsserver import DnsServer
from gwtest import ROOT
from redisserver import RedisServer, redis_available

SPF = "v=spf1 ip4:%s -all" % GOOD_IP
ZONE = {
    "rep.test": [("TXT", SPF)],
    "_dmarc.rep.test": [("TXT", "v=DMARC1; p=reject; rua=mailto:agg@rep.test; adkim=s")],
    "mon.test": [("TXT", SPF)],
    "_dmarc.mon.test": [("TXT", "v=DMARC1; p=none; sp=quarantine; pct=50; rua=mailto:a@x.test,mailto:b@y.test")],
    "norua.test": [("TXT", SPF)], "_dmarc.norua.test": [("TXT", "v=DMARC1; p=reject")],
}
REPORTS = 'reports = true\nreport_org = "Gateway Test Org"\nreport_email = "dmarc@gw.test"\n'
SCHEMA = etree.XMLSchema(etree.parse(os.path.join(ROOT, "tests", "data", "dmarc-aggregate-rfc7489.xsd")))


def run_report(gw, out):
    r = subprocess.run([BIN, "dmarc-report", "--config", gw.config_path, "--out", str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split(" ") for line in r.stdout.splitlines()]


def parse(path):
    with gzip.open(path) as f:
        doc = etree.parse(f)
    SCHEMA.assertValid(doc)
    return doc


def rows(doc):
    """{(source_ip, disposition, dkim, spf, header_from): count}"""
    out = {}
    for rec in doc.findall("record"):
        key = (rec.findtext("row/source_ip"), rec.findtext("row/policy_evaluated/disposition"),
               rec.findtext("row/policy_evaluated/dkim"), rec.findtext("row/policy_evaluated/spf"),
               rec.findtext("identifiers/header_from"))
        out[key] = out.get(key, 0) + int(rec.findtext("row/count"))
    return out


@pytest.fixture(params=["embedded", "redis"])
def backend(request, tmp_path):
    if request.param == "embedded":
        yield {}
        return
    if not redis_available():
        pytest.skip("redis-server not installed")
    r = RedisServer(tmp_path).start()
    yield {"backend": "redis", "redis_url": r.url}
    r.stop()


def test_report_counts_schema_and_forgetting(tmp_path, sink, backend):
    dns = DnsServer(ZONE).start()
    try:
        key, txt = keygen(tmp_path, "rep.test", "s1")
        dns.set("s1._domainkey.rep.test", [("TXT", txt)])
        gw = dmarc_gateway(tmp_path, sink, dns, dmarc=REPORTS, **backend)
        begin = int(time.time())
        for _ in range(3):
            assert send(gw, sink, GOOD_IP, "a@rep.test", message("a@rep.test"))[0] == 250
        for _ in range(2):  # rejected messages are results too
            assert send(gw, sink, BAD_IP, "a@rep.test", message("a@rep.test"))[0] == 550
        body = signed(message("a@rep.test", "signed"), key, "rep.test", "s1")
        assert send(gw, sink, BAD_IP, "x@other.test", body)[0] == 250
        for _ in range(2):
            assert send(gw, sink, BAD_IP, "a@mon.test", message("a@mon.test"))[0] == 250
        assert send(gw, sink, BAD_IP, "a@sub.mon.test", message("a@sub.mon.test"))[0] == 250
        assert send(gw, sink, BAD_IP, "a@norua.test", message("a@norua.test"))[0] == 550
        assert send(gw, sink, "2001:db8::7", "a@rep.test", message("a@rep.test"))[0] == 550  # IPv6 client

        out = tmp_path / "reports"
        lines = run_report(gw, out)  # the gateway is running
        by_domain = {l[0]: l for l in lines}
        assert sorted(by_domain) == ["mon.test", "rep.test", "sub.mon.test"], lines
        assert by_domain["rep.test"][1] == "mailto:agg@rep.test"
        assert by_domain["mon.test"][1] == "mailto:a@x.test,mailto:b@y.test"
        assert sorted(os.listdir(out)) == sorted(os.path.basename(l[2]) for l in lines)

        path = by_domain["rep.test"][2]
        name = os.path.basename(path)
        receiver, domain, b, e = name[:-len(".xml.gz")].split("!")
        assert (receiver, domain) == ("gw.test", "rep.test")
        assert begin - 1 <= int(b) <= int(e) <= int(time.time()) + 1
        doc = parse(path)
        assert doc.findtext("report_metadata/org_name") == "Gateway Test Org"
        assert doc.findtext("report_metadata/email") == "dmarc@gw.test"
        assert (doc.findtext("report_metadata/date_range/begin"), doc.findtext("report_metadata/date_range/end")) == (b, e)
        assert doc.findtext("policy_published/domain") == "rep.test"
        assert doc.findtext("policy_published/p") == "reject" and doc.findtext("policy_published/adkim") == "s"
        assert rows(doc) == {
            (GOOD_IP, "none", "fail", "pass", "rep.test"): 3,
            (BAD_IP, "reject", "fail", "fail", "rep.test"): 2,
            (BAD_IP, "none", "pass", "fail", "rep.test"): 1,
            ("2001:db8::7", "reject", "fail", "fail", "rep.test"): 1,
        }
        signed_rec = [r for r in doc.findall("record") if r.findtext("row/policy_evaluated/dkim") == "pass"][0]
        assert signed_rec.findtext("auth_results/dkim/domain") == "rep.test"
        assert signed_rec.findtext("auth_results/dkim/result") == "pass"
        assert signed_rec.findtext("auth_results/spf/domain") == "other.test"
        assert signed_rec.findtext("auth_results/spf/scope") == "mfrom"
        assert signed_rec.findtext("identifiers/envelope_from") == "other.test"

        doc = parse(by_domain["mon.test"][2])
        assert rows(doc) == {(BAD_IP, "none", "fail", "fail", "mon.test"): 2}
        doc = parse(by_domain["sub.mon.test"][2])
        assert doc.findtext("policy_published/domain") == "mon.test"
        assert doc.findtext("policy_published/sp") == "quarantine" and doc.findtext("policy_published/pct") == "50"
        (count,) = rows(doc).values()
        assert count == 1

        # reported results are forgotten: a second run writes nothing
        assert run_report(gw, out) == []
        assert len(os.listdir(out)) == 3
        # results recorded afterwards go into the next report
        assert send(gw, sink, GOOD_IP, "a@rep.test", message("a@rep.test"))[0] == 250
        lines = run_report(gw, tmp_path / "next")
        assert [l[0] for l in lines] == ["rep.test"]
        assert rows(parse(lines[0][2])) == {(GOOD_IP, "none", "fail", "pass", "rep.test"): 1}
    finally:
        dns.stop()


def test_reports_off_records_nothing(tmp_path, sink):
    dns = DnsServer(ZONE).start()
    try:
        gw = dmarc_gateway(tmp_path, sink, dns)
        assert send(gw, sink, GOOD_IP, "a@rep.test", message("a@rep.test"))[0] == 250
        assert run_report(gw, tmp_path / "out") == []
        assert os.listdir(tmp_path / "out") == []
        r = subprocess.run([BIN, "dmarc-report", "--config", gw.config_path], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "--out" in r.stderr
    finally:
        dns.stop()


@pytest.mark.skipif(not redis_available(), reason="redis-server not installed")
def test_store_down_still_delivers(tmp_path, sink):
    dns = DnsServer(ZONE).start()
    r = RedisServer(tmp_path).start()
    try:
        gw = dmarc_gateway(tmp_path, sink, dns, dmarc=REPORTS, backend="redis", redis_url=r.url)
        assert send(gw, sink, GOOD_IP, "a@rep.test", message("a@rep.test"))[0] == 250
        r.stop()
        code, _, m = send(gw, sink, GOOD_IP, "a@rep.test", message("a@rep.test"))
        assert code == 250 and m is not None  # the record is lost, the message is not
        assert gw.metric("smtpgw_dmarc_record_errors_total") == 1
        assert "dmarc_record" in gw.log()
        out = subprocess.run([BIN, "dmarc-report", "--config", gw.config_path, "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "store" in out.stderr
    finally:
        r.stop()
        dns.stop()
