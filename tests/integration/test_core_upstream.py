"""In-line forwarding: the client's reply is always the upstream's, or a 4xx when the upstream fails."""
import socket
import subprocess
import threading
import time

from gwtest import Client, RecordingSink, free_port, open_session, send_message, wait_port


def test_upstream_down_gives_4xx(gateway_factory):
    dead = free_port()
    gw = gateway_factory(None, upstream_ports=[dead])
    c = open_session(gw.port)
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert 400 <= code < 500 and "4.4." in lines[0]
    c.close()


def test_failover_to_second_server(sink, gateway_factory):
    dead = free_port()
    gw = gateway_factory(None, upstream_ports=[dead, sink.port])
    for _ in range(3):
        code, lines = send_message(gw.port)
        assert code == 250, lines
    assert sink.count() == 3


def test_failed_server_retried_after_a_second(gateway_factory):
    first_port = free_port()
    second = RecordingSink()
    second.start()
    try:
        gw = gateway_factory(None, upstream_ports=[first_port, second.port])
        assert send_message(gw.port)[0] == 250
        first = RecordingSink(port=first_port)
        first.start()
        try:
            time.sleep(1.2)
            assert send_message(gw.port)[0] == 250
            assert first.count() == 1, "the first server must be used again once it is back"
        finally:
            first.stop()
    finally:
        second.stop()


def test_rcpt_replies_are_relayed(sink, gateway_factory):
    sink.rcpt_reply = lambda a: "550 5.1.1 <%s>: User unknown" % a if a.startswith("nobody") else (
        "450 4.2.1 mailbox busy" if a.startswith("busy") else None)
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<nobody@example.test>")
    assert code == 550 and "5.1.1" in lines[0] and "User unknown" in lines[0]
    code, lines = c.cmd("RCPT TO:<busy@example.test>")
    assert code == 450 and "4.2.1" in lines[0]
    assert c.cmd("RCPT TO:<ok@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: x\r\n\r\nb\r\n.\r\n")
    assert c.reply()[0] == 250
    assert sink.wait_count(1)
    assert sink.messages[0].rcpts == ["ok@example.test"]


def test_mail_from_rejected_by_upstream(sink, gateway_factory):
    sink.mail_reply = lambda a: "553 5.7.1 sender refused" if "spam" in a else None
    gw = gateway_factory(None, upstream_ports=[sink.port])
    code, lines = send_message(gw.port, sender="spam@sender.test")
    assert code == 553 and "sender refused" in lines[0]


def test_end_of_data_4xx_and_5xx_are_relayed(sink, gateway_factory):
    sink.data_reply = lambda m: ("452 4.3.1 insufficient storage" if b"temp" in m.body else
                                 ("554 5.7.1 content rejected" if b"perm" in m.body else None))
    gw = gateway_factory(None, upstream_ports=[sink.port])
    code, lines = send_message(gw.port, body="Subject: a\r\n\r\ntemp\r\n")
    assert code == 452 and "4.3.1" in lines[0]
    code, lines = send_message(gw.port, body="Subject: a\r\n\r\nperm\r\n")
    assert code == 554 and "content rejected" in lines[0]
    assert send_message(gw.port)[0] == 250
    assert sink.count() == 1


def test_data_command_refused_by_upstream(sink, gateway_factory):
    sink.data_cmd_reply = "554 5.5.1 no DATA for you"
    gw = gateway_factory(None, upstream_ports=[sink.port])
    code, lines = send_message(gw.port)
    assert code == 554
    sink.data_cmd_reply = "250 2.0.0 ok but wrong"
    code, lines = send_message(gw.port)
    assert 400 <= code < 500, "a 2xx where 354 belongs is a temporary failure, never success"
    assert sink.count() == 0


