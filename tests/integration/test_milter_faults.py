"""milter faults: a milter that is down, hangs, dies mid-body or answers garbage. The client always
gets a reply within the timeouts, nothing a filter refused reaches the upstream, and every message
the client was told is accepted reached it (acknowledged = received)."""
import time

import pytest

from gwtest import Client, free_port, open_session, send_message
from miltertest import RawMilter


def cfg(address, on_error="tempfail", command_timeout="1s"):
    return """
[plugins.milter]
[[plugins.milter.servers]]
name = "raw"
address = "%s"
connect_timeout = "1s"
command_timeout = "%s"
on_error = "%s"
""" % (address, command_timeout, on_error)


@pytest.fixture
def raw():
    made = []

    def make(*a, **kw):
        m = RawMilter(*a, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


def gw_for(gateway_factory, sink, address, **kw):
    return gateway_factory(cfg(address, **kw), pipeline=["milter"], upstream_ports=[sink.port])


BODY = b"Subject: t\r\n\r\n" + b"y" * 998 + b"\r\n" * 1 + (b"z" * 500 + b"\r\n") * 300


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


@pytest.mark.parametrize("fault,mode", [(b"E", "hang"), (b"B", "die"), (b"E", "garbage"), (b"L", "garbage"),
                                        (b"B", "hang")])
def test_fault_in_the_message_gives_451_and_nothing_upstream(sink, gateway_factory, raw, fault, mode):
    m = raw(mode, fault_at=fault)
    gw = gw_for(gateway_factory, sink, m.address)
    (code, lines), took = timed(lambda: send_message(gw.port, body=BODY))
    assert code == 451 and "4.7.1" in lines[0], lines
    assert took < 5  # command_timeout is 1 s
    assert sink.count() == 0
    assert "milter_error" in gw.log()


@pytest.mark.parametrize("fault,mode", [(b"E", "hang"), (b"B", "die"), (b"E", "garbage")])
def test_fault_with_on_error_accept_delivers(sink, gateway_factory, raw, fault, mode):
    m = raw(mode, fault_at=fault)
    gw = gw_for(gateway_factory, sink, m.address, on_error="accept")
    (code, lines), took = timed(lambda: send_message(gw.port, body=BODY))
    assert code == 250, lines
    assert took < 5
    assert sink.wait_count(1) and sink.messages[0].data.endswith((b"z" * 500 + b"\r\n"))


def test_garbage_lengths_never_trusted(sink, gateway_factory, raw):
    # a length of 2^32-1 must not make the gateway wait for (or allocate) 4 GiB
    m = raw("garbage", fault_at=b"R", garbage=b"\xff\xff\xff\xffc")
    gw = gw_for(gateway_factory, sink, m.address, command_timeout="30s")
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    t = time.monotonic()
    code, lines = c.cmd("RCPT TO:<b@example.test>")
    assert code == 451 and time.monotonic() - t < 5
    assert c.cmd("RCPT TO:<c@example.test>")[0] == 451  # still failed in this transaction
    assert c.cmd("RSET")[0] == 250
    c.close()
    assert sink.count() == 0
    assert "bad packet length" in gw.log()


def test_milter_down_tempfails_at_mail_and_accept_skips_it(sink, gateway_factory):
    address = "inet:127.0.0.1:%d" % free_port()
    gw = gw_for(gateway_factory, sink, address)
    c = Client(gw.port)
    assert c.reply()[0] == 220  # the greeting does not depend on the milter
    assert c.cmd("EHLO x.test")[0] == 250
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 451 and "4.7.1" in lines[0]
    c.close()
    gw2 = gw_for(gateway_factory, sink, "unix:/nonexistent/milter.sock", on_error="accept")
    assert send_message(gw2.port)[0] == 250
    assert sink.wait_count(1)


def test_hang_at_connect_is_bounded(sink, gateway_factory, raw):
    m = raw("hang", fault_at=b"C")
    gw = gw_for(gateway_factory, sink, m.address)
    t = time.monotonic()
    c = Client(gw.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO x.test")[0] == 250
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 451  # the next MAIL tried a fresh connection, which hung again
    assert time.monotonic() - t < 8
    c.close()


def test_recovers_at_the_next_transaction(sink, gateway_factory, raw):
    m = raw("die", fault_at=b"E")
    gw = gw_for(gateway_factory, sink, m.address)
    c = open_session(gw.port)

    def tx():
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        return c.reply()[0]

    assert tx() == 451
    m.mode = "ok"
    assert tx() == 250  # a fresh milter connection at MAIL
    c.close()
    assert sink.wait_count(1) and sink.count() == 1


def test_acknowledged_equals_received_under_flapping_milter(sink, gateway_factory, raw):
    m = raw("ok", fault_at=b"E")
    gw = gw_for(gateway_factory, sink, m.address)
    acked = 0
    for i in range(12):
        m.mode = ("die", "ok", "garbage", "ok")[i % 4]
        code, _ = send_message(gw.port, body=b"Subject: n%d\r\n\r\nbody\r\n" % i)
        assert code in (250, 451)
        acked += code == 250
    assert acked == 6
    assert sink.wait_count(acked) and sink.count() == acked
    assert sorted(int(msg.header("Subject")[0][1:]) for msg in sink.messages) == [1, 3, 5, 7, 9, 11]


def test_command_order_on_the_wire(sink, gateway_factory, raw):
    m = raw("ok")
    gw = gw_for(gateway_factory, sink, m.address)
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<c@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\nTo: b@example.test\r\n\r\n" + (b"q" * 998 + b"\r\n") * 70 + b".\r\n")
    assert c.reply()[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()
    from miltertest import wait_for
    ours = lambda: [s for s in m.sessions() if b"M" in s]  # not the gateway start's probe session
    assert wait_for(lambda: ours() and b"Q" in ours()[0], 10)
    seq = b"".join(x for x in ours()[0] if x != b"D")  # without the macro packets
    assert seq == b"OCHMRAMRRTLLNBBEQ", seq


def test_milter_restart_between_transactions_costs_nothing(sink, gateway_factory, raw):
    m = raw("ok")
    gw = gw_for(gateway_factory, sink, m.address)
    c = open_session(gw.port)

    def tx():
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        return c.reply()[0]

    assert tx() == 250
    import socket as so
    for conn in list(m.conns):  # the milter drops its connections, as a restart does
        conn.shutdown(so.SHUT_RDWR)
    assert tx() == 250
    c.close()
    assert sink.wait_count(2)
    assert "milter_reconnect" in gw.log() and "milter_error" not in gw.log()


def test_endless_progress_is_capped(sink, gateway_factory, raw):
    m = raw("progress", fault_at=b"E")
    gw = gw_for(gateway_factory, sink, m.address, command_timeout="300ms")
    (code, lines), took = timed(lambda: send_message(gw.port))
    assert code == 451, lines
    assert 2.5 <= took < 10  # at most 10 command timeouts in all, however often it says progress
    assert "still only progress" in gw.log() and sink.count() == 0
