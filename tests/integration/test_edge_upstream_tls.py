"""Towards the upstream: upstream.tls = "starttls" | "required" (docs/edge.md)."""
import pytest

from gwtest import send_message
from edgetest import TlsSink, gateway_config, make_cert, start_gateway


@pytest.fixture
def tls_sink(tmp_path):
    cert, key = make_cert(tmp_path, "sink.test", name="sink")
    s = TlsSink(cert, key)
    s.start()
    yield s
    s.stop()


def gw_with(tmp_path, sink, mode):
    config = gateway_config([{}], upstream='tls = "%s"\n' % mode)
    return start_gateway(tmp_path, config, [sink.port])


@pytest.mark.parametrize("mode", ["starttls", "required"])
def test_upstream_starttls_used_when_offered(tmp_path, tls_sink, mode):
    gw = gw_with(tmp_path, tls_sink, mode)
    try:
        code, lines = send_message(gw.port)
        assert code == 250, lines
        assert tls_sink.wait_count(1)
        assert tls_sink.messages[0].tls is True
        assert "STARTTLS" in tls_sink.commands
        # EHLO again after the handshake, then the transaction
        i = tls_sink.commands.index("STARTTLS")
        assert tls_sink.commands[i + 1].startswith("EHLO ")
        assert tls_sink.commands.index("MAIL FROM:<alice@sender.test>") > i
    finally:
        gw.stop()


def test_upstream_starttls_falls_back_to_plaintext(tmp_path, tls_sink):
    tls_sink.offer_starttls = False
    gw = gw_with(tmp_path, tls_sink, "starttls")
    try:
        code, lines = send_message(gw.port)
        assert code == 250, lines
        assert tls_sink.wait_count(1)
        assert tls_sink.messages[0].tls is False
        assert "STARTTLS" not in tls_sink.commands
    finally:
        gw.stop()


def test_upstream_required_without_starttls_is_a_tempfail(tmp_path, tls_sink):
    tls_sink.offer_starttls = False
    gw = gw_with(tmp_path, tls_sink, "required")
    try:
        code, lines = send_message(gw.port)
        assert 400 <= code < 500, lines  # the upstream counts as down: 4xx, the client retries
        assert tls_sink.count() == 0
        assert not any(c.startswith("MAIL") for c in tls_sink.commands), tls_sink.commands
        assert "STARTTLS" in gw.log()
    finally:
        gw.stop()


@pytest.mark.parametrize("mode", ["starttls", "required"])
def test_upstream_handshake_failure_is_a_tempfail(tmp_path, tls_sink, mode):
    tls_sink.break_tls = True
    gw = gw_with(tmp_path, tls_sink, mode)
    try:
        code, lines = send_message(gw.port)
        assert 400 <= code < 500, lines  # never on in plaintext after a failed handshake
        assert tls_sink.count() == 0
        assert not any(c.startswith("MAIL") for c in tls_sink.commands), tls_sink.commands
        assert "TLS handshake failed" in gw.log()
    finally:
        gw.stop()
