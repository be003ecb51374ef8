"""milter plugin against the scriptable pymilter (libmilter): every stage and macro, the protocol
skips, every reply kind, per-recipient refusals, every modification, quarantine, several servers,
unix and inet sockets."""
import pytest

from gwtest import open_session, send_message
from miltertest import ScriptMilter, wait_for


def milter_config(*milters, on_error="tempfail", command_timeout="10s"):
    out = "\n[plugins.milter]\n"
    for i, m in enumerate(milters):
        out += """
[[plugins.milter.servers]]
name = "m%d"
address = "%s"
connect_timeout = "5s"
command_timeout = "%s"
on_error = "%s"
""" % (i + 1, m.address, command_timeout, on_error)
    return out


@pytest.fixture
def milter(tmp_path):
    started = []

    def make(script=None, unix=False, name=None):
        m = ScriptMilter(tmp_path, script, unix=unix, name=name or "m%d" % (len(started) + 1))
        m.start()
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


def start_gw(gateway_factory, sink, *milters, **kw):
    return gateway_factory(milter_config(*milters, **kw), pipeline=["milter"], upstream_ports=[sink.port])


MSG = (b"From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n"
       b"X-Folded: one\r\n two\r\n\r\nline 1\r\n.dot line\r\nline 3\r\n")


def test_every_stage_macros_and_delivery(sink, gateway_factory, milter):
    m = milter()
    gw = start_gw(gateway_factory, sink, m)
    c = open_session(gw.port, helo="client.example")
    assert c.cmd("MAIL FROM:<alice@sender.test> SIZE=300 BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<carol@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(MSG.replace(b"\r\n.dot", b"\r\n..dot") + b".\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    assert sink.wait_count(1)
    assert m.wait_event("close", 2)
    ev = m.session_with("mail")
    kinds = [e["ev"] for e in ev]
    assert kinds[:4] == ["negotiate", "connect", "helo", "mail"], kinds
    conn = ev[1]
    assert conn["hostname"] == "unknown" and conn["addr"][0] == "127.0.0.1" and conn["family"] == 2
    assert conn["macros"]["j"] == "gw.test" and conn["macros"]["{daemon_name}"] == "smtp-gateway"
    assert conn["macros"]["{client_addr}"] == "127.0.0.1" and conn["macros"]["{client_name}"] == "unknown"
    assert ev[2]["name"] == "client.example"
    mail = ev[3]
    assert mail["addr"] == "<alice@sender.test>" and mail["params"] == ["SIZE=300", "BODY=8BITMIME"]
    assert mail["macros"]["{mail_addr}"] == "alice@sender.test" and len(mail["macros"]["i"]) > 4
    rcpts = m.events("rcpt")
    assert [r["addr"] for r in rcpts] == ["<bob@example.test>", "<carol@example.test>"]
    assert rcpts[1]["macros"]["{rcpt_addr}"] == "carol@example.test"
    assert rcpts[0]["macros"]["i"] == mail["macros"]["i"]
    hdrs = [(h["name"], h["value"]) for h in m.events("header")]
    assert hdrs == [("From", "Alice <alice@sender.test>"), ("To", "bob@example.test"), ("Subject", "hello"),
                    ("X-Folded", "one\n two")]
    assert kinds.index("data") < kinds.index("header") < kinds.index("eoh") < kinds.index("eom") < kinds.index("close")
    eom = m.events("eom")[0]
    assert eom["body_bytes"] == len(b"line 1\r\n.dot line\r\nline 3\r\n")
    assert eom["head"].startswith("line 1\r\n.dot line")
    msg = sink.messages[0]
    assert msg.body == b"line 1\r\n.dot line\r\nline 3\r\n"
    assert "abort" not in kinds  # the message ended with EOM: nothing to abort


def test_unix_socket_and_several_transactions_abort_between(sink, gateway_factory, milter):
    m = milter(unix=True)
    gw = start_gw(gateway_factory, sink, m)
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a2@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    assert m.wait_event("close", 2)
    kinds = [e["ev"] for e in m.session_with("mail")]
    assert kinds.count("connect") == 1  # one connection for the whole session
    assert kinds.index("abort") < [i for i, k in enumerate(kinds) if k == "mail"][1]
    assert sink.wait_count(1) and sink.messages[0].mail_from == "a2@sender.test"
