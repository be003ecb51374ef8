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


def one(gw, sender="alice@sender.test", rcpts=("bob@example.test",), body=MSG):
    return send_message(gw.port, sender=sender, rcpts=rcpts, body=body)


@pytest.mark.parametrize("stage", ["connect", "helo", "mail", "data", "eoh", "eom"])
def test_reject_and_tempfail_at_each_stage(sink, gateway_factory, milter, stage):
    m = milter({stage: "reject"})
    gw = start_gw(gateway_factory, sink, m)
    c = open_session(gw.port) if stage != "connect" and stage != "helo" else None
    if stage == "connect":
        from gwtest import Client
        c = Client(gw.port)
        code, lines = c.reply()
        assert code == 554 and "5.7.1" in lines[0]
        assert c.cmd("EHLO x.test")[0] == 503
        c.close()
    elif stage == "helo":
        from gwtest import Client
        c = Client(gw.port)
        assert c.reply()[0] == 220
        code, lines = c.cmd("EHLO x.test")
        assert code == 550 and "5.7.1" in lines[0]
        c.close()
    else:
        c.close()
        code, lines = one(gw)
        assert code == 550 and "5.7.1" in lines[0], lines
    m.set_script({stage: "tempfail"})
    if stage == "connect":
        from gwtest import Client
        c = Client(gw.port)
        code, lines = c.reply()
        assert code == 421 and "4.7" in lines[0]
        c.close()
    elif stage == "helo":
        from gwtest import Client
        c = Client(gw.port)
        c.reply()
        assert c.cmd("EHLO x.test")[0] == 451
        c.close()
    else:
        code, lines = one(gw)
        assert code == 451 and "4.7.1" in lines[0], lines
    assert sink.count() == 0


def test_rcpt_refusal_refuses_that_recipient_only(sink, gateway_factory, milter):
    m = milter({"rcpt": {"bad@example.test": "reject", "later@example.test": "tempfail",
                         "custom@example.test": "reply:553 5.1.7 no such mailbox here"}})
    gw = start_gw(gateway_factory, sink, m)
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<bad@example.test>")[0] == 550
    assert c.cmd("RCPT TO:<good@example.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<later@example.test>")
    assert code == 451 and "4.7.1" in lines[0]
    code, lines = c.cmd("RCPT TO:<custom@example.test>")
    assert code == 553 and lines[0] == "553 5.1.7 no such mailbox here", lines
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert sink.wait_count(1)
    assert sink.messages[0].rcpts == ["good@example.test"]


def test_reply_codes_valid_and_invalid(sink, gateway_factory, milter):
    m = milter({"mail": "reply:421 4.3.2 come back later"})
    gw = start_gw(gateway_factory, sink, m)
    code, lines = one(gw)
    assert code == 421 and lines[0] == "421 4.3.2 come back later"
    m.set_script({"eom": "reply:554 5.7.0 content refused by policy"})
    code, lines = one(gw)
    assert code == 554 and lines[0] == "554 5.7.0 content refused by policy"
    assert sink.count() == 0


def test_discard_is_a_refusal_never_a_silent_drop(sink, gateway_factory, milter):
    m = milter({"eom": "discard"})
    gw = start_gw(gateway_factory, sink, m)
    code, lines = one(gw)
    assert code == 550 and "5.7.1" in lines[0]
    m.set_script({"rcpt": {"x@example.test": "discard"}})
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<x@example.test>")[0] == 550
    assert c.cmd("RCPT TO:<y@example.test>")[0] == 550  # the transaction is discarded
    c.close()
    assert sink.count() == 0


def test_accept_ends_the_milters_part(sink, gateway_factory, milter):
    m = milter({"mail": "accept"})
    gw = start_gw(gateway_factory, sink, m)
    assert one(gw)[0] == 250
    assert m.wait_event("close", 2)
    kinds = [e["ev"] for e in m.session_with("mail")]
    assert "rcpt" not in kinds and "eom" not in kinds and "header" not in kinds
    m.set_script({"connect": "accept"})
    m.clear()
    assert one(gw)[0] == 250
    assert m.wait_event("close")
    assert not m.events("helo") and not m.events("mail")
    assert sink.wait_count(2)


