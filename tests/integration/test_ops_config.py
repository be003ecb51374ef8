"""Operations: --check-config warnings and --strict, every error of a file at once, --dump-config
(round trip, defaults, plugins' arrays of tables, Lua instances), /healthz through a drain, and
smtpgw_build_info."""
import os
import re
import signal
import socket
import subprocess
import time

from gwtest import BUILD, Gateway, open_session

BIN = os.path.join(BUILD, "smtp-gateway")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BASE = """{head}
[server]
hostname = "gw.test"

[[listener]]
address = "127.0.0.1:2525"
role = "{role}"

[upstream]
servers = ["127.0.0.1:10025"]
xclient = {xclient}

[relay]
domains = [{domains}]
{body}"""


def conf(tmp_path, head="", body="", role="inbound", xclient="false", domains='"example.test"', name="c.toml"):
    p = tmp_path / name
    p.write_text(BASE.format(head=head, body=body, role=role, xclient=xclient, domains=domains))
    return str(p)


def script(tmp_path):
    p = tmp_path / "allow.lua"
    p.write_text('function on_mail_from(tx, addr) if addr == "vip@sender.test" then return gateway.accept() end end\n')
    return str(p)


def run(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def warnings(stderr):
    out = []
    for line in stderr.splitlines():
        m = re.match(r"^(.*):(\d+):(\d+): warning: (.*)$", line)
        if m:
            out.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def line_of(path, needle):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError(needle)


def check(path, strict=False):
    args = ["--check-config"] + (["--strict"] if strict else []) + ["--config", path]
    return run(*args)


def test_clean_config_has_no_warning(tmp_path):
    p = conf(tmp_path)
    r = check(p, strict=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "configuration OK" in r.stdout


def test_open_relay_setup_warns_at_the_listener(tmp_path):
    p = conf(tmp_path, domains="")
    r = check(p)
    assert r.returncode == 0, r.stderr
    w = warnings(r.stderr)
    assert len(w) == 1, r.stderr
    assert w[0][0] == p and w[0][1] == line_of(p, 'role = "inbound"')
    assert "relay.domains" in w[0][3] and "xclient" in w[0][3]
    r = check(p, strict=True)
    assert r.returncode == 1 and warnings(r.stderr) == w, r.stderr
    # xclient = true, relay.domains set, or a submission listener only: no warning
    for kw in (dict(domains="", xclient="true"), dict(domains='"example.test"'), dict(domains="", role="submission")):
        r = check(conf(tmp_path, **kw), strict=True)
        assert r.returncode == 0 and r.stderr == "", (kw, r.stderr)


def test_plugin_table_outside_the_pipeline_warns(tmp_path):
    body = '\n[plugins.spf]\non_fail = "tag"\n\n[plugins."lua:allow"]\nscripts = ["{}"]\n'.format(
        script(tmp_path))
    p = conf(tmp_path, head='pipeline = ["lua:allow"]', body=body)
    r = check(p)
    assert r.returncode == 0, r.stderr
    w = warnings(r.stderr)
    assert len(w) == 1, r.stderr
    assert w[0][1] == line_of(p, "[plugins.spf]") and "spf" in w[0][3] and "pipeline" in w[0][3]
    assert check(p, strict=True).returncode == 1
    # in the pipeline: quiet (the named Lua instance's table included)
    p2 = conf(tmp_path, head='pipeline = ["spf", "lua:allow"]', body=body, name="c2.toml")
    r = check(p2, strict=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_lua_without_scripts_warns(tmp_path):
    p = conf(tmp_path, head='pipeline = ["lua"]')
    r = check(p)
    assert r.returncode == 0
    w = warnings(r.stderr)
    assert len(w) == 1 and w[0][1] == line_of(p, "pipeline =") and "scripts" in w[0][3], r.stderr
    p = conf(tmp_path, head='pipeline = ["lua:policy"]', body='\n[plugins."lua:policy"]\non_error = "reject"\n', name="c2.toml")
    w = warnings(check(p).stderr)
    assert len(w) == 1 and w[0][1] == line_of(p, '[plugins."lua:policy"]') and "lua:policy" in w[0][3]
    assert check(p, strict=True).returncode == 1


def keygen(tmp_path):
    out = tmp_path / "keys"
    out.mkdir(exist_ok=True)
    r = run("dkim-keygen", "--domain", "example.test", "--selector", "s1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return str(out / "example.test.s1.key")


DKIM = """
[[plugins.dkim_sign.keys]]
domain = "example.test"
selector = "s1"
private_key = "{}"
"""


def test_dkim_key_with_group_or_other_bits_warns(tmp_path):
    key = keygen(tmp_path)
    p = conf(tmp_path, head='pipeline = ["dkim_sign"]', body=DKIM.format(key))
    for mode, warned in ((0o600, False), (0o400, False), (0o640, True), (0o604, True), (0o660, True)):
        os.chmod(key, mode)
        r = check(p)
        assert r.returncode == 0, r.stderr
        w = warnings(r.stderr)
        if warned:
            assert len(w) == 1 and w[0][1] == line_of(p, "private_key =") and oct(mode)[2:] in w[0][3], (mode, r.stderr)
            assert check(p, strict=True).returncode == 1
        else:
            assert w == [], (mode, r.stderr)


def test_every_error_is_reported(tmp_path):
    body = '\n[dns]\ntimeout = "5 parsecs"\n\n[store]\nbogus = 1\n\n[plugins.greylist]\ndelay = "soon"\n'
    p = conf(tmp_path, head='pipeline = ["greylist"]', body=body)
    text = open(p).read().replace('hostname = "gw.test"', 'hostname = "gw.test"\nmax_recipients = "many"')
    open(p, "w").write(text)
    r = check(p)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    located = [re.match(r"^(.*):(\d+):(\d+): (.*)$", l) for l in lines]
    assert all(located), r.stderr
    got = {int(m.group(2)) for m in located}
    want = {line_of(p, "max_recipients"), line_of(p, "parsecs"), line_of(p, "bogus"), line_of(p, '"soon"')}
    assert want <= got, r.stderr
    # the running gateway refuses the same file with the same errors
    r2 = run("--config", p)
    assert r2.returncode == 1 and lines[0] in r2.stderr


def dump(path):
    r = run("--dump-config", "--config", path)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dump_config_round_trip(tmp_path):
    key = keygen(tmp_path)
    os.chmod(key, 0o600)
    body = (DKIM.format(key) + '\n[[plugins.ratelimit.rules]]\nkey = "client_ip"\nlimit = 10\nper = "60s"\n'
            '\n[[plugins.ratelimit.rules]]\nkey = "sender"\nlimit = 3\ncount = "recipients"\n'
            '\n[plugins."lua:allow"]\nscripts = ["{}"]\n'.format(script(tmp_path)))
    p = conf(tmp_path, head='pipeline = ["ratelimit", "greylist", "spf", "lua:allow", "dkim_sign"]', body=body)
    first = dump(p)
    # defaults of the core and of the plugins are there
    for needle in ('max_message_size = "25MiB"', 'drain_timeout = "30s"', 'connect_at = "ehlo"',
                   'networks = ["127.0.0.0/8", "::1/128"]', 'format = "text"', "[plugins.greylist]", 'delay = "5m"',
                   'auto_whitelist_after = 5', "[plugins.spf]", 'on_softfail = "tag"', '[plugins."lua:allow"]',
                   'max_instructions = 1000000', '[[plugins.ratelimit.rules]]', 'per = "1m"', 'action = "tempfail"',
                   '[[plugins.dkim_sign.keys]]', 'canonicalization = "relaxed/relaxed"', 'algorithm = "rsa-sha256"',
                   'proxy_protocol = false', 'xclient = false'):
        assert needle in first, (needle, first)
    assert first.count("[[plugins.ratelimit.rules]]") == 2
    assert 'count = "recipients"' in first and 'count = "messages"' in first
    assert "not set" not in first
    d = tmp_path / "dumped.toml"
    d.write_text(first)
    r = check(str(d), strict=True)
    assert r.returncode == 0, r.stderr + first
    assert dump(str(d)) == first
    # the sample config shipped with the gateway dumps and reads back too
    sample = os.path.join(REPO, "etc", "smtp-gateway.toml")
    s1 = dump(sample)
    d2 = tmp_path / "sample-dumped.toml"
    d2.write_text(s1)
    assert run("--check-config", "--config", str(d2), cwd=REPO).returncode == 0
    assert dump(str(d2)) == s1


def healthz(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_healthz_and_build_info(tmp_path, sink):
    gw = Gateway(tmp_path, upstream_ports=[sink.port], drain_timeout="30s")
    gw.start()
    try:
        assert healthz(gw.metrics_port) == (200, "ok")
        version = run("--version").stdout.split()[1]
        assert 'smtpgw_build_info{version="%s"} 1' % version in gw.metrics().splitlines()
        # a transaction in flight holds the drain open
        c = open_session(gw.port)
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
        gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            status = healthz(gw.metrics_port)
            if status[0] == 503:
                break
            time.sleep(0.05)
        assert status[0] == 503, status
        # still 503 (and the metrics still served) while the transaction goes on
        assert c.cmd("DATA")[0] == 354
        assert healthz(gw.metrics_port)[0] == 503
        assert "smtpgw_build_info" in gw.metrics()
        c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
        c.close()
        assert gw.proc.wait(20) == 0
        assert sink.count() == 1
    finally:
        gw.stop()
