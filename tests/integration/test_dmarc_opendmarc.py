"""DMARC results of the gateway against OpenDMARC's own library on a table of scenarios.

Each scenario goes through the real binary (spf, dkim_verify and dmarc plugins, the test DNS server,
messages signed by Perl Mail::DKIM). The SPF and DKIM results the gateway wrote into
Authentication-Results are then handed to libopendmarc (tests/integration/lib/opendmarc_check.c, built
here with the system compiler), which discovers the policy itself from the same records (its DNS
answered by opendmarc_dns_fake_record), finds organizational domains with its own public suffix
loader and evaluates with opendmarc_get_policy_to_enforce(). The table is printed (pytest -s).

Compared: the result (pass / fail / none) and the policy that applies (p= or sp=). pct is not part of
the comparison (libopendmarc leaves pct to its caller); the gateway's disposition is printed.
Every row must agree and match what RFC 7489 asks; a known difference would be listed in KNOWN with
its reason (none on this table)."""
import os
import re
import shutil
import subprocess

import pytest

from dmarctest import BAD_IP, GOOD_IP, dmarc_gateway, keygen, message, signed
from dnsserver import DnsServer
from spftest import transaction

HERE = os.path.dirname(os.path.abspath(__file__))
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"
SPF = "v=spf1 ip4:%s -all" % GOOD_IP

DMARC = {
    "example.com": "v=DMARC1; p=reject",
    "quar.example.net": "v=DMARC1; p=quarantine; sp=none",
    "example.org": "v=DMARC1; p=none; sp=reject",
    "own.example.org": "v=DMARC1; p=quarantine",
    "strict.example.com": "v=DMARC1; p=reject; aspf=s; adkim=s",
    "example.co.uk": "v=DMARC1; p=quarantine; sp=reject",
    "shop.github.io": "v=DMARC1; p=reject",
    "bad.example.com": "v=DMARC1; p=bogus",
    "nop.example.com": "v=DMARC1; rua=mailto:agg@example.com",
    "pct.example.com": "v=DMARC1; p=reject; pct=0",
    "ten.example.com": "v=DMARC1; p=quarantine; pct=100; fo=1",
    "sspf.example.com": "v=DMARC1; p=reject; aspf=s",
    "sdkim.example.com": "v=DMARC1; p=reject; adkim=s",
}
SPF_DOMAINS = ["example.com", "mail.example.com", "other.example.net", "quar.example.net", "example.org",
               "sub.example.org", "own.example.org", "strict.example.com", "mail.strict.example.com",
               "example.co.uk", "x.example.co.uk", "shop.github.io", "other.github.io", "nopolicy.example.net",
               "bad.example.com", "nop.example.com", "pct.example.com", "ten.example.com",
               "sspf.example.com", "mail.sspf.example.com", "sdkim.example.com"]
SIGNERS = ["example.com", "other.example.net", "sub.example.org", "mail.strict.example.com", "strict.example.com",
           "mail.sdkim.example.com"]

# (label, From domain, MAIL FROM ("" = null sender), client, HELO, DKIM signer or None, RFC 7489 result, policy)
SCENARIOS = [
    ("spf pass, same domain", "example.com", "a@example.com", GOOD_IP, None, None, "pass", "reject"),
    ("spf fail", "example.com", "a@example.com", BAD_IP, None, None, "fail", "reject"),
    ("spf pass, relaxed subdomain", "example.com", "b@mail.example.com", GOOD_IP, None, None, "pass", "reject"),
    ("spf pass, other domain", "example.com", "b@other.example.net", GOOD_IP, None, None, "fail", "reject"),
    ("dkim pass, aligned", "example.com", "b@other.example.net", BAD_IP, None, "example.com", "pass", "reject"),
    ("dkim pass, other domain", "example.com", "b@other.example.net", BAD_IP, None, "other.example.net", "fail", "reject"),
    ("p=quarantine", "quar.example.net", "a@quar.example.net", BAD_IP, None, None, "fail", "quarantine"),
    ("sp= of the org domain", "sub.example.org", "a@sub.example.org", BAD_IP, None, None, "fail", "reject"),
    ("org domain p=none", "example.org", "a@example.org", BAD_IP, None, None, "fail", "none"),
    ("subdomain's own record", "own.example.org", "a@own.example.org", BAD_IP, None, None, "fail", "quarantine"),
    ("relaxed spf via org domain", "sub.example.org", "b@example.org", GOOD_IP, None, None, "pass", "reject"),
    ("relaxed dkim, subdomain d=", "example.org", "b@other.example.net", BAD_IP, None, "sub.example.org", "pass", "none"),
    ("co.uk sp=", "x.example.co.uk", "a@x.example.co.uk", BAD_IP, None, None, "fail", "reject"),
    ("co.uk relaxed pass", "x.example.co.uk", "b@example.co.uk", GOOD_IP, None, None, "pass", "reject"),
    ("private suffix github.io", "shop.github.io", "b@other.github.io", GOOD_IP, None, None, "fail", "reject"),
    ("github.io same domain", "shop.github.io", "a@shop.github.io", GOOD_IP, None, None, "pass", "reject"),
    ("no record", "nopolicy.example.net", "a@nopolicy.example.net", BAD_IP, None, None, "none", "none"),
    ("invalid p=", "bad.example.com", "a@bad.example.com", BAD_IP, None, None, "none", "none"),
    ("no p= (rua only)", "nop.example.com", "a@nop.example.com", BAD_IP, None, None, "none", "none"),
    ("pct=0 (policy before pct)", "pct.example.com", "a@pct.example.com", BAD_IP, None, None, "fail", "reject"),
    ("pct=100 fo=1", "ten.example.com", "a@ten.example.com", BAD_IP, None, None, "fail", "quarantine"),
    ("null sender, HELO aligned", "example.com", "", GOOD_IP, "mail.example.com", None, "pass", "reject"),
    ("null sender, HELO other", "example.com", "", GOOD_IP, "other.example.net", None, "fail", "reject"),
    ("strict, same domain", "strict.example.com", "a@strict.example.com", GOOD_IP, None, None, "pass", "reject"),
    ("strict spf, subdomain", "strict.example.com", "b@mail.strict.example.com", GOOD_IP, None, None, "fail", "reject"),
    ("strict dkim, subdomain d=", "strict.example.com", "b@other.example.net", BAD_IP, None, "mail.strict.example.com",
     "fail", "reject"),
    ("strict dkim, same d=", "strict.example.com", "b@other.example.net", BAD_IP, None, "strict.example.com", "pass",
     "reject"),
    ("aspf=s alone, spf subdomain", "sspf.example.com", "b@mail.sspf.example.com", GOOD_IP, None, None, "fail",
     "reject"),
    ("adkim=s alone, dkim subdomain", "sdkim.example.com", "b@other.example.net", BAD_IP, None,
     "mail.sdkim.example.com", "fail", "reject"),
]
KNOWN = {}  # label -> why OpenDMARC differs


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not os.path.exists("/usr/include/opendmarc/dmarc.h") or not os.path.exists(PSL):
        pytest.skip("needs a C compiler, libopendmarc-dev and publicsuffix")
    out = str(tmp_path_factory.mktemp("odm") / "opendmarc_check")
    subprocess.run([cc, "-O1", "-o", out, os.path.join(HERE, "lib", "opendmarc_check.c"), "-lopendmarc"], check=True,
                   timeout=120)
    return out


