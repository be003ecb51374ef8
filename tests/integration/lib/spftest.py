"""Helpers for the SPF tests: a gateway with the spf plugin on a PROXY-protocol listener (so a test
chooses the client IP), the test DNS server as its only nameserver, and one-shot SMTP transactions."""
import socket

from gwtest import Client, Gateway

SPF_CONFIG = """pipeline = ["spf"]

[server]
hostname = "gw.test"
threads = {threads}
command_timeout = "30s"
drain_timeout = "{drain_timeout}"

[[listener]]
address = "127.0.0.1:{port}"
proxy_protocol = true

[upstream]
servers = [{upstreams}]
connect_timeout = "2s"
command_timeout = "10s"
data_timeout = "10s"

[dns]
nameservers = ["{dns}"]
timeout = "{dns_timeout}"

[relay]
domains = []

[metrics]
listen = "127.0.0.1:{metrics_port}"

[log]
level = "{log_level}"

[plugins.spf]
on_fail = "{on_fail}"
on_softfail = "{on_softfail}"
on_temperror = "{on_temperror}"
on_permerror = "{on_permerror}"
"""


def spf_gateway(tmp_path, sink, dns, on_fail="tag", on_softfail="tag", on_temperror="tag", on_permerror="tag",
                dns_timeout="2s", threads=2, log_level="debug", drain_timeout="10s", trusted=None, proxy=True):
    """`trusted`: a list for [trusted] networks (None keeps the default); `proxy=False` makes the
    listener a plain one, so the client is the test's own loopback socket."""
    text = SPF_CONFIG.replace("{dns}", dns.address).replace("{dns_timeout}", dns_timeout)
    if trusted is not None:
        text += "\n[trusted]\nnetworks = [%s]\n" % ", ".join('"%s"' % n for n in trusted)
    if not proxy:
        text = text.replace("proxy_protocol = true", "proxy_protocol = false")
    for k, v in dict(on_fail=on_fail, on_softfail=on_softfail, on_temperror=on_temperror,
                     on_permerror=on_permerror, log_level=log_level, drain_timeout=drain_timeout).items():
        text = text.replace("{%s}" % k, v)
    gw = Gateway(tmp_path, full_config=text, upstream_ports=[sink.port], threads=threads)
    return gw.start()


def proxy_line(ip):
    fam = "TCP6" if ":" in ip else "TCP4"
    dst = "::1" if ":" in ip else "127.0.0.1"
    return "PROXY %s %s %s 40000 25\r\n" % (fam, ip, dst)


def transaction(port, ip, mail_from, helo="mail.example.com", rcpt="bob@example.test",
                body="Subject: t\r\n\r\nhello\r\n", timeout=30):
    """One SMTP transaction from `ip` (PROXY v1). Returns (stage, code, lines): stage is where it ended
    ("mail", "rcpt", "data", "done")."""
    c = Client(port, timeout=timeout)
    try:
        c.send(proxy_line(ip))
        code, lines = c.reply()
        assert code == 220, lines
        code, lines = c.cmd("EHLO " + helo)
        if code != 250:
            code, lines = c.cmd("HELO " + helo)
            if code != 250:
                return "helo", code, lines
        code, lines = c.cmd("MAIL FROM:<%s>" % mail_from)
        if code != 250:
            return "mail", code, lines
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            return "rcpt", code, lines
        code, lines = c.cmd("DATA")
        if code != 354:
            return "data", code, lines
        c.send(body.replace("\r\n.", "\r\n..") + ".\r\n")
        code, lines = c.reply()
        try:
            c.cmd("QUIT")
        except (EOFError, OSError):
            pass
        return "done", code, lines
    finally:
        c.close()


def spf_result_of(msg):
    """(Received-SPF result word, Authentication-Results spf= word) of a delivered message."""
    rs = msg.header("Received-SPF")
    ar = msg.header("Authentication-Results")
    word = rs[0].split()[0].lower() if rs else None
    arword = None
    for a in ar:
        for part in a.split(";"):
            part = part.strip()
            if part.startswith("spf="):
                arword = part[4:].split()[0]
    return word, arword
