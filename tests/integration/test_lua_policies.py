"""Each example policy in policies/ against the real binary."""
import os
import re
import time

from luahelp import POLICIES, session, start, write
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
    gw.signal(signal.SIGHUP)
    end = time.monotonic() + 10
    while "reload_failed" not in gw.log() and time.monotonic() < end:
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
        # (tx.dmarc as "result domain policy disposition", expected code, X-Spam-Flag)
        ("fail bank.test reject none", 550, []),
        ("fail shop.test quarantine none", 250, ["YES"]),
        ("fail news.test none none", 250, []),       # p=none: the owner asks for nothing
        ("pass bank.test reject none", 250, []),
        ("temperror bank.test reject none", 250, []),
        (None, 250, []),                             # no dmarc plugin before: nothing happens
    ]
    for n, (fact, expected, flag) in enumerate(cases):
        head = "X-Test-Dmarc: %s\r\n" % fact if fact else ""
        code, lines = send_message(gw.port, body=head + "From: a@x.test\r\nSubject: case%d\r\n\r\nx\r\n" % n)
        assert code == expected, (fact, lines)
        if expected == 550:
            assert "bank.test failed DMARC (p=reject)" in lines[-1]
    assert sink.wait_count(5)
    by_subject = {m.header("Subject")[0]: m for m in sink.messages}
    for n, (fact, expected, flag) in enumerate(cases):
        if expected == 250:
            m = by_subject["case%d" % n]
            assert m.header("X-Spam-Flag") == flag, fact
            assert len(m.header("X-Policy-DMARC")) == (1 if fact else 0)
    assert by_subject["case2"].header("X-Policy-DMARC") == ["fail (p=none header.from=news.test)"]


def test_recipient_caps_keyed_on_network_and_user(gateway_factory, sink, tmp_path):
    script = policy("recipient_caps.lua", tmp_path, LIMIT=4, WINDOW='"1h"', CAPS='{["alice"] = 6,')
    gw = start(gateway_factory, sink, tmp_path, scripts=[script], extra=UNTRUSTED + STORE, threads=2)
    codes = []
    for i in range(6):  # one connection each: they alternate between the two worker threads
        code, _ = send_message(gw.port, sender="s%d@sender%d.test" % (i, i), rcpts=("r%d@example.test" % i,))
        codes.append(code)
    assert "store not configured" not in gw.log()
    assert codes == [250, 250, 250, 250, 451, 451], codes  # one count for 127.0.0.0/24, whatever MAIL FROM says
    assert send_message(gw.port, sender="a@other.test")[0] == 451
    assert gw.metric('smtpgw_lua_counter_total{name="recipient_cap_exceeded"}') == 3
    # an authenticated user (here from the test_facts plugin) has its own count and cap
    os.makedirs(tmp_path / "user")
    gw2 = start(gateway_factory, sink, tmp_path / "user", scripts=[script], pipeline=("test_facts", "lua"),
                extra=UNTRUSTED + STORE + '\n[plugins.test_facts]\nauth_user = "alice"\n', binary="smtp-gateway-test")
    c = session(gw2.port)
    c.cmd("MAIL FROM:<a@whatever.test>")
    got = [c.cmd("RCPT TO:<r%d@example.test>" % i)[0] for i in range(8)]
    assert got == [250] * 6 + [451, 451]
    c.close()


def test_map_access_before_greylist(gateway_factory, sink, tmp_path):
    os.makedirs(tmp_path / "lists")
    (tmp_path / "lists" / "allow-nets.list").write_text("# partners\n127.0.0.0/8\n2001:db8::/32\n")
    (tmp_path / "lists" / "deny-nets.list").write_text("192.0.2.0/24\n")
    (tmp_path / "lists" / "deny-domains.list").write_text("spam.test\n")
    text = open(os.path.join(POLICIES, "map_access.lua")).read().replace("/etc/smtp-gateway/", str(tmp_path / "lists") + "/")
    script = write(tmp_path, "map_access.lua", text)
    extra = '\n[plugins."lua:access"]\nscripts = ["%s"]\n' % script + UNTRUSTED + STORE
    gw = gateway_factory(extra, upstream_ports=[sink.port], pipeline=["lua:access", "greylist"])
    # the allowed network skips greylisting (which would answer 451 to a first triplet)
    assert send_message(gw.port, sender="a@sender.test")[0] == 250
    assert send_message(gw.port, sender="b@spam.test")[0] == 550  # deny wins over allow
    assert send_message(gw.port, sender="b@mx.spam.test")[0] == 550
    # once 127.0.0.0/8 leaves the allow list (no restart), greylisting applies again
    tmp = tmp_path / "lists" / "allow.new"
    tmp.write_text("2001:db8::/32\n")
    os.rename(tmp, tmp_path / "lists" / "allow-nets.list")
    deadline = time.monotonic() + 10
    code = 250
    while time.monotonic() < deadline:
        code = send_message(gw.port, sender="new%d@sender.test" % int(time.time() * 1000))[0]
        if code == 451:
            break
        time.sleep(0.2)
    assert code == 451


def test_dnsbl_rbl(gateway_factory, sink, tmp_path):
    from dnsserver import DnsServer
    dns = DnsServer({"1.0.0.127.bl.test": [("A", "127.0.0.2")], "1.0.0.127.broken.test": [("A", "127.255.255.254")]}).start()
    try:
        extra = UNTRUSTED + '\n[dns]\nnameservers = ["%s"]\ntimeout = "2s"\n' % dns.address
        broken = policy("dnsbl_rbl.lua", tmp_path, ZONES='{"broken.test", "clean.test"}')
        gw = start(gateway_factory, sink, tmp_path, scripts=[broken], extra=extra)
        assert send_message(gw.port)[0] == 250  # a "query refused" answer never counts
        os.makedirs(tmp_path / "listed")
        listed = policy("dnsbl_rbl.lua", tmp_path / "listed", ZONES='{"clean.test", "bl.test"}')
        gw2 = start(gateway_factory, sink, tmp_path / "listed", scripts=[listed], extra=extra)
        c = session(gw2.port)
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<b@example.test>")
        assert code == 554 and "client [127.0.0.1] blocked using bl.test" in lines[-1], lines
        before = dns.queries
        assert c.cmd("RCPT TO:<c@example.test>")[0] == 554
        assert dns.queries == before  # kept in tx.session_data: looked up once per session
        c.close()
    finally:
        dns.stop()


def test_content_regex(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, scripts=[os.path.join(POLICIES, "content_regex.lua")], extra=UNTRUSTED)
    code, lines = send_message(gw.port, body="Subject: Cheap VIAGRA here\r\n\r\nx\r\n")
    assert code == 550 and "Message content refused" in lines[-1]
    body = "Subject: hello\r\n\r\nDear beneficiary,\r\nyour inheritance of 5 million USD awaits\r\n"
    assert send_message(gw.port, body=body)[0] == 250
    assert send_message(gw.port, body="Subject: viagraville trip\r\n\r\nx\r\n")[0] == 250  # \b: a whole word
    assert sink.wait_count(2)
    tagged, clean = sink.messages
    assert tagged.header("X-Policy-Rule") == ["advance_fee"] and tagged.header("X-Spam-Flag") == ["YES"]
    assert clean.header("X-Spam-Flag") == []
