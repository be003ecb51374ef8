"""Each example policy in policies/ against the real binary."""
import os
import re

import pytest

from luahelp import POLICIES, alive, data, session, start, write
from gwtest import Client, send_message

FACTS = "\n[plugins.test_facts]\n"
UNTRUSTED = "\n[trusted]\nnetworks = []\n"
STORE = '\n[store]\nbackend = "embedded"\npath = "var/state"\n'


def policy(name, tmp_path, **constants):
    """The policy's text with some of its top constants replaced (as an admin would edit them)."""
    with open(os.path.join(POLICIES, name)) as f:
        text = f.read()
    for k, v in constants.items():
        text, n = re.subn(r"^local %s = .*$" % k, "local %s = %s" % (k, v), text, count=1, flags=re.M)
        assert n == 1, k
    return write(tmp_path, name, text)


def mime(parts):
    out = ["From: a@sender.test", "Subject: files", "MIME-Version: 1.0",
           'Content-Type: multipart/mixed; boundary="XYZ"', "", "preamble"]
    for headers, body in parts:
        out += ["--XYZ"] + headers + ["", body]
    out += ["--XYZ--", ""]
    return "\r\n".join(out)


def test_dangerous_attachments(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, scripts=[os.path.join(POLICIES, "dangerous_attachments.lua")])
    text = ["Content-Type: text/plain"]
    bad = [
        ['Content-Type: application/octet-stream; name="invoice.exe"'],
        ["Content-Disposition: attachment; filename=Setup.SCR"],
        ["Content-Type: application/octet-stream;", '\tname="report.pdf.js"'],
        ["Content-Disposition: attachment; filename*=utf-8''evil%2Ebat"],
        ['Content-Disposition: attachment; filename="=?UTF-8?B?cGF5bWVudC52YnM=?="'],
        ['Content-Disposition: attachment; filename="trailing.exe. "'],
    ]
    for headers in bad:
        body = mime([(text, "hello"), (headers + ["Content-Transfer-Encoding: base64"], "TVqQAAMAAAAEAAAA")])
        code, lines = send_message(gw.port, body=body)
        assert code == 550 and "not accepted" in lines[-1], (headers, lines)
    good = mime([(text, "hello"), (['Content-Disposition: attachment; filename="report.pdf"'], "JVBERi0=")])
    code, lines = send_message(gw.port, body=good)
    assert code == 250, lines
    # a single-part message with the name in its top-level header
    single = ("Subject: x\r\nContent-Type: application/x-msdownload; name=\"tool.exe\"\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\nTVqQ\r\n")
    code, _ = send_message(gw.port, body=single)
    assert code == 550
    # a message that only talks about .exe files is fine
    code, _ = send_message(gw.port, body="Subject: exe\r\n\r\nplease do not send name=\"x.exe\" files\r\n")
    assert code == 250
    assert sink.count() == 2
    assert gw.metric('smtpgw_lua_counter_total{name="dangerous_attachment_rejected"}') == 7


def test_spf_softfail_tag(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, scripts=[os.path.join(POLICIES, "spf_softfail_tag.lua")],
               pipeline=("test_facts", "lua"), extra=FACTS, binary="smtp-gateway-test")
    for result in ("softfail", "pass", "fail"):
        code, lines = send_message(gw.port, body="X-Test-Spf: %s sender.test\r\nSubject: %s\r\n\r\nx\r\n" % (result, result))
        assert code == 250, lines  # never rejected: tagged
    assert sink.wait_count(3)
    by_subject = {m.header("Subject")[0]: m for m in sink.messages}
    assert by_subject["softfail"].header("X-Spam-Flag") == ["YES"]
    assert by_subject["softfail"].header("X-Policy-SPF") == ["softfail (sender.test)"]
    assert by_subject["pass"].header("X-Spam-Flag") == []
    assert by_subject["fail"].header("X-Spam-Flag") == []  # fail is the spf plugin's business


