"""tx.session_data, tx.data, on_disconnect, tx:remove_header, tx.dmarc/dnsbl/rspamd and named Lua
instances ("lua:NAME"), through the real binary."""
import os
import socket
import subprocess
import threading
import time

from gwtest import BUILD, Client, free_port, gateway_toml
from luahelp import data, send_message, session, start, write

SESSION = r"""
function on_mail_from(tx, addr)
  tx.session_data.mails = (tx.session_data.mails or 0) + 1
  local before = tx.data.mark
  tx.data.mark = addr
  if addr:match("^probe") then
    return gateway.reject(550, "5.7.1", string.format("mails=%d before=%s", tx.session_data.mails, tostring(before)))
  end
end
function on_data(tx, msg)
  tx:add_header("X-Session", tostring(tx.session_data.mails))
  tx:add_header("X-Data", tostring(tx.data.mark))
end
"""


def test_session_data_and_data(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, SESSION)
    c = session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<r@example.test>")[0] == 250
    assert data(c, "Subject: one\r\n\r\nx\r\n")[0] == 250
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Session") == ["1"] and m.header("X-Data") == ["a@sender.test"]
    # after the message tx.data is fresh; tx.session_data goes on
    code, lines = c.cmd("MAIL FROM:<probe1@sender.test>")
    assert (code, lines[-1][10:]) == (550, "mails=2 before=nil"), lines
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<b@sender.test>")[0] == 250
    assert c.cmd("RSET")[0] == 250  # RSET ends the transaction: tx.data goes
    code, lines = c.cmd("MAIL FROM:<probe2@sender.test>")
    assert (code, lines[-1][10:]) == (550, "mails=4 before=nil"), lines
    c.close()
    # a new session starts with an empty tx.session_data
    c = session(gw.port)
    code, lines = c.cmd("MAIL FROM:<probe3@sender.test>")
    assert (code, lines[-1][10:]) == (550, "mails=1 before=nil"), lines
    c.close()


DISCONNECT = r"""
function on_connect(tx) tx.session_data.n = 0 end
function on_helo(tx, name) tx.session_data.n = tx.session_data.n + 1 end
function on_disconnect(tx)
  gateway.counter("disconnects")
  gateway.log("info", "bye port=" .. tx.client.port .. " helos=" .. tostring(tx.session_data.n) ..
              " sender=" .. tostring(tx.sender) .. ".")
  return gateway.reject(550, "5.7.1", "ignored")  -- verdicts are ignored here
end
"""


def wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def test_on_disconnect_every_session_end(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, DISCONNECT)
    expected = []
    c = session(gw.port)  # QUIT
    expected.append("bye port=%d helos=1 sender=nil." % c.sock.getsockname()[1])
    assert c.cmd("QUIT")[0] == 221
    c.close()
    c = session(gw.port)  # EHLO twice, MAIL, then the client goes away without QUIT
    expected.append("bye port=%d helos=2 sender=nil." % c.sock.getsockname()[1])
    c.cmd("EHLO again.test")
    assert c.cmd("MAIL FROM:<open@sender.test>")[0] == 250  # the open transaction ends first
    c.close()
    c = Client(gw.port)  # gone right after the greeting
    expected.append("bye port=%d helos=0 sender=nil." % c.sock.getsockname()[1])
    assert c.reply()[0] == 220
    c.close()
    assert wait_for(lambda: all(e in gw.log() for e in expected)), (expected, gw.log()[-3000:])
    assert gw.metric('smtpgw_lua_counter_total{name="disconnects"}') >= 3
    assert "lua_error" not in gw.log()  # the verdict of on_disconnect is ignored, not an error
    assert send_message(gw.port)[0] == 250  # and the gateway goes on


MEMORY = r"""
function on_connect(tx)
  tx.session_data.blob = string.rep("x", 2048) .. tx.session
  tx.session_data.list = {1, 2, 3, tx.session}
end
"""


