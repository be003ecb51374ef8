"""gateway.regex (PCRE2) through the real binary: match, find, gmatch, flags, a bad pattern refused at
load time, and a catastrophic pattern stopped within the instruction budget (on_error)."""
import os
import subprocess
import time

from gwtest import BUILD, free_port, gateway_toml
from luahelp import send_message, start, write

SCRIPT = r"""
local subject_rule = gateway.regex.new("^(?:buy|cheap)\\s+(\\w+)", "i")
local dated = gateway.regex.new("(\\d{4})-(\\d\\d)-(\\d\\d)")
local optional = gateway.regex.new("(a)|(b)")
local lines = gateway.regex.new("^x-\\w+$", "m")
local dotall = gateway.regex.new("a.b", "s")
local spaced = gateway.regex.new([[ \d+  # digits
                                    -  \d+ ]], "x")
local evil = gateway.regex.new("^(a+)+$")

local function show(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[#out + 1] = tostring((select(i, ...))) end
  return table.concat(out, ",")
end

function on_data(tx, msg)
  local subject = msg:header("Subject") or ""
  if subject == "evil" then
    evil:match(string.rep("a", 40) .. "!")
    return gateway.reject(550, "5.7.1", "evil returned")
  end
  tx:add_header("X-Match", show(subject_rule:match(subject)))
  tx:add_header("X-Date", show(dated:match("sent 2026-12-02 by x")))
  tx:add_header("X-Optional", show(optional:match("b")))
  tx:add_header("X-Find", show(dated:find("on 2026-01-31")) .. " " .. show(dated:find("2026-01-31 2027-02-28", 2)))
  tx:add_header("X-None", show(dated:match("no date")) .. " " .. show(dated:find("no date")))
  local all = {}
  for y, m in dated:gmatch("2024-01-02, 2025-03-04 and 2026-05-06") do all[#all + 1] = m end
  for w in gateway.regex.new("[a-z]+"):gmatch("one, two") do all[#all + 1] = w end
  for e in gateway.regex.new("x*"):gmatch("ab") do all[#all + 1] = "<" .. e .. ">" end
  tx:add_header("X-Gmatch", table.concat(all, "|"))
  tx:add_header("X-Flags", show(lines:match("a\nx-one\nb"), dotall:match("a\nb") ~= nil, spaced:match("tel 12-34")))
  if subject_rule:match(subject) then return gateway.reject(550, "5.7.1", "spam word " .. subject_rule:match(subject)) end
end
"""


def test_match_find_gmatch_flags(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, SCRIPT)
    assert send_message(gw.port, body="Subject: hello world\r\n\r\nx\r\n")[0] == 250
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Match") == ["nil"]
    assert m.header("X-Date") == ["2026-12-02,2026,12,02"]
    assert m.header("X-Optional") == ["b,nil,b"]
    assert m.header("X-Find") == ["4,13 12,21"]
    assert m.header("X-None") == ["nil nil"]
    assert m.header("X-Gmatch") == ["01|03|05|one|two|<>|<>|<>"]
    assert m.header("X-Flags") == ["x-one,true,12-34"]
    code, lines = send_message(gw.port, body="Subject: CHEAP   pills now\r\n\r\nx\r\n")
    assert code == 550 and lines[-1].endswith("spam word CHEAP   pills"), lines


def test_catastrophic_pattern_is_stopped(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, SCRIPT, max_instructions=1000000)
    t0 = time.monotonic()
    code, lines = send_message(gw.port, body="Subject: evil\r\n\r\nx\r\n")
    took = time.monotonic() - t0
    assert code == 451, lines  # on_error, not "evil returned"
    assert "kind=instructions" in gw.log() and "instruction limit exceeded" in gw.log()
    assert took < 10, took  # 2^40 steps unbounded; the budget ends it after about 10^6
    assert send_message(gw.port, body="Subject: hello\r\n\r\nx\r\n")[0] == 250


def check_config(tmp_path, sink, script_text):
    script = write(tmp_path, "bad.lua", script_text)
    cfg = tmp_path / "check.toml"
    cfg.write_text(gateway_toml(free_port(), free_port(), [sink.port], pipeline=["lua"], max_message_size=1000000,
                                max_recipients=10, max_connections=10, threads=1, drain_timeout="1s",
                                upstream_timeout="5s", body='\n[plugins.lua]\nscripts = ["%s"]\n' % script))
    return subprocess.run([os.path.join(BUILD, "smtp-gateway"), "--check-config", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30)


def test_bad_pattern_or_flag_fails_at_load(tmp_path, sink):
    r = check_config(tmp_path, sink, 'local re = gateway.regex.new("(unclosed")\n')
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "bad.lua:1:" in out and "gateway.regex.new" in out and "(unclosed" in out, out
    r = check_config(tmp_path, sink, 'local re = gateway.regex.new("x", "g")\n')
    assert r.returncode != 0 and "unknown flag 'g'" in r.stdout + r.stderr
    r = check_config(tmp_path, sink, 'local re = gateway.regex.new("x", "imsx")\n')
    assert r.returncode == 0, r.stdout + r.stderr
