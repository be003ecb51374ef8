"""Helpers for the SPF tests: a gateway with the spf plugin on a PROXY-protocol listener (so a test
chooses the client IP), the test DNS server as its only nameserver, and one-shot SMTP transactions."""

from gwtest import Client, Gateway


def spf_config(dns, pipeline=("spf",), on_fail="tag", on_softfail="tag", on_temperror="tag", on_permerror="tag",
               dns_timeout="2s", log_level="debug", trusted=None, proxy=True, body=""):
    """Gateway keywords: the spf plugin on one listener (PROXY protocol unless `proxy=False`), `dns` the
    only nameserver, no relay domains; [server] data_timeout and max_connections and the other
    limits left to the gateway's defaults. `trusted`: a list for [trusted] networks (None: the default)."""
    plugin = '\n[plugins.spf]\non_fail = "%s"\non_softfail = "%s"\non_temperror = "%s"\non_permerror = "%s"\n' % (
        on_fail, on_softfail, on_temperror, on_permerror)
    return dict(pipeline=list(pipeline), proxy_protocol=proxy, dns=dns.address, dns_timeout=dns_timeout, relay=[],
                trusted=trusted, log_level=log_level, data_timeout=None, max_message_size=None, max_recipients=None,
                max_connections=None, pool_size=None, body=plugin + body)


def spf_gateway(tmp_path, sink, dns, threads=2, drain_timeout="10s", **kw):
    """A started gateway with spf_config(dns, **kw); `proxy=False` makes the listener a plain one, so the
    client is the test's own loopback socket."""
    gw = Gateway(tmp_path, upstream_ports=[sink.port], threads=threads, drain_timeout=drain_timeout,
                 **spf_config(dns, **kw))
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