def test_access_lists(gateway_factory, sink, tmp_path):
    os.makedirs(tmp_path / "etc")
    (tmp_path / "etc" / "access.list").write_text(
        "# local lists\n"
        "deny  spammer@bad.test\n"
        "deny  @worse.test      # the whole domain\n"
        "deny  @.evil.test\n"
        "allow friend@partner.test\n"
        "deny  192.0.2.0/24\n")
    script = os.path.join(POLICIES, "access_lists.lua")
    # The allowed sender skips a later script that would refuse everyone at RCPT and DATA.
    strict = write(tmp_path, "strict.lua", """
        function on_rcpt_to(tx, addr) return gateway.reject(550, "5.7.1", "strict") end
    """)
    gw = start(gateway_factory, sink, tmp_path, scripts=[script, strict])
    for sender in ("spammer@bad.test", "SPAMMER@BAD.TEST", "x@worse.test", "x@mx.evil.test"):
        code, lines = send_message(gw.port, sender=sender)
        assert code == 550 and "Sender denied" in lines[-1], sender
    code, lines = send_message(gw.port, sender="other@partner.test")
    assert code == 550 and "strict" in lines[-1]
    code, lines = send_message(gw.port, sender="friend@partner.test")
    assert code == 250, lines
    code, lines = send_message(gw.port, sender="x@evil.test")  # @.evil.test is only the subdomains
    assert code == 550 and "strict" in lines[-1]
    # a malformed list makes the load fail: reload is refused, --check-config would fail
    (tmp_path / "etc" / "access.list").write_text("permit everyone\n")
    import signal
    import time
    gw.signal(signal.SIGHUP)
    end = time.time() + 10
    while "reload_failed" not in gw.log() and time.time() < end:
        time.sleep(0.05)
    assert "etc/access.list:1: expected 'allow ENTRY' or 'deny ENTRY'" in gw.log()
    code, lines = send_message(gw.port, sender="spammer@bad.test")
    assert code == 550 and "Sender denied" in lines[-1]  # the old lists still work


def test_access_lists_client_address(gateway_factory, sink, tmp_path):
    os.makedirs(tmp_path / "etc")
    (tmp_path / "etc" / "access.list").write_text("deny 127.0.0.0/8\n")
    gw = start(gateway_factory, sink, tmp_path, scripts=[os.path.join(POLICIES, "access_lists.lua")])
    c = Client(gw.port)
    code, lines = c.reply()
    assert code == 554 and "Access denied" in lines[-1]
    c.close()


def test_dmarc_lite(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, scripts=[os.path.join(POLICIES, "dmarc_lite.lua")],
               pipeline=("test_facts", "lua"), extra=FACTS + UNTRUSTED, binary="smtp-gateway-test")
    cases = [
        # (facts headers, From, expected code)
        ("X-Test-Spf: fail bank.test\r\n", "Bank <alerts@bank.test>", 550),
        ("X-Test-Spf: softfail bank.test\r\nX-Test-Dkim: bank.test s1 fail\r\n", "alerts@bank.test", 550),
        ("X-Test-Spf: pass other.test\r\nX-Test-Dkim: other.test s1 pass\r\n", "<alerts@bank.test>", 550),
        ("X-Test-Spf: pass mail.bank.test\r\n", "Bank <alerts@bank.test>", 250),      # SPF aligned
        ("X-Test-Spf: fail bank.test\r\nX-Test-Dkim: news.bank.test s1 pass\r\n", "a@bank.test", 250),  # DKIM aligned
        ("X-Test-Spf: pass shop.co.uk\r\n", "a@other.co.uk", 550),                   # co.uk is not an org domain
        ("", "a@bank.test", 250),                                                    # SPF not checked: skipped
    ]
    for facts, frm, expected in cases:
        body = facts + "From: " + frm + "\r\nSubject: t\r\n\r\nx\r\n"
        code, lines = send_message(gw.port, body=body)
        assert code == expected, (facts, frm, lines)
        if expected == 550:
            assert "not authenticated by SPF or DKIM" in lines[-1]


def test_recipient_caps_across_threads(gateway_factory, sink, tmp_path):
    script = policy("recipient_caps.lua", tmp_path, LIMIT=4, WINDOW='"1h"', CAPS='{["big.test"] = 6,')
    gw = start(gateway_factory, sink, tmp_path, scripts=[script], extra=UNTRUSTED + STORE, threads=2)
    codes = []
    for i in range(6):  # one connection each: they alternate between the two worker threads
        code, _ = send_message(gw.port, sender="s%d@sender.test" % i, rcpts=("r%d@example.test" % i,))
        codes.append(code)
    assert "store not configured" not in gw.log()
    assert codes == [250, 250, 250, 250, 451, 451], codes
    # another domain has its own count; a domain with its own cap
    assert send_message(gw.port, sender="a@other.test")[0] == 250
    c = session(gw.port)
    c.cmd("MAIL FROM:<a@big.test>")
    got = [c.cmd("RCPT TO:<r%d@example.test>" % i)[0] for i in range(8)]
    assert got == [250] * 6 + [451, 451]
    c.close()
    assert gw.metric('smtpgw_lua_counter_total{name="recipient_cap_exceeded"}') == 4
