"""SIGHUP reloads the scripts with connections open; a script that does not compile is refused (the
old one keeps running); --check-config compiles the scripts and names file:line."""
import signal
import subprocess
import time

from luahelp import data, session, start, write

V1 = """
function on_rcpt_to(tx, addr)
  if addr:find("^x@") then return gateway.reject(550, "5.7.1", "policy v1") end
end
"""
V2 = """
function on_rcpt_to(tx, addr)
  if addr:find("^x@") then return gateway.reject(550, "5.7.1", "policy v2") end
end
function on_data(tx, msg) tx:add_header("X-Policy-Version", "2") end
"""
BAD = """
function on_rcpt_to(tx, addr)
  if addr:find("^x@") then return gateway.reject(550, "5.7.1", "policy v3")
end
"""


def wait_log(gw, text, count=1, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if gw.log().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def test_sighup_reload(gateway_factory, sink, tmp_path):
    path = write(tmp_path, "policy.lua", V1)
    gw = start(gateway_factory, sink, tmp_path, scripts=[path])
    old = session(gw.port)
    assert old.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    code, lines = old.cmd("RCPT TO:<x@example.test>")
    assert code == 550 and "policy v1" in lines[-1]

    write(tmp_path, "policy.lua", V2)
    gw.signal(signal.SIGHUP)
    assert wait_log(gw, "reloaded")
    new = session(gw.port)
    new.cmd("MAIL FROM:<a@sender.test>")
    code, lines = new.cmd("RCPT TO:<x@example.test>")
    assert code == 550 and "policy v2" in lines[-1]
    assert new.cmd("RCPT TO:<bob@example.test>")[0] == 250
    code, _ = data(new, "Subject: new\r\n\r\nx\r\n")
    assert code == 250

    # the connection opened before the reload was not dropped and finishes its transaction
    assert old.cmd("RCPT TO:<bob@example.test>")[0] == 250
    code, _ = data(old, "Subject: old\r\n\r\nx\r\n")
    assert code == 250
    assert sink.wait_count(2)

    # a script that does not compile: reload refused, the running one stays
    write(tmp_path, "policy.lua", BAD)
    gw.signal(signal.SIGHUP)
    assert wait_log(gw, "reload_failed")
    log = gw.log()
    assert "policy.lua:5:" in log  # file:line of the syntax error
    c = session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    code, lines = c.cmd("RCPT TO:<x@example.test>")
    assert code == 550 and "policy v2" in lines[-1]
    for s in (old, new, c):
        s.cmd("QUIT")
        s.close()
    assert gw.proc.poll() is None


def test_check_config_compiles_scripts(gateway_factory, sink, tmp_path):
    from gwtest import Gateway
    from luahelp import lua_config
    path = write(tmp_path, "policy.lua", BAD)
    gw = Gateway(tmp_path, lua_config([path]), upstream_ports=[sink.port], pipeline=["lua"])
    r = subprocess.run([gw.binary, "--check-config", "--config", gw.config_path], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=30)
    assert r.returncode == 1
    assert "policy.lua:5:" in r.stderr and "plugins.lua.scripts" in r.stderr
    write(tmp_path, "policy.lua", V2)
    r = subprocess.run([gw.binary, "--check-config", "--config", gw.config_path], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=30)
    assert r.returncode == 0, r.stderr
    missing = Gateway(tmp_path, lua_config(["nope.lua"]), upstream_ports=[sink.port], pipeline=["lua"])
    r = subprocess.run([missing.binary, "--check-config", "--config", missing.config_path], capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=30)
    assert r.returncode == 1 and "nope.lua: cannot open" in r.stderr
