"""Helpers for the rspamd tests: a gateway whose pipeline calls rspamd, and one-shot transactions."""
import re

from edgetest import gateway_config, start_gateway


def rspamd_gateway(tmp_path, sink, url, on_error="accept", timeout="5s", pipeline=("rspamd",), xclient=True,
                   listeners=None, body="", threads=1):
    """The gateway with [plugins.rspamd] at `url`. xclient = true (the default here) makes the upstream
    copy carry no Received line, so the sink's bytes can be compared with rspamd's."""
    config = gateway_config(listeners or [dict()], upstream="xclient = true\n" if xclient else "", trusted=[],
                            relay=["example.test"], pipeline=list(pipeline),
                            body='\n[plugins.rspamd]\nurl = "%s"\ntimeout = "%s"\non_error = "%s"\n' % (url, timeout, on_error)
                            + body)
    return start_gateway(tmp_path, config, [sink.port], threads=threads)


def transaction_ids(gw):
    """The transaction ids of the gateway's `transaction` log lines, in order."""
    return re.findall(r" transaction session=\S+ id=(\S+)", gw.log())


def header_names(data):
    """Field names of a message's header section, in order."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return [l.split(":", 1)[0] for l in head.split("\r\n") if l and l[0] not in " \t"]
