"""HAProxy PROXY protocol v1/v2 on proxy_protocol listeners: the real client address moves into the
transaction (Received, XCLIENT ADDR, trust and relay decisions, logs)."""
import socket
import struct
import time

import pytest

from gwtest import Client, transaction
from edgetest import BioTlsClient, gateway_config, make_cert, start_gateway, wait_log

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst="192.0.2.1", sport=56324, dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, dst, sport, dport, tlv=b""):
    if ":" in src:
        addr = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport)
        fam = 0x21
    else:
        addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
        fam = 0x11
    addr += tlv
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(addr)) + addr


@pytest.fixture
def proxy_gw(tmp_path, sink):
    config = gateway_config([dict(proxy_protocol=True), dict()], relay=["example.test"])
    gw = start_gateway(tmp_path, config, [sink.port])
    gw.plain = gw.ports[1]
    yield gw
    gw.stop()


@pytest.fixture
def xclient_gw(tmp_path, sink):
    config = gateway_config([dict(proxy_protocol=True)], upstream="xclient = true\n", relay=["example.test"])
    gw = start_gateway(tmp_path, config, [sink.port])
    yield gw
    gw.stop()


def proxied(port, header, split=False):
    c = Client(port)
    if split:  # the header may arrive in pieces
        c.send(header[:7])
        time.sleep(0.1)
        c.send(header[7:])
    else:
        c.send(header)
    code, lines = c.reply()
    assert code == 220, lines
    code, lines = c.cmd("EHLO real-client.test")
    assert code == 250
    return c


def test_v1_moves_client_address_into_received_and_trust(proxy_gw, sink):
    c = proxied(proxy_gw.port, v1("203.0.113.7"))
    # 127.0.0.1 (the proxy) is trusted, 203.0.113.7 is not: relaying elsewhere is refused
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 250
    code, lines = c.cmd("RCPT TO:<x@elsewhere.test>")
    assert code == 554, lines
    c.cmd("RSET")
    code, lines = transaction(c)
    assert code == 250, lines
    assert sink.wait_count(1)
    received = sink.messages[0].header("Received")[0]
    assert "[203.0.113.7]" in received and "real-client.test" in received, received
    assert "127.0.0.1" not in received
    assert "client=203.0.113.7 port=56324" in proxy_gw.log()


def test_v2_ipv4_and_split_header(proxy_gw, sink):
    c = proxied(proxy_gw.port, v2("198.51.100.20", "192.0.2.1", 40000, 25), split=True)
    assert transaction(c)[0] == 250
    assert sink.wait_count(1)
    assert "[198.51.100.20]" in sink.messages[0].header("Received")[0]


def test_v1_and_v2_in_xclient(xclient_gw, sink):
    c = proxied(xclient_gw.port, v1("203.0.113.9", sport=1234))
    assert transaction(c)[0] == 250
    c = proxied(xclient_gw.port, v2("2001:db8::5", "2001:db8::1", 40001, 25))
    assert transaction(c)[0] == 250
    assert sink.wait_count(2)
    x4, x6 = sink.messages[0].xclient, sink.messages[1].xclient
    assert "ADDR=203.0.113.9" in x4 and "PORT=1234" in x4 and "HELO=real-client.test" in x4, x4
    assert "ADDR=IPV6:2001:db8::5" in x6 and "PORT=40001" in x6, x6
    # with XCLIENT the upstream writes the Received line, not the gateway
    assert not any("smtp-gateway" in r for r in sink.messages[0].header("Received"))


@pytest.mark.parametrize("first", [b"EHLO client.test\r\n", b"PROXY TCP4 not-an-address 192.0.2.1 1 25\r\n",
                                   V2_SIG + b"\x21\x11\x00\x05abcde"])
def test_missing_or_malformed_header_closes(proxy_gw, first):
    mark = len(proxy_gw.log())
    c = Client(proxy_gw.port)
    c.send(first)
    assert c.closed()
    assert c.buf == b"", c.buf  # not even a banner
    assert wait_log(proxy_gw, "proxy_header_", start=mark)
    line = [l for l in proxy_gw.log()[mark:].splitlines() if "proxy_header_" in l][0]
    assert "peer=127.0.0.1" in line, line
    assert proxy_gw.proc.poll() is None


def test_proxy_line_is_a_bad_command_elsewhere(proxy_gw):
    c = Client(proxy_gw.plain)
    assert c.reply()[0] == 220
    code, lines = c.cmd(v1("203.0.113.7").decode().rstrip())
    assert code == 500, lines
    code, lines = c.cmd("EHLO client.test")
    assert code == 250
    assert "client=203.0.113.7" not in proxy_gw.log()


def test_new_helo_gets_a_new_xclient(xclient_gw, sink):
    c = proxied(xclient_gw.port, v1("203.0.113.10"))
    assert transaction(c)[0] == 250
    assert transaction(c)[0] == 250
    assert c.cmd("EHLO renamed.test")[0] == 250
    assert transaction(c)[0] == 250
    assert sink.wait_count(3)
    # a connection that carried XCLIENT serves one transaction and is closed, never pooled
    # (docs/upstream-pool.md): each transaction gets its own XCLIENT with the HELO of the moment
    assert sink.connections == 3
    assert sum(1 for x in sink.commands if x.startswith("XCLIENT")) == 3
    assert "HELO=real-client.test" in sink.messages[1].xclient
    assert "HELO=renamed.test" in sink.messages[2].xclient and "ADDR=203.0.113.10" in sink.messages[2].xclient


@pytest.mark.parametrize("version", [1, 2])
def test_header_and_client_hello_in_one_packet_on_implicit_tls(tmp_path, sink, version):
    """HAProxy in front of port 465 sends the PROXY header and the client's ClientHello together:
    the bytes read past the header are the start of the TLS handshake, not lost."""
    cert, key = make_cert(tmp_path)
    config = gateway_config([dict(proxy_protocol=True, tls="implicit")],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n' % (cert, key))
    gw = start_gateway(tmp_path, config, [sink.port])
    try:
        header = v1("203.0.113.30") if version == 1 else v2("203.0.113.30", "192.0.2.1", 40000, 465)
        c = BioTlsClient(gw.port, prefix=header, timeout=10)
        code, lines = c.reply()
        assert code == 220, lines
        assert c.cmd("EHLO real-client.test")[0] == 250
        assert transaction(c)[0] == 250
        assert sink.wait_count(1)
        received = sink.messages[0].header("Received")[0]
        assert "[203.0.113.30]" in received and "ESMTPS" in received, received
        c.close()
    finally:
        gw.stop()


def test_v2_with_large_tlvs(proxy_gw, sink):
    # PP2_TYPE_NOOP (0x04) TLVs, 3000 bytes in all: more than one read
    tlv = b"".join(bytes([0x04]) + struct.pack("!H", 297) + b"x" * 297 for _ in range(10))
    c = proxied(proxy_gw.port, v2("198.51.100.99", "192.0.2.1", 40002, 25, tlv=tlv))
    assert transaction(c)[0] == 250
    assert sink.wait_count(1)
    assert "[198.51.100.99]" in sink.messages[0].header("Received")[0]
