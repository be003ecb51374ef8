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