def churn(port, n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        if _ % 2:
            s.sendall(b"QUIT\r\n")
            f.readline()
        s.close()  # half the sessions end without QUIT


def test_10000_sessions_leave_lua_memory_where_it_started(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, MEMORY, threads=2)
    gauge = 'smtpgw_lua_memory_bytes{instance="lua"}'
    churn(gw.port, 200)  # both worker states exist and have run
    time.sleep(0.2)
    churn(gw.port, 20)
    base = gw.metric(gauge)
    assert base and base > 0, gw.metrics()
    workers = [threading.Thread(target=churn, args=(gw.port, 2500)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    churn(gw.port, 20)  # the last sessions have ended and reported
    after = gw.metric(gauge)
    print("lua memory: before %d after %d bytes" % (base, after))
    # 10,000 kept tables would hold > 20 MB; what remains is garbage not yet collected
    assert after < base + (2 << 20), (base, after)
    assert "lua_error" not in gw.log()


REMOVE = r"""
function on_data(tx, msg)
  tx:add_header("X-Spam-Flag", "added by lua")
  local n = tx:remove_header("x-SPAM-flag")
  tx:add_header("X-Removed", tostring(n) .. " " .. tostring(msg:header("X-Spam-Flag")))
  if msg:header("Subject") == "bad name" then tx:remove_header("Bad Name:") end
end
"""


def test_remove_header(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, REMOVE)
    body = "X-Spam-Flag: YES\r\nSubject: t\r\nx-spam-flag: maybe\r\n  folded\r\nX-Keep: 1\r\n\r\nbody\r\n"
    assert send_message(gw.port, body=body)[0] == 250
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Spam-Flag") == ["added by lua"]  # the received ones went, the added one stays
    assert m.header("X-Removed") == ["2 nil"]
    assert m.header("X-Keep") == ["1"] and m.header("Subject") == ["t"]
    assert b"maybe" not in m.data and b"folded" not in m.data
    code, _ = send_message(gw.port, body="Subject: bad name\r\n\r\nx\r\n")
    assert code == 451
    assert "not a header field name" in gw.log()


FACTS = r"""
local function show(t)
  if t == nil then return "nil" end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then v = "{" .. show(v) .. "}" end
    out[#out + 1] = tostring(k) .. "=" .. tostring(v)
  end
  return table.concat(out, ",")
end
function on_data(tx, msg)
  tx:add_header("X-Dmarc", show(tx.dmarc))
  local hits = {}
  for _, h in ipairs(tx.dnsbl and tx.dnsbl.hits or {}) do hits[#hits + 1] = h.zone .. "/" .. h.weight .. "/" .. h.code end
  tx:add_header("X-Dnsbl", tx.dnsbl and (tx.dnsbl.score .. " " .. table.concat(hits, ";")) or "nil")
  tx:add_header("X-Rspamd", show(tx.rspamd))
  if tx.dmarc and tx.dmarc.result == "fail" and tx.dmarc.policy == "reject" then
    return gateway.reject(550, "5.7.1", "dmarc " .. tx.dmarc.domain)
  end
end
"""


def test_dmarc_dnsbl_rspamd_facts(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, FACTS, pipeline=("test_facts", "lua"), binary="smtp-gateway-test")
    body = ("X-Test-Dmarc: pass example.org quarantine none\r\n"
            "X-Test-Dnsbl: zen.test 2 127.0.0.2\r\nX-Test-Dnsbl: allow.test -1 127.0.0.10\r\n"
            "X-Test-Rspamd: add_header 7.5 15 BAYES_SPAM=5.1 R_DKIM_ALLOW=-0.2\r\n"
            "Subject: facts\r\n\r\nx\r\n")
    assert send_message(gw.port, body=body)[0] == 250
    assert send_message(gw.port, body="Subject: none\r\n\r\nx\r\n")[0] == 250
    assert sink.wait_count(2)
    m, bare = sink.messages
    assert m.header("X-Dmarc") == ["disposition=none,domain=example.org,policy=quarantine,result=pass"]
    assert m.header("X-Dnsbl") == ["1 zen.test/2/127.0.0.2;allow.test/-1/127.0.0.10"]
    assert m.header("X-Rspamd") == ["action=add header,required_score=15.0,score=7.5,"
                                    "symbols={BAYES_SPAM=5.1,R_DKIM_ALLOW=-0.2}"]
    assert bare.header("X-Dmarc") == ["nil"] and bare.header("X-Dnsbl") == ["nil"] and bare.header("X-Rspamd") == ["nil"]
    code, lines = send_message(gw.port, body="X-Test-Dmarc: fail bank.test reject reject\r\nSubject: x\r\n\r\nx\r\n")
    assert code == 550 and "dmarc bank.test" in lines[-1]


ALLOW = r"""
shared = "allow"  -- a global of this instance's scripts only
local n = 0
for i = 1, 2000 do n = n + i end
function on_rcpt_to(tx, addr)
  if addr:match("^vip@") then return gateway.accept() end
end
"""

POLICY = r"""
function on_rcpt_to(tx, addr)
  if addr:match("^loop@") then while true do end end
  return gateway.reject(550, "5.7.1", "policy saw shared=" .. tostring(shared))
end
"""


def instances_config(tmp_path, extra_table=""):
    allow = write(tmp_path, "allow.lua", ALLOW)
    policy = write(tmp_path, "policy.lua", POLICY)
    return ('\n[plugins."lua:allow"]\nscripts = ["%s"]\n'
            '\n[plugins."lua:policy"]\nscripts = ["%s"]\nmax_instructions = 1000\non_error = "reject"\n%s'
            % (allow, policy, extra_table))


def test_named_instances(gateway_factory, sink, tmp_path):
    gw = gateway_factory(instances_config(tmp_path), upstream_ports=[sink.port],
                         pipeline=["lua:allow", "lua:policy"])
    c = session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250  # lua:allow accepted: lua:policy did not run
    code, lines = c.cmd("RCPT TO:<other@example.test>")
    assert code == 550 and lines[-1].endswith("policy saw shared=nil"), lines  # its own scripts and state
    code, lines = c.cmd("RCPT TO:<loop@example.test>")
    assert code == 550 and "Rejected by local policy" in lines[-1], lines  # its own bounds and on_error
    c.close()
    assert "max_instructions = 1000" in gw.log()
    assert gw.metric('smtpgw_lua_memory_bytes{instance="lua:allow"}') > 0
    assert gw.metric('smtpgw_lua_memory_bytes{instance="lua:policy"}') > 0


def test_instance_table_needs_its_pipeline_entry(tmp_path, sink):
    cfg = tmp_path / "gw.toml"
    binary = os.path.join(BUILD, "smtp-gateway")
    ports = free_port(), free_port()

    def config(pipeline):
        return gateway_toml(*ports, [sink.port], pipeline=pipeline, max_message_size=1000000,
                            max_recipients=10, max_connections=10, threads=1, drain_timeout="1s",
                            upstream_timeout="5s", body=instances_config(tmp_path))
    cfg.write_text(config(["lua:allow", "lua:policy"]))
    ok = subprocess.run([binary, "--check-config", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    cfg.write_text(config(["lua:allow"]))
    bad = subprocess.run([binary, "--check-config", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "lua:policy" in bad.stdout + bad.stderr
