"""Every reply and limit of the README's SMTP behaviour table, against the real binary."""
import socket
import time

from gwtest import Client, open_session, send_message


def test_greeting_ehlo_and_extensions(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_message_size=1048576)
    c = Client(gw.port)
    code, lines = c.reply()
    assert code == 220 and "gw.test" in lines[0]
    code, lines = c.cmd("EHLO client.test")
    assert code == 250
    exts = [l[4:] for l in lines[1:]]
    for e in ("PIPELINING", "SIZE 1048576", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
        assert e in exts, exts
    assert c.cmd("HELO client.test")[0] == 250
    assert c.cmd("NOOP")[0] == 250
    code, lines = c.cmd("VRFY bob")
    assert code == 252 and lines[0].startswith("252 2.")
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("RSET")[0] == 250
    code, lines = c.cmd("QUIT")
    assert code == 221 and lines[0].startswith("221 2.0.0")
    assert c.closed()


def test_unknown_command_bad_sequence_and_syntax(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = Client(gw.port)
    c.reply()
    code, lines = c.cmd("MAIL FROM:<a@b.test>")
    assert code == 503 and "5.5.1" in lines[0]
    code, lines = c.cmd("FROB")
    assert code == 500 and "5.5.1" in lines[0]
    code, lines = c.cmd("EHLO")
    assert code == 501 and "5.5.4" in lines[0]
    c.cmd("EHLO client.test")
    code, lines = c.cmd("RCPT TO:<b@example.test>")
    assert code == 503 and "5.5.1" in lines[0]
    code, lines = c.cmd("DATA")
    assert code == 503 and "5.5.1" in lines[0]
    code, lines = c.cmd("MAIL FROM:a@b.test")
    assert code == 501 and "5.5.4" in lines[0]
    code, lines = c.cmd("MAIL FROM:<a@@b>")
    assert code == 501 and "5.5.4" in lines[0]
    code, lines = c.cmd("MAIL FROM:<a@b.test> FOO=BAR")
    assert code == 555 and "5.5.4" in lines[0]
    assert c.cmd("MAIL FROM:<a@b.test>")[0] == 250
    code, lines = c.cmd("MAIL FROM:<a@b.test>")
    assert code == 503 and "5.5.1" in lines[0]
    code, lines = c.cmd("RCPT TO:<>")
    assert code == 501
    code, lines = c.cmd("DATA")
    assert code == 503 and "5.5.1" in lines[0]
    code, lines = c.cmd("DATA extra")
    assert code == 501
    c.close()
    assert sink.count() == 0


def test_command_line_too_long(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    code, lines = c.cmd("NOOP " + "x" * 1200)
    assert code == 500 and "5.5.2" in lines[0]
    # the session goes on
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_too_many_recipients(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_recipients=3)
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    for i in range(3):
        assert c.cmd("RCPT TO:<r%d@example.test>" % i)[0] == 250
    code, lines = c.cmd("RCPT TO:<r9@example.test>")
    assert code == 452 and "4.5.3" in lines[0]
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    assert sink.wait_count(1)
    assert sink.messages[0].rcpts == ["r0@example.test", "r1@example.test", "r2@example.test"]


def test_too_big_declared_and_actual(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_message_size=10000)
    c = open_session(gw.port)
    code, lines = c.cmd("MAIL FROM:<a@sender.test> SIZE=20000")
    assert code == 552 and "5.3.4" in lines[0]
    assert c.cmd("MAIL FROM:<a@sender.test> SIZE=500")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(("x" * 100 + "\r\n") * 200 + ".\r\n")
    code, lines = c.reply()
    assert code == 552 and "5.3.4" in lines[0]
    # the session is usable after the refusal
    assert c.cmd("NOOP")[0] == 250
    c.close()
    time.sleep(0.2)
    assert sink.count() == 0


def test_data_line_too_long(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<b@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: x\r\n\r\n" + "y" * 1500 + "\r\n.\r\n")
    code, lines = c.reply()
    assert code in (500, 552) and ("5.5.2" in lines[0] or "5.3.4" in lines[0])
    c.close()
    assert sink.count() == 0


def test_command_timeout(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], command_timeout="1s")
    c = Client(gw.port)
    c.reply()
    c.send("EHLO sl")  # no CRLF: the line never completes
    time.sleep(0.6)
    c.send("ow")
    code, lines = c.reply()
    assert code == 421 and "4.4.2" in lines[0]
    assert c.closed()


def test_data_timeout(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], data_timeout="1s")
    c = open_session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<b@example.test>")
    assert c.cmd("DATA")[0] == 354
    for _ in range(4):
        c.send("trickle\r\n")
        time.sleep(0.4)
    code, lines = c.reply()
    assert code == 421 and "4.4.2" in lines[0]
    assert c.closed()
    assert sink.count() == 0


def test_max_connections(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_connections=2)

    def held():
        # the start-up probe's connection may still count for a moment: retry a 421
        for _ in range(50):
            c = Client(gw.port)
            if c.reply()[0] == 220:
                return c
            c.close()
            time.sleep(0.1)
        raise AssertionError("no free connection slot")

    a = held()
    b = held()
    c = Client(gw.port)
    code, lines = c.reply()
    assert code == 421 and "4.7.0" in lines[0]
    assert c.closed()
    a.cmd("QUIT")
    a.close()
    d = held()  # the slot a freed is reused
    assert d.cmd("NOOP")[0] == 250
    assert b.cmd("NOOP")[0] == 250
    assert gw.metric("smtpgw_connections_refused_total") >= 1


def test_smtputf8_and_8bitmime(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    code, lines = c.cmd("MAIL FROM:<jöran@bücher.test>")
    assert code == 553 and "5.6.7" in lines[0]
    assert c.cmd("MAIL FROM:<jöran@bücher.test> SMTPUTF8 BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<ünïcode@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: ü\r\n\r\nGrüße\r\n.\r\n".encode())
    assert c.reply()[0] == 250
    assert sink.wait_count(1)
    assert sink.messages[0].body == "Grüße\r\n".encode()


def test_swaks_client(sink, gateway_factory):
    import subprocess
    gw = gateway_factory(None, upstream_ports=[sink.port])
    out = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % gw.port, "--from", "alice@sender.test",
                          "--to", "bob@example.test", "--header", "Subject: swaks", "--body", "via swaks",
                          "--pipeline"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sink.wait_count(1)
    assert b"via swaks" in sink.messages[0].body
    assert sink.messages[0].header("Subject") == ["swaks"]