def test_every_modification(sink, gateway_factory, milter):
    m = milter({"edits": [["add", "X-Added", "added value"], ["ins", 0, "X-Top", "at the top"],
                          ["ins", 2, "X-Third", "inserted"], ["chg", "Subject", 1, "changed subject"],
                          ["chg", "X-Remove", 2, ""], ["add", "X-Multi", "first\n\tsecond"],
                          ["body", "new body\nsecond line\n"], ["quarantine", "looks odd"]]})
    gw = start_gw(gateway_factory, sink, m)
    body = (b"From: a@sender.test\r\nX-Remove: one\r\nSubject: old\r\nX-Remove: two\r\nX-Remove: three\r\n"
            b"\r\noriginal body\r\n")
    code, lines = one(gw, body=body)
    assert code == 250, lines
    assert sink.wait_count(1)
    msg = sink.messages[0]
    head = msg.data.split(b"\r\n\r\n", 1)[0].decode()
    names = [l.split(":", 1)[0] for l in head.split("\r\n") if l and l[0] not in " \t"]
    # gateway headers (Received, quarantine) sit above the client's fields
    own = names[names.index("X-Top"):]
    assert own == ["X-Top", "From", "X-Third", "X-Remove", "Subject", "X-Remove", "X-Added", "X-Multi"], names
    assert msg.header("X-Remove") == ["one", "three"]
    assert msg.header("Subject") == ["changed subject"]
    assert msg.header("X-Milter-Quarantine") == ["looks odd"]
    assert b"X-Multi: first\r\n\tsecond\r\n" in msg.data
    assert msg.body == b"new body\r\nsecond line\r\n"


def test_protocol_skips_and_no_reply_steps(sink, gateway_factory, milter):
    m = milter({"protocol": ["nohdrs", "nr_rcpt", "noeoh"], "rcpt": {"r@example.test": "reject"}})
    gw = start_gw(gateway_factory, sink, m)
    # nr_rcpt: the gateway does not wait for (and libmilter does not send) a RCPT reply
    assert one(gw, rcpts=("r@example.test",))[0] == 250
    assert m.wait_event("eom")
    s = m.session_with("mail")
    kinds = [e["ev"] for e in s]
    assert "header" not in kinds and "eoh" not in kinds and "rcpt" in kinds and "eom" in kinds
    m.set_script({"protocol": ["nobody", "nomail"]})
    m.clear()
    assert one(gw)[0] == 250
    assert m.wait_event("eom")
    s = m.session_with("eom")
    assert not [e for e in s if e["ev"] == "mail"]
    assert [e for e in s if e["ev"] == "eom"][0]["body_bytes"] == 0
    assert sink.wait_count(2)


def test_big_body_in_chunks_and_skip(sink, gateway_factory, milter):
    m = milter()
    gw = start_gw(gateway_factory, sink, m)
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 200  # 200,000 octets of body
    assert one(gw, body=body)[0] == 250
    assert m.wait_event("eom")
    eom = m.events("eom")[0]
    assert eom["body_bytes"] == 200 * 1000 and max(eom["chunks"]) <= 65535 and len(eom["chunks"]) == 4
    m.set_script({"body": "skip"})
    m.clear()
    assert one(gw, body=body)[0] == 250
    assert m.wait_event("eom")
    assert m.events("eom")[0]["chunks"] == [65535]  # skip: no more body, straight to EOM
    assert sink.wait_count(2) and sink.messages[1].body == line * 200


