"""Helpers for the dnsbl tests: a gateway whose only nameserver is the test DNS server, on a
PROXY-protocol listener (so a test presents any IPv4/IPv6 client), list entries in RFC 5782 form,
and SMTP sessions that report where they ended."""
import ipaddress
import socket
import time

from gwtest import Client, Gateway, free_port


def client_name(ip, zone):
    """The RFC 5782 query name of a client address under `zone` (reversed octets or nibbles)."""
    a = ipaddress.ip_address(ip)
    rev = a.reverse_pointer  # 4.3.2.1.in-addr.arpa / nibbles.ip6.arpa
    return rev.rsplit(".", 2)[0] + "." + zone


def dnsbl_gateway(tmp_path, sink, dns_address, body, dns_timeout="3s", trusted=(), pipeline=("dnsbl",),
                  listeners=(), binary="smtp-gateway", threads=2):
    """A started gateway: a PROXY-protocol listener, then `listeners` (dicts of listener keys with a
    "port"); `dns_address` the only nameserver; `body` the plugin tables. [server] data_timeout,
    max_connections and the size limits are left to the gateway's defaults."""
    gw = Gateway(tmp_path, upstream_ports=[sink.port], binary=binary, threads=threads, pipeline=list(pipeline),
                 listeners=[dict(proxy_protocol=True)] + list(listeners), dns=dns_address, dns_timeout=dns_timeout,
                 trusted=list(trusted), relay=[], body=body + "\n", data_timeout=None, max_message_size=None,
                 max_recipients=None, max_connections=None, pool_size=None)
    return gw.start()


def proxy_line(ip):
    fam = "TCP6" if ":" in ip else "TCP4"
    dst = "::1" if ":" in ip else "127.0.0.1"
    return "PROXY %s %s %s 40000 25\r\n" % (fam, ip, dst)


def connect(port, ip, timeout=30):
    """A client presented as `ip`; returns (client, greeting code, lines, seconds to the greeting)."""
    c = Client(port, timeout=timeout)
    t0 = time.monotonic()
    c.send(proxy_line(ip))
    code, lines = c.reply()
    return c, code, lines, time.monotonic() - t0


def transaction(port, ip, sender="alice@sender.test", rcpts=("bob@example.test",), body="Subject: t\r\n\r\nhello\r\n"):
    """One transaction from `ip`. Returns (stage, code, lines); stage is where it ended: "connect",
    "mail", "rcpt" (no recipient accepted; the last refusal), "data" or "done"."""
    c, code, lines, _ = connect(port, ip)
    try:
        if code != 220:
            return "connect", code, lines
        code, lines = c.cmd("EHLO client.test")
        assert code == 250, lines
        code, lines = c.cmd("MAIL FROM:<%s>" % sender)
        if code != 250:
            return "mail", code, lines
        ok, last = 0, None
        for r in rcpts:
            last = c.cmd("RCPT TO:<%s>" % r)
            if last[0] == 250:
                ok += 1
        if not ok:
            return ("rcpt",) + last
        code, lines = c.cmd("DATA")
        if code != 354:
            return "data", code, lines
        c.send(body + ".\r\n")
        code, lines = c.reply()
        c.cmd("QUIT")
        return "done", code, lines
    finally:
        c.close()


def queried(dns, suffix):
    """The names the DNS server was asked for that end with `suffix`."""
    return [n for n, _ in dns.log if n == suffix or n.endswith("." + suffix)]


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class DeadDns:
    """A UDP and TCP "nameserver" that takes queries and never answers."""

    def __init__(self):
        self.port = free_port()  # UDP and TCP, reserved for this test process
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        self.udp.close()
        self.tcp.close()
