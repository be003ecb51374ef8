"""Helpers for the DMARC tests: a gateway running spf, dkim_verify and dmarc on a PROXY-protocol
listener (so a test picks the client address), the test DNS server as its only nameserver, messages
signed by Perl Mail::DKIM with a key made by `smtp-gateway dkim-keygen`."""
import os
import re
import subprocess

from dkimtools import mail_dkim_sign
from gwtest import BUILD, Gateway
from spftest import transaction

BIN = os.path.join(BUILD, "smtp-gateway")
GOOD_IP = "192.0.2.10"   # in every test domain's SPF record
BAD_IP = "192.0.2.66"    # in none

PLUGINS = """
[store]
backend = "{backend}"
path = "{store_path}"
redis_url = "{redis_url}"

[plugins.spf]
on_fail = "tag"
on_softfail = "tag"
on_temperror = "tag"
on_permerror = "tag"

[plugins.dkim_verify]
on_fail = "tag"

[plugins.dmarc]
"""


def dmarc_gateway(tmp_path, sink, dns, dmarc="", trusted=(), dns_timeout="2s", pipeline=("spf", "dkim_verify", "dmarc"),
                  backend="embedded", redis_url="redis://127.0.0.1:6379/0", start=True):
    """`dmarc`: the [plugins.dmarc] keys (TOML text); `trusted`: the [trusted] networks (none by default).
    [server] and [upstream] keys other than the ports, threads, hostname, command and connect timeouts
    are left to the gateway's defaults."""
    body = PLUGINS.format(backend=backend, store_path=str(tmp_path / "state"), redis_url=redis_url) + dmarc + "\n"
    gw = Gateway(tmp_path, upstream_ports=[sink.port], pipeline=list(pipeline), proxy_protocol=True, dns=dns.address,
                 dns_timeout=dns_timeout, trusted=list(trusted), relay=[], body=body, data_timeout=None,
                 max_message_size=None, max_recipients=None, max_connections=None, drain_timeout=None,
                 upstream_timeout=None, pool_size=None)
    return gw.start() if start else gw


def keygen(tmp_path, domain, selector):
    r = subprocess.run([BIN, "dkim-keygen", "--domain", domain, "--selector", selector, "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return str(tmp_path / ("%s.%s.key" % (domain, selector))), "".join(re.findall(r'"([^"]*)"', r.stdout))


def message(from_field, subject="dmarc", extra=""):
    return ("From: %s\r\n%sTo: bob@example.test\r\nSubject: %s\r\nDate: Wed, 02 Dec 2026 22:00:00 +0000\r\n"
            "Message-ID: <%s@t.test>\r\n\r\nHello.\r\n" % (from_field, extra, subject, abs(hash(subject))))


def signed(body, key, domain, selector):
    return mail_dkim_sign(body.encode(), key, domain, selector, "relaxed").decode()


def send(gw, sink, ip, mail_from, body, helo="mail.example.com"):
    """One transaction; returns (code, text, delivered message or None)."""
    n = sink.count()
    stage, code, lines = transaction(gw.port, ip, mail_from, helo=helo, body=body)
    assert stage == "done", (stage, code, lines)
    msg = None
    if code == 250:
        assert sink.wait_count(n + 1)
        msg = sink.messages[-1]
    return code, " ".join(lines), msg


def dmarc_part(msg):
    """The dmarc= part of the one Authentication-Results header, whitespace squeezed; None without."""
    ar = msg.header("Authentication-Results")
    assert len(ar) == 1, ar
    for part in ar[0].split(";")[1:]:
        part = " ".join(part.split())
        if part.startswith("dmarc="):
            return part
    return None
