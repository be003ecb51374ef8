"""The rspamd plugin against a fake rspamd (the test's own HTTP server): the exact request, every
action, header edits, bad answers and timeouts under on_error, and keep-alive connections."""
import os
import re
import subprocess
import time

from dnsserver import DnsServer
from edgetest import crypt_hash, make_cert, plain, TlsClient
from gwtest import BUILD, send_message
from rspamdfake import FakeRspamd
from rspamdtest import header_names, rspamd_gateway, transaction_ids

ZONE = {
    "sender.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "10.2.0.192.in-addr.arpa": [("PTR", "client.sender.test.")],
}

MESSAGE = (b"Authentication-Results: gw.test; spf=pass smtp.mailfrom=forged@sender.test\r\n"
           b"From: Alice <alice@sender.test>\r\n"
           b"Subject: the request\r\n"
           b"\r\n"
           b"line one\r\n"
           b".a line that starts with a dot\r\n"
           b"last line\r\n")


def answer(action, **extra):
    a = {"action": action, "score": 7.25, "required_score": 15.0,
         "symbols": {"GTUBE": {"name": "GTUBE", "score": 0.0}, "R_SPF_ALLOW": {"name": "R_SPF_ALLOW", "score": -0.2}}}
    a.update(extra)
    return a


def proxy_session(port, ip, helo):
    c = TlsClient(port)
    c.send("PROXY TCP4 %s 127.0.0.1 40000 587\r\n" % ip)
    code, lines = c.reply()
    assert code == 220, lines
    c.ehlo(helo)
    return c


def send_data(c, sender, rcpts, body):
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r)[0] == 250
    assert c.cmd("DATA")[0] == 354
    stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in body.split(b"\r\n"))
    c.send(stuffed + b".\r\n")
    return c.reply()


def first_field_end(data):
    """Offset just after the first header field (its folded lines included)."""
    pos = 0
    while True:
        pos = data.index(b"\r\n", pos) + 2
        if data[pos:pos + 1] not in (b" ", b"\t"):
            return pos


def test_request_is_exact_for_an_authenticated_client(tmp_path, sink):
    """PROXY address with a PTR name, STARTTLS + AUTH, two recipients: every request header, and a body
    byte-equal to what the upstream receives (xclient: no Received line), the forged
    Authentication-Results the gateway removes left out of both."""
    dns = DnsServer(ZONE).start()
    fake = FakeRspamd().start()
    cert, key = make_cert(tmp_path)
    users = str(tmp_path / "users")
    with open(users, "w") as f:
        f.write("alice:%s\n" % crypt_hash("alice-pw", "$6$"))
    gw = rspamd_gateway(tmp_path, sink, fake.url,
                        listeners=[dict(role="submission", tls="starttls", proxy_protocol=True)],
                        body='\n[dns]\nnameservers = ["%s"]\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n'
                             '[auth]\nusers_file = "%s"\n' % (dns.address, cert, key, users))
    try:
        c = proxy_session(gw.port, "192.0.2.10", "mx.sender.test")
        c.starttls()
        c.ehlo("mx.sender.test")
        assert c.cmd("AUTH PLAIN " + plain("alice", "alice-pw"))[0] == 235
        code, lines = send_data(c, "alice@sender.test", ["bob@example.test", "carol@elsewhere.test"], MESSAGE)
        assert code == 250, lines
        c.cmd("QUIT")
        assert sink.wait_count(1)
        assert fake.wait_requests(1)
        req = fake.requests[0]
        assert (req.method, req.path) == ("POST", "/checkv2")
        assert req.get("IP") == "192.0.2.10"
        assert req.get("Helo") == "mx.sender.test"
        assert req.get("From") == "alice@sender.test"
        assert req.all("Rcpt") == ["bob@example.test", "carol@elsewhere.test"]
        assert req.get("Hostname") == "client.sender.test"
        assert req.get("User") == "alice"
        ids = transaction_ids(gw)
        assert len(ids) == 1 and req.get("Queue-Id") == ids[0], (ids, req.headers)
        assert req.get("Content-Length") == str(len(req.body))
        m = sink.messages[0]
        assert m.xclient, "the upstream must have had XCLIENT (else it gets a Received line rspamd did not see)"
        assert req.body == m.data
        assert b"forged@sender.test" not in req.body
        assert req.body.endswith(MESSAGE[MESSAGE.index(b"From:"):])
    finally:
        gw.stop()
        fake.stop()
        dns.stop()


