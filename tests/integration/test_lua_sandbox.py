"""Sandbox and bounds: escapes fail without effect, loops and memory bombs are bounded, errors give
on_error (451 4.7.1) with script:line in the log, and the gateway keeps serving."""
import os
import time

from luahelp import alive, session, start

CASES = {
    # name: (lua statement run in on_rcpt_to, text expected in the log)
    "saved": ("return saved_tx.sender", "used outside the hook call"),
    "loop": ("while true do end", "instruction limit exceeded"),
    "pcallloop": ("while true do pcall(function() while true do end end) end", "instruction limit exceeded"),
    "xpcallhandler": ("while true do xpcall(error, function() while true do end end) end",
                      "instruction limit exceeded"),
    "xpcallboth": ("xpcall(function() while true do end end, function() while true do end end)",
                   "instruction limit exceeded"),
    "coroutineloop": ("while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
                      "instruction limit exceeded"),
    "wraploop": ("local co = coroutine.wrap(function() while true do end end) co()", "instruction limit exceeded"),
    "tablemove": ("table.move({}, 1, 1e12, 2)", "instruction limit exceeded"),
    "backtrack": ("local s = string.rep('a', 300000) s:find('.-.-b')", "instruction limit exceeded"),
    "membomb": ("local t = {} while true do t[#t + 1] = string.rep('x', 4096) .. #t end", "not enough memory"),
    "strrep": ("local s = string.rep('x', 1e9)", "not enough memory"),
    "strrephuge": ("local s = string.rep('x', 1e10)", "resulting string too large"),
    "strrepcat": ("local s = string.rep('ab', 4e6) s = s .. s .. s", "not enough memory"),
    "osexecute": ("os.execute('touch pwned-execute')", "field 'execute'"),
    "ioopen": ("io.open('pwned-io', 'w'):write('x')", "global 'io'"),
    "require": ("local os2 = require('os') os2.execute('touch pwned-require')", "global 'require'"),
    "requireio": ("require('io').open('pwned-io2', 'w')", "global 'require'"),
    "loadlib": ("package.loadlib('libc.so.6', 'system')", "global 'package'"),
    "bytecode": ("load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10\\4\\8\\8')()", "binary chunks are not available"),
    "bytecodemode": ("load('return 1', 'x', 'b')", "binary chunks are not available"),
    "dump": ("load(string.dump(function() end))", "field 'dump'"),
    "dofile": ("dofile('/etc/passwd')", "global 'dofile'"),
    "loadfile": ("loadfile('/etc/passwd')", "global 'loadfile'"),
    "debug": ("debug.sethook()", "global 'debug'"),
    "gcloop": ("setmetatable({}, {__gc = function() while true do end end}) collectgarbage()",
               "__gc metamethods are not available"),
    "gcstop": ("collectgarbage('stop')", "is not available in the sandbox"),
    "stringmeta": ("getmetatable('').__index = function() return 1 end", "attempt to index"),
    "runtime": ("local x = nil; x.y = 1", "policy.lua:"),
    "yield": ("coroutine.yield(1)", "attempt to yield"),
}


def script():
    lines = ["function on_mail_from(tx, addr) saved_tx = tx end", "function on_rcpt_to(tx, addr)",
             "  local name = addr:match('^(.-)@')"]
    for name, (stmt, _) in CASES.items():
        lines.append("  if name == %r then %s end" % (name, stmt))
    lines.append("end")
    return "\n".join(lines) + "\n"


def test_escapes_and_bounds(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, script(), max_memory="8MiB")
    c = session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    for name in CASES:
        t0 = time.monotonic()
        code, lines = c.cmd("RCPT TO:<%s@example.test>" % name)
        took = time.monotonic() - t0
        assert code == 451 and lines[-1].startswith("451 4.7.1"), (name, lines)
        assert took < 5, (name, took)
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    c.cmd("QUIT")
    c.close()
    log = gw.log()
    for name, (_, expected) in CASES.items():
        assert expected in log, (name, expected)
    for f in ("pwned-execute", "pwned-io", "pwned-require", "pwned-io2"):
        assert not os.path.exists(os.path.join(str(tmp_path), f)), f
    assert "policy.lua:" in log and "lua_error" in log
    assert alive(gw.port, sink)
    assert gw.metric('smtpgw_lua_errors_total{kind="instructions"}') >= 5
    assert gw.metric('smtpgw_lua_errors_total{kind="memory"}') >= 3


def test_loop_bounded_in_every_hook_and_gateway_alive(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, """
        function on_data(tx, msg)
          if msg:header("Subject") == "loop" then
            local ok = false
            repeat ok = pcall(function() local i = 0 while true do i = i + 1 end end) until ok
          end
        end
    """, max_instructions=100000)
    from luahelp import data
    c = session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<bob@example.test>")
    t0 = time.monotonic()
    code, lines = data(c, "Subject: loop\r\n\r\nx\r\n")
    assert code == 451 and time.monotonic() - t0 < 2, lines
    assert "max_instructions = 100000" in gw.log()
    assert sink.count() == 0
    assert alive(gw.port, sink)
