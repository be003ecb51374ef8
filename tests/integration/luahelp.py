"""Helpers for the Lua policy tests: write scripts next to the config, start the gateway with them."""
import os
import textwrap

from gwtest import Client, Gateway, send_message  # noqa: F401

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
POLICIES = os.path.join(ROOT, "policies")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def lua_config(scripts, **keys):
    lines = ["[plugins.lua]", "scripts = [%s]" % ", ".join('"%s"' % s for s in scripts)]
    for k, v in keys.items():
        lines.append("%s = %s" % (k, '"%s"' % v if isinstance(v, str) else v))
    return "\n" + "\n".join(lines) + "\n"


def start(gateway_factory, sink, tmp_path, script_text=None, scripts=None, pipeline=("lua",), extra="", **keys):
    """Starts the gateway with one script (text) or a list of script paths."""
    if script_text is not None:
        scripts = [write(tmp_path, "policy.lua", script_text)]
    gw_keys = {k: keys.pop(k) for k in list(keys) if k in ("threads", "max_recipients", "binary")}
    return gateway_factory(lua_config(scripts, **keys) + extra, upstream_ports=[sink.port],
                           pipeline=list(pipeline), **gw_keys)


def session(port, helo="client.test"):
    c = Client(port)
    code, lines = c.reply()
    assert code == 220, lines
    code, lines = c.cmd("EHLO " + helo)
    assert code == 250, lines
    return c


def data(c, body):
    code, lines = c.cmd("DATA")
    assert code == 354, lines
    if isinstance(body, str):
        body = body.encode()
    c.send(body + b".\r\n")
    return c.reply()


def alive(port, sink):
    """The gateway still relays a plain message."""
    n = sink.count()
    code, lines = send_message(port, body=b"Subject: alive\r\n\r\nstill here\r\n")
    return code == 250 and sink.wait_count(n + 1)