def test_request_of_an_inbound_client_with_prepended_headers(tmp_path, sink):
    """Inbound client without a PTR name and without AUTH: no Hostname, no User. spf runs first: its
    Received-SPF and Authentication-Results are in rspamd's copy. Without XCLIENT the upstream's copy
    is the Received line the session adds, then exactly rspamd's copy. A null sender is From: <>."""
    dns = DnsServer(ZONE).start()
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url, pipeline=("spf", "rspamd"), xclient=False,
                        listeners=[dict(proxy_protocol=True)],
                        body='\n[dns]\nnameservers = ["%s"]\n[plugins.spf]\non_fail = "tag"\n' % dns.address)
    try:
        for sender in ("alice@sender.test", ""):
            c = proxy_session(gw.port, "192.0.2.77", "mx.other.test")
            code, lines = send_data(c, sender, ["bob@example.test"], MESSAGE)
            assert code == 250, lines
            c.cmd("QUIT")
        assert sink.wait_count(2)
        reqs = fake.requests
        assert len(reqs) == 2
        for req, m, sender in zip(reqs, sink.messages, ("alice@sender.test", "<>")):
            assert req.get("IP") == "192.0.2.77"
            assert req.get("From") == sender
            assert req.get("Hostname") is None and req.get("User") is None
            assert req.all("Rcpt") == ["bob@example.test"]
            assert not m.xclient
            assert m.data.startswith(b"Received: from mx.other.test (unknown [192.0.2.77])")
            assert m.data[first_field_end(m.data):] == req.body
            assert header_names(req.body)[:2] == ["Authentication-Results", "Received-SPF"]
            assert (b"spf=fail" if sender != "<>" else b"spf=none") in req.body
        assert [r.get("Queue-Id") for r in reqs] == transaction_ids(gw)
    finally:
        gw.stop()
        fake.stop()
        dns.stop()


def test_every_action(tmp_path, sink):
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url)
    try:
        body = b"Subject: buy now\r\nX-Keep: 1\r\n\r\nhello\r\n"
        fake.answer = lambda r: answer("reject", messages={"smtp_message": "Spam detected\r\nby us"})
        code, lines = send_message(gw.port, body=body)
        assert code == 550 and lines[0] == "550 5.7.1 Spam detected by us", lines
        fake.answer = lambda r: answer("reject")
        code, lines = send_message(gw.port, body=body)
        assert code == 550 and lines[0].startswith("550 5.7.1 "), lines
        for action in ("soft reject", "greylist"):
            fake.answer = lambda r, a=action: answer(a)
            code, lines = send_message(gw.port, body=body)
            assert code == 451 and lines[0].startswith("451 4.7.1 "), (action, lines)
        assert sink.count() == 0

        fake.answer = lambda r: answer("rewrite subject", subject="***SPAM*** buy now")
        assert send_message(gw.port, body=body)[0] == 250
        fake.answer = lambda r: answer("add header")
        assert send_message(gw.port, body=body)[0] == 250
        fake.answer = lambda r: answer("no action")
        assert send_message(gw.port, body=body)[0] == 250
        # rspamd's milter_headers adding X-Spam itself: one X-Spam field, not two
        fake.answer = lambda r: answer("add header", milter={"add_headers": {"X-Spam": "Yes"}})
        assert send_message(gw.port, body=body)[0] == 250
        assert sink.wait_count(4)
        rewritten, tagged, clean, tagged_by_rspamd = sink.messages
        assert tagged_by_rspamd.header("X-Spam") == ["Yes"]
        assert rewritten.header("Subject") == ["***SPAM*** buy now"]
        assert header_names(rewritten.data) == ["Subject", "X-Keep"]  # replaced in place
        assert tagged.header("X-Spam") == ["Yes"] and tagged.header("Subject") == ["buy now"]
        assert clean.data == body and clean.header("X-Spam") == []
        assert "action=reject" in gw.log() and 'action="rewrite subject"' in gw.log()
        assert gw.metric('smtpgw_rspamd_results_total{action="reject"}') == 2
        assert gw.metric('smtpgw_rspamd_results_total{action="greylist"}') == 1
        assert gw.metric('smtpgw_rspamd_results_total{action="no action"}') == 1
    finally:
        gw.stop()
        fake.stop()


