"""The plugin pipeline with the test-only plugins test_a and test_b (build/smtp-gateway-test)."""
import time

from gwtest import Client, open_session, send_message

BIN = "smtp-gateway-test"


def test_order_facts_and_header_edits(sink, gateway_factory):
    cfg = """
[plugins.test_a]
header = true
set_fact = "from-a"
remove_header = "X-Remove-Me"
[plugins.test_b]
header = true
show_fact = true
"""
    gw = gateway_factory(cfg, binary=BIN, upstream_ports=[sink.port], pipeline=["test_a", "test_b"])
    code, _ = send_message(gw.port, body="X-Remove-Me: secret\r\nSubject: s\r\n\r\nbody\r\n")
    assert code == 250
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Test-Order") == ["test_a", "test_b"]
    assert m.header("X-Test-Fact") == ["from-a"]
    assert m.header("X-Remove-Me") == []
    assert m.header("Subject") == ["s"]


def test_every_verdict_at_every_stage(sink, gateway_factory):
    cfg = """
[plugins.test_a]
rules = [
  { stage = "helo", contains = "badhelo", verdict = "reject", code = 550, enhanced = "5.7.1", text = "helo refused" },
  { stage = "mail", contains = "tempme", verdict = "tempfail", code = 451, enhanced = "4.7.1", text = "mail later" },
  { stage = "mail", contains = "rejectme", verdict = "reject", code = 550, enhanced = "5.7.1", text = "mail refused" },
  { stage = "rcpt", contains = "deny", verdict = "reject", code = 550, enhanced = "5.7.1", text = "rcpt refused" },
  { stage = "rcpt", contains = "vip", verdict = "accept" },
  { stage = "data", contains = "spammy", verdict = "reject", code = 550, enhanced = "5.7.1", text = "content refused" },
  { stage = "data", contains = "later", verdict = "tempfail", code = 451, enhanced = "4.7.1", text = "content later" },
]
[plugins.test_b]
header = true
rules = [ { stage = "rcpt", contains = "vip", verdict = "reject", text = "test_b must not run after accept" } ]
"""
    gw = gateway_factory(cfg, binary=BIN, upstream_ports=[sink.port], pipeline=["test_a", "test_b"])
    c = Client(gw.port)
    c.reply()
    code, lines = c.cmd("EHLO badhelo.test")
    assert code == 550 and "helo refused" in lines[0]
    assert c.cmd("EHLO good.test")[0] == 250  # the session stays open
    code, lines = c.cmd("MAIL FROM:<tempme@x.test>")
    assert code == 451 and "4.7.1 mail later" in lines[0]
    code, lines = c.cmd("MAIL FROM:<rejectme@x.test>")
    assert code == 550 and "5.7.1 mail refused" in lines[0]
    assert c.cmd("MAIL FROM:<ok@x.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<deny@example.test>")
    assert code == 550 and "rcpt refused" in lines[0]
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250  # accept stops the stage: test_b's reject never runs
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: spammy\r\n\r\nx\r\n.\r\n")
    code, lines = c.reply()
    assert code == 550 and "content refused" in lines[0]
    assert c.cmd("MAIL FROM:<ok@x.test>")[0] == 250
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: later please\r\n\r\nx\r\n.\r\n")
    code, lines = c.reply()
    assert code == 451 and "content later" in lines[0]
    assert c.cmd("MAIL FROM:<ok@x.test>")[0] == 250
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: fine\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert sink.wait_count(1)
    assert sink.count() == 1
    assert sink.messages[0].header("X-Test-Order") == ["test_b"]
    assert not any(cmd.startswith("RCPT TO:<deny") for cmd in sink.commands)
    assert "test_a=data:reject" in gw.log()


def test_connect_verdicts(sink, gateway_factory):
    cfg = """
[plugins.test_a]
rules = [ { stage = "connect", contains = "127.0.0.1", verdict = "reject", text = "go away" } ]
"""
    gw = gateway_factory(cfg, binary=BIN, upstream_ports=[sink.port], pipeline=["test_a"])
    c = Client(gw.port)
    code, lines = c.reply()
    assert code == 554 and "go away" in lines[0]
    assert c.cmd("EHLO x.test")[0] == 503
    assert c.cmd("MAIL FROM:<a@b.test>")[0] == 503
    assert c.cmd("QUIT")[0] == 221

    cfg2 = """
[plugins.test_a]
rules = [ { stage = "connect", contains = "127.0.0.1", verdict = "tempfail", text = "busy" } ]
"""
    gw2 = gateway_factory(cfg2, binary=BIN, upstream_ports=[sink.port], pipeline=["test_a"])
    c2 = Client(gw2.port)
    code, lines = c2.reply()
    assert code == 421 and "busy" in lines[0]
    assert c2.closed()


def _concurrent_mail_seconds(gateway_factory, sink, block, sessions=6):
    """`sessions` clients on one worker thread each send MAIL at once; every MAIL hook waits 500 ms.
    Returns the seconds until the last reply."""
    cfg = """
[plugins.test_a]
delay = "500ms"
delay_stage = "mail"
block = %s
""" % ("true" if block else "false")
    gw = gateway_factory(cfg, binary=BIN, upstream_ports=[sink.port], pipeline=["test_a"], threads=1)
    clients = [open_session(gw.port) for _ in range(sessions)]
    t = time.monotonic()
    for c in clients:
        c.send("MAIL FROM:<a@x.test>\r\n")
    for c in clients:
        assert c.reply()[0] == 250
    elapsed = time.monotonic() - t
    for c in clients:
        c.close()
    gw.stop()
    return elapsed


def test_async_plugin_does_not_block_other_sessions(sink, gateway_factory):
    # Six 500 ms waits on one thread: overlapped they take about 0.5 s; one after the other (a hook
    # that blocks the thread) they cannot take less than 3 s. The control run proves the bound bites.
    assert _concurrent_mail_seconds(gateway_factory, sink, block=False) < 2.5
    assert _concurrent_mail_seconds(gateway_factory, sink, block=True) >= 3.0
