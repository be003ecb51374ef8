"""gateway.store from Lua against the real store: counts shared by transactions and worker threads,
get/set value types, TTLs."""
import time

from luahelp import session, start

STORE = '\n[store]\nbackend = "embedded"\npath = "var/state"\n'

SCRIPT = """
function on_rcpt_to(tx, addr)
  local what = addr:match("^(.-)@")
  if what == "count" then
    return gateway.reject(550, "5.7.1", "count " .. gateway.store.incr("count", 1, "1h"))
  elseif what == "types" then
    gateway.store.set("s", "text")
    gateway.store.set("n", 42, "1h")
    gateway.store.set("f", 1.5)
    gateway.store.set("z", "007")
    local s, n, f, z, none = gateway.store.get("s"), gateway.store.get("n"), gateway.store.get("f"),
                             gateway.store.get("z"), gateway.store.get("never-set")
    return gateway.reject(550, "5.7.1", string.format("%s:%s %s:%s %s:%s %s:%s %s", type(s), s, math.type(n), n,
                          math.type(f), f, type(z), z, tostring(none)))
  elseif what == "setttl" then
    gateway.store.set("short", "here", 1)
  elseif what == "getttl" then
    return gateway.reject(550, "5.7.1", "short " .. tostring(gateway.store.get("short")))
  elseif what == "window" then
    return gateway.reject(550, "5.7.1", "window " .. gateway.store.incr("window", 1, "1s"))
  end
end
"""


def probe(port, rcpt):
    c = session(port)
    try:
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<%s@example.test>" % rcpt)
        return code, lines[-1][10:]
    finally:
        c.close()


def gateway(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, SCRIPT, extra=STORE, threads=2)
    code, text = probe(gw.port, "count")
    assert (code, text) == (550, "count 1"), text
    return gw


def test_counts_across_transactions_and_threads(gateway_factory, sink, tmp_path):
    gw = gateway(gateway_factory, sink, tmp_path)
    # one connection each: the listener hands them to the two worker threads in turn, each thread
    # with its own Lua state; the count is the store's, so it goes on 2, 3, 4...
    texts = [probe(gw.port, "count")[1] for _ in range(5)]
    assert texts == ["count %d" % n for n in range(2, 7)]


def test_value_types(gateway_factory, sink, tmp_path):
    gw = gateway(gateway_factory, sink, tmp_path)
    code, text = probe(gw.port, "types")
    assert code == 550
    assert text == "string:text integer:42 float:1.5 string:007 nil"


def test_ttls(gateway_factory, sink, tmp_path):
    gw = gateway(gateway_factory, sink, tmp_path)
    probe(gw.port, "setttl")
    assert probe(gw.port, "getttl")[1] == "short here"
    assert probe(gw.port, "window")[1] == "window 1"
    assert probe(gw.port, "window")[1] == "window 2"
    time.sleep(1.6)
    assert probe(gw.port, "getttl")[1] == "short nil"
    assert probe(gw.port, "window")[1] == "window 1"  # the TTL ran from the key's creation


def test_store_down(gateway_factory, sink, tmp_path):
    """Redis unreachable: an uncaught gateway.store error gives on_error, a pcall'ed one lets mail through."""
    from gwtest import free_port
    down = '\n[store]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%d/0"\n' % free_port()
    gw = start(gateway_factory, sink, tmp_path, """
        function on_rcpt_to(tx, addr)
          if addr:find("^raw@") then gateway.store.incr("x", 1, "1m") end
          if addr:find("^safe@") then
            local ok, err = pcall(gateway.store.incr, "x", 1, "1m")
            if not ok then gateway.log("warn", "store down: " .. err) end
          end
        end
    """, extra=down)
    c = session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    t0 = time.monotonic()
    code, lines = c.cmd("RCPT TO:<raw@example.test>")
    assert code == 451 and lines[-1].startswith("451 4.7.1"), lines
    code, lines = c.cmd("RCPT TO:<safe@example.test>")
    assert code == 250, lines
    assert time.monotonic() - t0 < 10
    c.close()
    log = gw.log()
    assert "gateway.store: " in log and "store down: " in log
