"""greylist on the embedded store: first try, early retry, retry after the delay, expiry, passed
triplets, auto-whitelisting, sender normalisation, per-recipient decisions, IPv6, skips, restarts."""
import time

from gwtest import Client, free_port, open_session, send_message


def config(delay="1s", expire="4s", whitelist_after="1h", auto=0, trusted="[]", extra=""):
    return """
[trusted]
networks = %s

[store]
path = "var/state"

[plugins.greylist]
delay = "%s"
expire = "%s"
whitelist_after = "%s"
auto_whitelist_after = %d
%s
""" % (trusted, delay, expire, whitelist_after, auto, extra)


def start(gateway_factory, sink, body=None, **kw):
    return gateway_factory(body if body is not None else config(**kw), pipeline=["greylist"],
                           upstream_ports=[sink.port])


def test_first_try_early_retry_then_pass_and_stay_passed(sink, gateway_factory):
    gw = start(gateway_factory, sink)
    code, lines = send_message(gw.port)
    assert code == 451, lines
    assert "4.7.1" in lines[0] and "first delivery attempt" in lines[0] and "try again" in lines[0]
    code, lines = send_message(gw.port)
    assert code == 451 and "too early" in lines[0]
    time.sleep(1.1)
    code, lines = send_message(gw.port)
    assert code == 250, lines
    assert sink.count() == 1
    assert send_message(gw.port)[0] == 250  # a passed triplet passes at once
    assert sink.count() == 2
    assert "greylist_passed" in gw.log()


def test_decides_per_recipient(sink, gateway_factory):
    gw = start(gateway_factory, sink)
    assert send_message(gw.port, rcpts=("old@example.test",))[0] == 451
    time.sleep(1.1)
    assert send_message(gw.port, rcpts=("old@example.test",))[0] == 250
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<alice@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<old@example.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<new@example.test>")
    assert code == 451 and "Greylisted" in lines[0]
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert sink.wait_count(2)
    assert sink.messages[-1].rcpts == ["old@example.test"]


def test_triplet_expires_when_not_retried_in_time(sink, gateway_factory):
    gw = start(gateway_factory, sink, delay="1s", expire="2s")
    assert send_message(gw.port)[0] == 451
    time.sleep(2.3)
    code, lines = send_message(gw.port)
    assert code == 451 and "first delivery attempt" in lines[0]  # started over


def test_sender_normalisation(sink, gateway_factory):
    gw = start(gateway_factory, sink)
    assert send_message(gw.port, sender="prvs=0123456789=Alice+news@Sender.TEST")[0] == 451
    time.sleep(1.1)
    # the same sender with another BATV tag / sub-address / case / SRS rewrite is the same triplet
    assert send_message(gw.port, sender="alice@sender.test")[0] == 250
    assert send_message(gw.port, sender="prvs=9876543210=alice@sender.test")[0] == 250
    assert send_message(gw.port, sender="SRS0=abcd=XY=sender.test=alice@forwarder.test")[0] == 250
    assert send_message(gw.port, sender="bob@sender.test")[0] == 451  # another sender is new


def test_auto_whitelist_after_passed_messages(sink, gateway_factory):
    gw = start(gateway_factory, sink, auto=2)
    assert send_message(gw.port, rcpts=("a@example.test",))[0] == 451
    time.sleep(1.1)
    assert send_message(gw.port, rcpts=("a@example.test",))[0] == 250   # passed message 1
    assert send_message(gw.port, rcpts=("b@example.test",))[0] == 451   # not yet whitelisted
    assert send_message(gw.port, rcpts=("a@example.test",))[0] == 250   # passed message 2
    assert send_message(gw.port, rcpts=("c@example.test",))[0] == 250   # network whitelisted
    assert send_message(gw.port, sender="new@other.test", rcpts=("d@example.test",))[0] == 250
    assert "greylist_auto_whitelisted" in gw.log()


def test_trusted_and_skip_networks_are_not_greylisted(sink, gateway_factory):
    gw = start(gateway_factory, sink, trusted='["127.0.0.0/8"]')
    assert send_message(gw.port)[0] == 250
    gw2 = start(gateway_factory, sink, extra='skip_networks = ["127.0.0.0/24"]')
    assert send_message(gw2.port)[0] == 250
    gw3 = start(gateway_factory, sink, extra='skip_networks = ["10.0.0.0/8"]')
    assert send_message(gw3.port)[0] == 451


def v6_message(port, sender="alice@sender.test", rcpt="bob@example.test"):
    c = Client(port, host="::1")
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO v6.test")[0] == 250
        assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            return code, lines
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: v6\r\n\r\nhi\r\n.\r\n")
        return c.reply()
    finally:
        c.close()


def test_ipv6_client_uses_its_slash64(sink, gateway_factory):
    v6port = free_port()
    gw = start(gateway_factory, sink, body=config() + '\n[[listener]]\naddress = "[::1]:%d"\n' % v6port)
    code, lines = v6_message(v6port)
    assert code == 451, lines
    assert 'client_net=::/64' in gw.log() or '"client_net":"::/64"' in gw.log()
    time.sleep(1.1)
    assert v6_message(v6port)[0] == 250
    # the IPv4 client is another network: its own triplet is still new
    assert send_message(gw.port)[0] == 451


def test_state_survives_kill9(sink, gateway_factory):
    gw = start(gateway_factory, sink, delay="1s", expire="1m")
    assert send_message(gw.port)[0] == 451
    gw.proc.kill()
    gw.proc.wait()
    gw.logf.close()
    time.sleep(1.1)
    gw.start()
    assert send_message(gw.port)[0] == 250  # the first try was remembered