def test_remove_then_add_headers_with_counts_and_orders(tmp_path, sink):
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url)
    try:
        body = (b"Received: from a\r\nX-Old: 1\r\nX-Old: 2\r\nX-Old: 3\r\nX-Drop: a\r\nSubject: hello\r\n"
                b"X-Drop: b\r\nX-Last: y\r\nX-Last: z\r\n\r\nbody\r\n")
        milter = {
            "remove_headers": {"X-Old": 2, "X-Drop": 0, "X-Last": -1, "X-Nothing": 3, "Bad Name": 0},
            "add_headers": {
                "X-Added": "plain",
                "X-Top": {"value": "top", "order": 0},
                "X-Multi": ["one", {"value": "two", "order": 1}],
                "X-Before-Last": {"value": "bl", "order": -2},
                "X-Folded": "first\r\n\tsecond\nthird",
                "Bad:Name": "x",
            },
        }
        fake.answer = lambda r: answer("rewrite subject", subject="[SPAM] hello", milter=milter)
        code, lines = send_message(gw.port, body=body)
        assert code == 250, lines
        assert sink.wait_count(1)
        m = sink.messages[0]
        assert header_names(m.data) == ["X-Top", "X-Multi", "Received", "X-Old", "X-Old", "Subject", "X-Last",
                                        "X-Added", "X-Before-Last", "X-Multi", "X-Folded"]
        assert m.header("X-Old") == ["1", "3"]
        assert m.header("X-Last") == ["y"]
        assert m.header("X-Multi") == ["two", "one"]
        assert m.header("Subject") == ["[SPAM] hello"]
        assert b"X-Folded: first\r\n\tsecond third\r\n" in m.data
        assert m.body == b"body\r\n"
        # the edits apply with every action that delivers, "no action" included
        fake.answer = lambda r: answer("no action", milter={"remove_headers": {"X-Old": 0},
                                                            "add_headers": {"X-Spamd-Bar": "+++"}})
        assert send_message(gw.port, body=body)[0] == 250
        assert sink.wait_count(2)
        m = sink.messages[1]
        assert m.header("X-Old") == [] and m.header("X-Spamd-Bar") == ["+++"]
    finally:
        gw.stop()
        fake.stop()


BAD_ANSWERS = [
    ("status 500", lambda r: (500, b'{"action": "reject"}')),
    ("not JSON", lambda r: (200, b'{"action": "reject"')),
    ("not an object", lambda r: (200, b'["reject"]')),
    ("unknown action", lambda r: answer("discard")),
    ("no action key", lambda r: {"score": 99}),
    ("closed", lambda r: "close"),
    ("hangs", lambda r: "hang"),
]


def test_bad_answers_and_timeout_with_on_error_accept(tmp_path, sink):
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url, on_error="accept", timeout="1s")
    try:
        for i, (what, a) in enumerate(BAD_ANSWERS):
            fake.answer = a
            t0 = time.monotonic()
            code, lines = send_message(gw.port, body=b"Subject: %d\r\n\r\nx\r\n" % i)
            assert code == 250, (what, lines)
            assert time.monotonic() - t0 < 20, what
            assert sink.wait_count(i + 1), what
            assert sink.messages[-1].header("X-Spam") == []
        assert gw.log().count("rspamd_error") == len(BAD_ANSWERS)
        assert "timed out" in gw.log()
        assert gw.metric('smtpgw_rspamd_results_total{action="error"}') == len(BAD_ANSWERS)
    finally:
        gw.stop()
        fake.stop()


