"""Relay control: [relay] domains from untrusted, unauthenticated clients; 554 5.7.1 never reaches
the upstream. Trusted clients relay anywhere (authenticated ones: test_edge_auth)."""
import pytest

from gwtest import open_session, transaction
from edgetest import gateway_config, start_gateway

DOMAINS = ["example.test", ".sub.example.test"]


@pytest.fixture
def untrusted_gw(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}], trusted=[], relay=DOMAINS), [sink.port])
    yield gw
    gw.stop()


def rcpt(gw, address):
    c = open_session(gw.port)
    try:
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        return c.cmd("RCPT TO:<%s>" % address)
    finally:
        c.close()


@pytest.mark.parametrize("address", [
    "bob@elsewhere.test",
    "bob@example.test.evil.test",
    "bob@notexample.test",
    "bob@sub.example.test",              # ".sub.example.test" matches subdomains only
    "bob@x.example.test",                # "example.test" matches exactly
    "user%elsewhere.test@example.test",  # percent hack
    "user!elsewhere.test@example.test",  # bang path
    "\"user%elsewhere.test\"@example.test",
    "@a.test,@b.test:user@example.test",  # source route
    "@example.test:user@elsewhere.test",
])
def test_relay_denied(untrusted_gw, sink, address):
    code, lines = rcpt(untrusted_gw, address)
    assert code == 554 and "5.7.1" in lines[0], (address, lines)
    assert not any(c.startswith("RCPT") for c in sink.commands), sink.commands
    assert "relay_denied" in untrusted_gw.log()


@pytest.mark.parametrize("address", ["bob@example.test", "Bob@EXAMPLE.Test", "bob@a.sub.example.test",
                                     "bob@deep.a.sub.example.test", "postmaster"])
def test_relay_allowed(untrusted_gw, sink, address):
    code, lines = rcpt(untrusted_gw, address)
    assert code == 250, (address, lines)
    assert any(c.startswith("RCPT TO:<%s>" % address) for c in sink.commands), sink.commands


def test_denied_recipient_never_reaches_upstream_in_a_mixed_transaction(untrusted_gw, sink):
    c = open_session(untrusted_gw.port)
    code, lines = transaction(c, rcpts=("bob@example.test", "eve@elsewhere.test"))
    assert code == 250, lines
    assert sink.wait_count(1)
    assert sink.messages[0].rcpts == ["bob@example.test"]


def test_trusted_client_relays_anywhere(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}], trusted=["127.0.0.0/8"], relay=DOMAINS), [sink.port])
    try:
        for address in ("bob@elsewhere.test", "user%other.test@example.test"):
            assert rcpt(gw, address)[0] == 250, address
        assert any("elsewhere.test" in c for c in sink.commands)
    finally:
        gw.stop()
