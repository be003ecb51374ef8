"""End to end: a message through the real binary to the recording sink."""
from gwtest import send_message


def test_message_reaches_upstream_with_received(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    code, lines = send_message(gw.port)
    assert code == 250, lines
    assert sink.wait_count(1)
    msg = sink.messages[0]
    assert msg.mail_from == "alice@sender.test"
    assert msg.rcpts == ["bob@example.test"]
    received = msg.header("Received")
    assert received and "by gw.test (smtp-gateway)" in received[0]
    assert msg.body == b"hello\r\n"


def test_sink_never_shows_an_acknowledged_message_late(sink, gateway_factory):
    """The 250 reaches the client before the sink records the message (record_delay widens that
    window to 300 ms); a read of `sink.messages` right after the 250, without waiting, must still see
    it, because the snapshot is taken under the lock that covers the 250 and the record together."""
    sink.record_delay = 0.3
    gw = gateway_factory(None, upstream_ports=[sink.port])
    for i in range(3):
        code, lines = send_message(gw.port, body=b"Subject: n%d\r\n\r\nhello\r\n" % i)
        assert code == 250, lines
        assert len(sink.messages) == i + 1  # no wait_count: this is the race being tested


def test_gateway_start_survives_a_port_taken_by_another_process(sink, tmp_path, monkeypatch):
    """free_port() then bind is a window every test shares: another process holds the port chosen
    first, and Gateway.start() starts the gateway on fresh ports instead of failing or, worse,
    taking the other process's listening socket for the gateway's."""
    import socket
    import gwtest
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    real = gwtest.free_port
    first = [True]

    def free_port():
        if first[0]:
            first[0] = False
            return taken
        return real()

    monkeypatch.setattr(gwtest, "free_port", free_port)
    try:
        gw = gwtest.Gateway(tmp_path, upstream_ports=[sink.port]).start()
        assert gw.port != taken
        assert gw.port in gwtest.listening_ports(gw.proc.pid)
        code, lines = send_message(gw.port)
        assert code == 250, lines
    finally:
        squatter.close()