def test_progress_keeps_waiting(sink, gateway_factory, milter):
    m = milter({"progress": 4, "edits": [["add", "X-Slow", "yes"]]})
    gw = start_gw(gateway_factory, sink, m, command_timeout="3s")
    code, lines = one(gw)
    assert code == 250, lines  # 4 s of work, but progress every second restarts the 3 s timeout
    assert sink.wait_count(1) and sink.messages[0].header("X-Slow") == ["yes"]


def test_several_servers_in_order_first_refusal_ends_the_stage(sink, gateway_factory, milter):
    m1 = milter({"edits": [["add", "X-First", "1"]]}, name="first")
    m2 = milter({"edits": [["add", "X-Second", "2"]], "rcpt": {"no@example.test": "reject"}}, name="second")
    gw = start_gw(gateway_factory, sink, m1, m2)
    assert one(gw, rcpts=("yes@example.test", "no@example.test"))[0] == 250
    assert sink.wait_count(1)
    msg = sink.messages[0]
    assert msg.header("X-First") == ["1"] and msg.header("X-Second") == ["2"]
    assert msg.rcpts == ["yes@example.test"]
    # each milter gets the message as the milters before it left it
    assert any(h["name"] == "X-First" for h in m2.events("header"))
    assert not any(h["name"] == "X-Second" for h in m1.events("header"))
    m1.set_script({"mail": "reject"})
    m1.clear()
    m2.clear()
    assert one(gw)[0] == 550
    assert m1.wait_event("mail")
    assert not m2.events("mail")  # the first refusal ended the stage


def test_ipv6_client_family_and_address(sink, gateway_factory, milter):
    m = milter()
    gw = gateway_factory(milter_config(m), pipeline=["milter"], upstream_ports=[sink.port], proxy_protocol=True)
    from gwtest import Client
    c = Client(gw.port)
    c.send("PROXY TCP6 2001:db8::5 2001:db8::1 40001 25\r\n")
    assert c.reply()[0] == 220
    assert c.cmd("EHLO v6.client.test")[0] == 250
    c.cmd("QUIT")
    c.close()
    assert m.wait_event("helo")
    conn = [e for e in m.session_with("helo") if e["ev"] == "connect"][0]
    assert conn["family"] == 10 and conn["addr"][0] == "2001:db8::5" and conn["addr"][1] == 40001, conn
    assert conn["macros"]["{client_addr}"] == "2001:db8::5"


def test_header_leading_space_negotiated(sink, gateway_factory, milter):
    m = milter({"protocol": ["leadspc"], "edits": [["add", "X-Lead", " spaced value"], ["chg", "Subject", 1, " new"]]})
    gw = start_gw(gateway_factory, sink, m)
    assert one(gw, body=b"Subject:  two spaces\r\nX-Folded: a\r\n\tb\r\n\r\nbody\r\n")[0] == 250
    hdrs = [(h["name"], h["value"]) for h in m.events("header")]
    assert hdrs == [("Subject", "  two spaces"), ("X-Folded", " a\n\tb")]
    assert sink.wait_count(1)
    data = sink.messages[0].data
    assert b"\r\nX-Lead: spaced value\r\n" in data and b"\r\nSubject: new\r\n" in data


def test_setsymlist_limits_the_macros(sink, gateway_factory, milter):
    m = milter({"symlist": {"mail": ["{mail_addr}"], "connect": ["j"]}})
    gw = start_gw(gateway_factory, sink, m)
    assert one(gw)[0] == 250
    assert m.wait_event("eom")
    s = m.session_with("mail")
    mail = [e for e in s if e["ev"] == "mail"][0]
    # libmilter keeps earlier stages' macros visible (j from connect); "i" was not asked for at MAIL
    assert mail["macros"]["{mail_addr}"] == "alice@sender.test" and "i" not in mail["macros"], mail
    conn = [e for e in s if e["ev"] == "connect"][0]
    assert conn["macros"] == {"j": "gw.test"}, conn
    rcpt = [e for e in s if e["ev"] == "rcpt"][0]
    assert rcpt["macros"]["{rcpt_addr}"] == "bob@example.test"  # stages without a list get every macro
