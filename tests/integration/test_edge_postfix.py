"""XCLIENT towards a real Postfix smtpd (Debian's), started by the test as a private instance on
loopback with smtpd_authorized_xclient_hosts = 127.0.0.0/8, relaying in-line to the recording sink.
Postfix must see, log and check the real client, not the gateway."""
import os
import shutil

import pytest

from gwtest import Client, transaction
from edgetest import (PostfixInstance, TlsClient, crypt_hash, gateway_config, make_cert, plain, start_gateway)

pytestmark = pytest.mark.skipif(not shutil.which("postfix") or os.geteuid() != 0,
                                reason="needs Debian's postfix and root to start a private instance")


@pytest.fixture
def postfix(tmp_path, sink):
    pf = PostfixInstance(tmp_path, sink.port)
    pf.start()
    yield pf
    pf.stop()


def proxied_session(port, address, helo):
    c = Client(port)
    c.send("PROXY TCP4 %s 192.0.2.1 40123 25\r\n" % address)
    code, lines = c.reply()
    assert code == 220, lines
    code, lines = c.cmd("EHLO " + helo)
    assert code == 250, lines
    return c


def test_postfix_accepts_xclient_and_sees_the_real_client(tmp_path, sink, postfix):
    config = gateway_config([dict(proxy_protocol=True)], upstream="xclient = true\n", trusted=[], relay=[])
    gw = start_gateway(tmp_path, config, [postfix.port])
    try:
        c = proxied_session(gw.port, "203.0.113.50", "real-client.test")
        code, lines = transaction(c, rcpts=("bob@example.test",))
        assert code == 250, (lines, postfix.maillog()[-2000:])
        assert sink.wait_count(1)
        received = sink.messages[0].header("Received")
        # Postfix wrote the hop's Received line with the client's own HELO and address...
        assert "from real-client.test (unknown [203.0.113.50])" in received[0], received
        assert "by postfix.test (Postfix)" in received[0], received
        # ...and the gateway did not add one of its own
        assert not any("smtp-gateway" in r for r in received), received
        assert "127.0.0.1" not in received[0]
        assert postfix.wait_log("client=unknown[203.0.113.50]"), postfix.maillog()[-2000:]
        assert postfix.wait_log("helo=<real-client.test>"), postfix.maillog()[-2000:]

        # Postfix's own checks run on the real client: 203.0.113.50 is not in its mynetworks, so
        # relaying elsewhere is refused by Postfix, and the gateway passes that reply on
        c = proxied_session(gw.port, "203.0.113.51", "other-client.test")
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<x@elsewhere.test>")
        assert code == 554 and "Relay access denied" in lines[0], lines
        assert postfix.wait_log("reject: RCPT from unknown[203.0.113.51]"), postfix.maillog()[-2000:]
    finally:
        gw.stop()


def test_without_xclient_postfix_sees_the_gateway_and_the_gateway_adds_received(tmp_path, sink, postfix):
    config = gateway_config([dict(proxy_protocol=True)], upstream="xclient = false\n", trusted=[], relay=[])
    gw = start_gateway(tmp_path, config, [postfix.port])
    try:
        c = proxied_session(gw.port, "203.0.113.52", "real-client.test")
        code, lines = transaction(c, rcpts=("bob@example.test",))
        assert code == 250, lines
        assert sink.wait_count(1)
        received = sink.messages[0].header("Received")
        assert "[127.0.0.1]" in received[0] and "by postfix.test (Postfix)" in received[0], received
        assert "by gw.test (smtp-gateway)" in received[1] and "[203.0.113.52]" in received[1], received
    finally:
        gw.stop()


def test_postfix_takes_xclient_login_and_ipv6(tmp_path, sink, postfix):
    """An authenticated session's user goes to Postfix as XCLIENT LOGIN; an IPv6 client as IPV6:addr."""
    cert, key = make_cert(tmp_path)
    users = str(tmp_path / "users")
    with open(users, "w") as f:
        f.write("alice:%s\n" % crypt_hash("pw", "$6$"))
    config = gateway_config([dict(proxy_protocol=True, role="submission", tls="implicit")],
                            upstream="xclient = true\n", trusted=[], relay=[],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n[auth]\nusers_file = "%s"\n'
                                 % (cert, key, users))
    gw = start_gateway(tmp_path, config, [postfix.port])
    try:
        c = TlsClient(gw.port)
        c.send("PROXY TCP6 2001:db8::77 2001:db8::1 40124 465\r\n")
        c.sock = c.ctx.wrap_socket(c.sock, server_hostname="gw.test")
        assert c.reply()[0] == 220
        c.ehlo("laptop.example.test")
        code, lines = c.cmd("AUTH PLAIN " + plain("alice", "pw"))
        assert code == 235, lines
        # (this Postfix has no SASL of its own, so LOGIN= is logged, not a relay permit: send to a
        # domain Postfix relays for)
        code, lines = transaction(c, rcpts=("bob@example.test",))
        assert code == 250, (lines, postfix.maillog()[-1500:])
        assert sink.wait_count(1)
        received = sink.messages[0].header("Received")[0]
        assert "from laptop.example.test (unknown [IPv6:2001:db8::77])" in received, received
        assert postfix.wait_log("client=unknown[2001:db8::77]"), postfix.maillog()[-1500:]
        assert postfix.wait_log("sasl_username=alice"), postfix.maillog()[-1500:]
    finally:
        gw.stop()
