"""Client networks end to end: clients with many addresses, given by a PROXY v1 header, share the
greylist triplets and rate buckets of their /24 (IPv4) or /64 (IPv6), and no more."""
import time

from gwtest import Client



def config(plugin_body):
    return """
[trusted]
networks = []

[store]
path = "var/state"
""" + plugin_body


def start(gateway_factory, sink, pipeline, body):
    return gateway_factory(config(body), pipeline=pipeline, upstream_ports=[sink.port], proxy_protocol=True)


def message_from(port, src, sender="alice@sender.test", rcpt="bob@example.test"):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = "2001:db8::25" if fam == "TCP6" else "192.0.2.25"
    c = Client(port)
    try:
        c.send("PROXY %s %s %s 40000 25\r\n" % (fam, src, dst))
        code, lines = c.reply()
        assert code == 220, lines
        assert c.cmd("EHLO proxied.test")[0] == 250
        code, lines = c.cmd("MAIL FROM:<%s>" % sender)
        if code != 250:
            return code, lines
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            return code, lines
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: p\r\n\r\nhi\r\n.\r\n")
        return c.reply()
    finally:
        c.close()


def test_greylist_triplets_per_slash64_and_slash24(sink, gateway_factory):
    gw = start(gateway_factory, sink, ["greylist"],
               '[plugins.greylist]\ndelay = "1s"\nexpire = "1m"\nauto_whitelist_after = 0\n')
    assert message_from(gw.port, "2001:db8:1:2::5")[0] == 451
    assert message_from(gw.port, "192.0.2.10")[0] == 451
    time.sleep(1.1)
    assert message_from(gw.port, "2001:db8:1:2:ffff:ffff:ffff:9")[0] == 250  # same /64
    assert message_from(gw.port, "192.0.2.200")[0] == 250                    # same /24
    assert message_from(gw.port, "2001:db8:1:3::5")[0] == 451                # next /64
    assert message_from(gw.port, "192.0.3.10")[0] == 451                     # next /24
    assert "client_net=2001:db8:1:2::/64" in gw.log()


def test_rate_limit_client_net_and_client_ip(sink, gateway_factory):
    gw = start(gateway_factory, sink, ["ratelimit"],
               '[plugins.ratelimit]\n[[plugins.ratelimit.rules]]\nkey = "client_ip"\nlimit = 1\nper = "1h"\n'
               '[[plugins.ratelimit.rules]]\nkey = "client_net"\nlimit = 2\nper = "1h"\n')
    # rules run in order: a message refused by client_ip is not counted by client_net
    assert message_from(gw.port, "2001:db8:9:9::1")[0] == 250
    code, lines = message_from(gw.port, "2001:db8:9:9::1")
    assert code == 451 and "client_ip 2001:db8:9:9::1" in lines[0]
    assert message_from(gw.port, "2001:db8:9:9:abcd::2")[0] == 250
    code, lines = message_from(gw.port, "2001:db8:9:9:abcd::3")
    assert code == 451 and "client_net 2001:db8:9:9::/64" in lines[0]
    assert message_from(gw.port, "2001:db8:9:a::1")[0] == 250
    assert message_from(gw.port, "198.51.100.1")[0] == 250
    assert message_from(gw.port, "198.51.100.2")[0] == 250
    code, lines = message_from(gw.port, "198.51.100.3")
    assert code == 451 and "client_net 198.51.100.0/24" in lines[0]