def auth_results(msg):
    ar = " ".join(msg.header("Authentication-Results")[0].split())
    parts = [p.strip() for p in ar.split(";")[1:]]
    spf = next(p for p in parts if p.startswith("spf="))
    m = re.match(r"spf=(\w+) smtp\.(mailfrom|helo)=(\S+)", spf)
    result, scope, ident = m.groups()
    domain = ident.strip('"').rsplit("@", 1)[-1]
    dkim = [(re.search(r"header\.d=(\S+)", p).group(1), p.split()[0][5:]) for p in parts if p.startswith("dkim=")
            and "header.d=" in p]
    dm = next(p for p in parts if p.startswith("dmarc="))
    g = re.match(r"dmarc=(\w+) \(p=(\w+) dis=(\w+)\)", dm)
    return (result, "helo" if scope == "helo" else "mfrom", domain), dkim, g.groups()


def test_agreement_with_opendmarc(tmp_path, sink, checker):
    zone = {d: [("TXT", SPF)] for d in SPF_DOMAINS}
    for d, rec in DMARC.items():
        zone["_dmarc." + d] = [("TXT", rec)]
    dns = DnsServer(zone).start()
    try:
        keys = {}
        for d in SIGNERS:
            keys[d], txt = keygen(tmp_path, d, "s1")
            dns.set("s1._domainkey." + d, [("TXT", txt)])
        gw = dmarc_gateway(tmp_path, sink, dns, dmarc='on_reject = "tag"\non_quarantine = "tag"')
        fakes = ["_dmarc.%s=%s" % (d, rec) for d, rec in DMARC.items()]
        rows, problems = [], []
        for label, frm, mail_from, ip, helo, signer, want_result, want_policy in SCENARIOS:
            body = message("someone@" + frm, label)
            if signer:
                body = signed(body, keys[signer], signer, "s1")
            n = sink.count()
            stage, code, lines = transaction(gw.port, ip, mail_from, helo=helo or "client.example.net", body=body)
            assert (stage, code) == ("done", 250), (label, lines)
            assert sink.wait_count(n + 1)
            (spf_result, scope, spf_domain), dkim, (ours, ours_p, ours_dis) = auth_results(sink.messages[-1])
            dk = ",".join("%s:%s" % x for x in dkim) or "-"
            r = subprocess.run([checker, PSL, ip, frm, spf_domain, spf_result, scope, dk] + fakes, capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            theirs, theirs_p = r.stdout.split()[:2]
            agree = (ours, ours_p) == (theirs, theirs_p)
            rows.append((label, "spf=%s(%s) dkim=%s" % (spf_result, spf_domain, dk), ours, ours_p, ours_dis, theirs,
                         theirs_p, "yes" if agree else "KNOWN: " + KNOWN[label] if label in KNOWN else "NO"))
            if (ours, ours_p) != (want_result, want_policy):
                problems.append("%s: gateway %s/%s, RFC 7489 wants %s/%s" % (label, ours, ours_p, want_result, want_policy))
            if not agree and label not in KNOWN:
                problems.append("%s: gateway %s/%s, OpenDMARC %s/%s" % (label, ours, ours_p, theirs, theirs_p))
        width = max(len(r[0]) for r in rows)
        print("\n%-*s  %-52s %-9s %-10s %-10s | %-9s %-10s | agree" % (width, "scenario", "inputs", "gateway", "p=",
                                                                        "dis=", "opendmarc", "policy"))
        for r in rows:
            print("%-*s  %-52s %-9s %-10s %-10s | %-9s %-10s | %s" % ((width,) + r))
        assert len(rows) >= 20
        assert not problems, "\n".join(problems)
        assert sum(1 for r in rows if r[-1] == "yes") >= 20
    finally:
        dns.stop()
