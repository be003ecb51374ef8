"""gateway.map through the real binary: the three kinds, comments, a changed file used without a
restart, and a list of 1,000,000 entries loaded once per process (not per worker thread)."""
import os
import signal
import time

from luahelp import send_message, session, start, write

LOOKUP = r"""
local maps = {
  ip = gateway.map("%(dir)s/ip.list", "ip"),
  domain = gateway.map("%(dir)s/domain.list", "domain"),
  string = gateway.map("%(dir)s/string.list", "string"),
}
function on_data(tx, msg)
  for _, q in ipairs(msg:headers("X-Q")) do
    local kind, value = q:match("^(%%S+) (.*)$")
    tx:add_header("X-R", kind .. " " .. value .. " " .. tostring(maps[kind]:contains(value)))
  end
end
"""


def test_kinds(gateway_factory, sink, tmp_path):
    write(tmp_path, "ip.list", "# allow list\n192.0.2.0/24\n198.51.100.7   # one host\n\n2001:db8::/32\n::1\n")
    write(tmp_path, "domain.list", "example.org\n.Sub.Test.\n# comment\n")
    write(tmp_path, "string.list", "Alice@Example.org\nplain\n")
    gw = start(gateway_factory, sink, tmp_path, LOOKUP % {"dir": tmp_path})
    cases = [
        ("ip", "192.0.2.77", True), ("ip", "192.0.3.1", False), ("ip", "198.51.100.7", True),
        ("ip", "198.51.100.8", False), ("ip", "2001:db8:1::5", True), ("ip", "2001:db9::1", False),
        ("ip", "::1", True), ("ip", "::ffff:192.0.2.1", True), ("ip", "not-an-ip", False),
        ("domain", "example.org", True), ("domain", "MX.Example.ORG", True), ("domain", "badexample.org", False),
        ("domain", "user@mail.example.org", True), ("domain", "sub.test", True), ("domain", "a.b.sub.test", True),
        ("domain", "org", False), ("string", "alice@example.ORG", True), ("string", "alice@example", False),
        ("string", "PLAIN", True), ("string", "comment", False),
    ]
    body = "".join("X-Q: %s %s\r\n" % (k, v) for k, v, _ in cases) + "Subject: maps\r\n\r\nx\r\n"
    assert send_message(gw.port, body=body)[0] == 250
    assert sink.wait_count(1)
    got = sink.messages[0].header("X-R")
    assert got == ["%s %s %s" % (k, v, str(e).lower()) for k, v, e in cases]


BLOCK = r"""
local blocked = gateway.map("%(dir)s/blocked.list", "domain")
function on_mail_from(tx, addr)
  if blocked:contains(addr) then return gateway.reject(550, "5.7.1", "sender domain blocked") end
end
"""


def wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return fn()


def mail_code(port, sender):
    c = session(port)
    try:
        return c.cmd("MAIL FROM:<%s>" % sender)[0]
    finally:
        c.close()


def replace(tmp_path, name, text):
    tmp = tmp_path / (name + ".new")
    tmp.write_text(text)
    os.rename(tmp, tmp_path / name)


def test_changed_file_used_without_restart(gateway_factory, sink, tmp_path):
    write(tmp_path, "blocked.list", "spam.test\n")
    gw = start(gateway_factory, sink, tmp_path, BLOCK % {"dir": tmp_path}, threads=2)
    assert mail_code(gw.port, "a@spam.test") == 550
    assert mail_code(gw.port, "a@other.test") == 250
    replace(tmp_path, "blocked.list", "other.test\n")  # the way admins' tools write (rename)
    assert wait_for(lambda: mail_code(gw.port, "a@other.test") == 550, timeout=10)
    assert mail_code(gw.port, "a@spam.test") == 250
    with open(tmp_path / "blocked.list", "a") as f:  # and an edit in place
        f.write("spam.test\n")
    assert wait_for(lambda: mail_code(gw.port, "a@spam.test") == 550, timeout=10)
    # a broken new version is logged and the last good one stays in use
    write(tmp_path, "bad.list", "x\n")
    replace(tmp_path, "blocked.list", "ok.test\nbad domain with spaces\n")
    assert wait_for(lambda: "lua_map_error" in gw.log(), timeout=10)
    assert mail_code(gw.port, "a@spam.test") == 550 and mail_code(gw.port, "a@ok.test") == 250
    # SIGHUP reloads the config: the scripts open the list again and the gateway goes on
    replace(tmp_path, "blocked.list", "ok.test\n")
    gw.signal(signal.SIGHUP)
    assert wait_for(lambda: mail_code(gw.port, "a@ok.test") == 550, timeout=10)
    assert mail_code(gw.port, "a@spam.test") == 250


BIG = r"""
local m = gateway.map("%(path)s", "ip")
function on_mail_from(tx, addr)
  local ip = addr:match("^(.-)@"):gsub("-", ":")  -- a local part cannot hold ':' unquoted
  if m:contains(ip) then return gateway.reject(550, "5.7.1", "listed") end
end
"""


def write_big(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write("2001:db8:%x:%x::1\n" % (i >> 16, i & 0xFFFF))


def run_on_all_threads(gw, threads):
    for _ in range(threads * 3):  # connections are handed to the worker threads in turn
        assert mail_code(gw.port, "2001-db8-0-5--1@x.test") == 550
        assert mail_code(gw.port, "2001-db8-0-5--2@x.test") == 250


def test_million_entries_loaded_once_per_process(gateway_factory, sink, tmp_path):
    big = str(tmp_path / "big.list")
    write_big(big, 1000000)
    rss = {}
    for threads in (1, 4):
        os.makedirs(tmp_path / str(threads))
        gw = start(gateway_factory, sink, tmp_path / str(threads), BIG % {"path": big}, threads=threads)
        run_on_all_threads(gw, threads)
        assert mail_code(gw.port, "2001-db8-f-4240--1@x.test") == 250  # entry 1,000,000 is not there
        assert mail_code(gw.port, "2001-db8-f-423f--1@x.test") == 550  # entry 999,999 is
        assert gw.metric("smtpgw_lua_map_loads_total") == 1  # one load, whatever the number of threads
        rss[threads] = gw.rss_kib()
        gw.stop()
    extra_mib = (rss[4] - rss[1]) / 1024.0
    print("1,000,000-entry map: RSS %d KiB with 1 thread, %d KiB with 4 threads (+%.1f MiB)" % (rss[1], rss[4], extra_mib))
    # one copy is 1,000,000 x 32 bytes (30.5 MiB): a copy per thread would add 3 more (91 MiB)
    assert rss[1] > 30 * 1024, rss
    assert extra_mib < 16, extra_mib