def test_bad_answers_and_timeout_with_on_error_tempfail(tmp_path, sink):
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url, on_error="tempfail", timeout="1s")
    try:
        for what, a in BAD_ANSWERS:
            fake.answer = a
            code, lines = send_message(gw.port)
            assert code == 451 and lines[0].startswith("451 4.7.1 "), (what, lines)
        assert len(fake.requests) >= len(BAD_ANSWERS)
        assert sink.count() == 0
        # and a good answer still goes through on the same gateway
        fake.answer = lambda r: answer("no action")
        assert send_message(gw.port)[0] == 250
    finally:
        gw.stop()
        fake.stop()


def test_keep_alive_reuse_stale_detection_and_retry(tmp_path, sink):
    fake = FakeRspamd().start()
    gw = rspamd_gateway(tmp_path, sink, fake.url, threads=1)
    try:
        for i in range(6):
            assert send_message(gw.port, body=b"Subject: %d\r\n\r\nx\r\n" % i)[0] == 250
        assert len(fake.requests) == 6
        assert fake.connections == 1 < len(fake.requests)
        assert gw.metric('smtpgw_rspamd_connections_total{kind="reused"}') == 5

        # the server closes an idle kept-alive connection: noticed before use, a new one is opened
        fake.close_idle_after = 0.2
        assert send_message(gw.port)[0] == 250  # still on connection 1; closed 0.2 s after this answer
        end = time.monotonic() + 10
        while fake.open_connections() and time.monotonic() < end:
            time.sleep(0.02)
        assert fake.open_connections() == 0
        fake.close_idle_after = None
        assert send_message(gw.port)[0] == 250
        assert fake.connections == 2
        assert [r.conn_id for r in fake.requests[-2:]] == [1, 2]

        # the server drops the request on a kept-alive connection without answering: sent again once,
        # on a fresh connection, and answered there
        first = len(fake.requests)
        fake.answer = lambda r: "close" if r.conn_id == 2 else answer("no action")
        assert send_message(gw.port)[0] == 250
        reqs = fake.requests[first:]
        assert [r.conn_id for r in reqs] == [2, 3]
        assert reqs[0].get("Queue-Id") == reqs[1].get("Queue-Id") and reqs[0].body == reqs[1].body
        assert sink.wait_count(9) and sink.count() == 9
    finally:
        gw.stop()
        fake.stop()


def test_config_errors_point_at_the_key(tmp_path):
    base = ('pipeline = ["rspamd"]\n[[listener]]\naddress = "127.0.0.1:2525"\n[upstream]\nservers = ["127.0.0.1:25"]\n'
            '[plugins.rspamd]\n')
    cases = [
        ('url = "https://127.0.0.1:11333"\n', "http://"),
        ('url = "http://127.0.0.1:99999"\n', "port"),
        ('url = "http://:11333"\n', "no host"),
        ('timeout = "0s"\n', "positive"),
        ('on_error = "reject"\n', "accept"),
        ('servers = ["x"]\n', "servers"),
    ]
    path = str(tmp_path / "gw.toml")
    for body, pattern in cases:
        with open(path, "w") as f:
            f.write(base + body)
        r = subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (body, r.stderr)
        m = re.match(r"^(.*):(\d+):(\d+): (.*)$", r.stderr.strip().splitlines()[0])
        assert m and m.group(1) == path and int(m.group(2)) == 7, (body, r.stderr)
        assert pattern in m.group(4), (body, r.stderr)
    with open(path, "w") as f:
        f.write(base + 'url = "http://[::1]:11333/rspamd/"\ntimeout = "2s"\non_error = "tempfail"\n')
    r = subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