def test_upstream_drops_mid_data(sink, gateway_factory):
    sink.drop_mid_data = 2000
    gw = gateway_factory(None, upstream_ports=[sink.port])
    code, lines = send_message(gw.port, body="Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 200)
    assert 400 <= code < 500 and "4.4." in lines[0]
    assert sink.count() == 0
    sink.drop_mid_data = None
    assert send_message(gw.port)[0] == 250


def test_slow_250_is_waited_for(sink, gateway_factory):
    sink.data_delay = 2.0
    gw = gateway_factory(None, upstream_ports=[sink.port])
    t = time.monotonic()
    code, _ = send_message(gw.port)
    assert code == 250
    assert time.monotonic() - t >= 2.0
    assert sink.count() == 1


def test_upstream_timeout_is_4xx(sink, gateway_factory):
    sink.data_delay = 3.0
    gw = gateway_factory(None, upstream_ports=[sink.port], upstream_timeout="1s")
    code, lines = send_message(gw.port)
    assert 400 <= code < 500


def _garbage_upstream(reply_after_data):
    """An upstream that answers the end of data with `reply_after_data` (raw bytes)."""
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(5)

    def run():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            f = conn.makefile("rb")
            conn.sendall(b"220 garbage.test\r\n")
            while True:
                line = f.readline()
                if not line:
                    break
                v = line[:4].upper()
                if v == b"EHLO":
                    conn.sendall(b"250-garbage.test\r\n250 PIPELINING\r\n")
                elif v == b"DATA":
                    conn.sendall(b"354 go\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    conn.sendall(reply_after_data)
                elif v == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    return port, srv


def test_garbage_or_cut_reply_is_never_success(gateway_factory):
    for bad in (b"250-first line only\r\n", b"hello there\r\n", b"251 2.0.0 not quite\r\n", b"25"):
        port, srv = _garbage_upstream(bad)
        try:
            gw = gateway_factory(None, upstream_ports=[port], upstream_timeout="2s")
            code, lines = send_message(gw.port)
            assert 400 <= code < 500, (bad, code, lines)
        finally:
            srv.close()


def test_through_postfix_smtp_sink(tmp_path, gateway_factory):
    port = free_port()
    import pathlib
    import tempfile
    dump = pathlib.Path(tempfile.mkdtemp(prefix="gw-sink-"))  # smtp-sink writes as nobody
    dump.chmod(0o777)
    sinkp = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", str(dump) + "/%M.", "127.0.0.1:%d" % port, "50"])
    try:
        assert wait_port(port)
        gw = gateway_factory(None, upstream_ports=[port])
        for i in range(5):
            assert send_message(gw.port, body="Subject: n%d\r\n\r\nbody %d\r\n" % (i, i))[0] == 250
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(list(dump.iterdir())) < 5:
            time.sleep(0.05)
        files = list(dump.iterdir())
        assert len(files) == 5
        assert all(b"smtp-gateway" in f.read_bytes() for f in files)
    finally:
        sinkp.terminate()
        sinkp.wait()


def test_client_quits_mid_transaction_nothing_delivered(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<b@example.test>")
    c.cmd("DATA")
    c.send("Subject: partial\r\n\r\nhalf a mess")
    c.close()
    time.sleep(0.5)
    assert sink.count() == 0
    assert send_message(gw.port)[0] == 250


def test_several_transactions_one_session(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    for i in range(3):
        assert c.cmd("MAIL FROM:<a%d@sender.test>" % i)[0] == 250
        assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: %d\r\n\r\nx\r\n.\r\n" % i)
        assert c.reply()[0] == 250
    assert c.cmd("MAIL FROM:<r@sender.test>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    c.cmd("QUIT")
    assert sink.wait_count(3)
    assert [m.mail_from for m in sink.messages] == ["a0@sender.test", "a1@sender.test", "a2@sender.test"]
    assert sink.connections == 1


def test_connect_at_ehlo_or_mail(sink, gateway_factory):
    early = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(early.port)
    assert sink.wait_count(0) and _wait(lambda: sink.connections == 1), "connect_at = ehlo opens at EHLO"
    c.close()
    late_sink = RecordingSink()
    late_sink.start()
    try:
        late = gateway_factory(None, upstream_ports=[late_sink.port])
        # connect_at lives in [upstream]: rewrite this gateway's config and restart it
        late.stop()
        text = open(late.config_path).read().replace("[upstream]\n", '[upstream]\nconnect_at = "mail"\n', 1)
        open(late.config_path, "w").write(text)
        late.start()
        c = open_session(late.port)
        time.sleep(0.5)
        assert late_sink.connections == 0, "connect_at = mail: nothing upstream before MAIL"
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        assert late_sink.connections == 1
        c.close()
    finally:
        late_sink.stop()


def _wait(cond, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()
