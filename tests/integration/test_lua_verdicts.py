"""The lua plugin against the real binary: every hook's verdicts, accept/continue across scripts,
add_header at the upstream, gateway.log, gateway.counter, bad arguments -> on_error."""
from luahelp import alive, data, send_message, session, start, write

POLICY = """
function on_connect(tx)
  if tx.client.port == nil then return gateway.reject() end
end
function on_helo(tx, name)
  if name == "bad.helo" then return gateway.reject(550, "5.7.1", "helo says no") end
  if name == "slow.helo" then return gateway.tempfail(450, "4.7.2", "helo later") end
end
function on_mail_from(tx, addr)
  if addr == "spammer@bad.test" then return gateway.reject(550, "5.7.1", "sender refused") end
  if addr == "later@bad.test" then return gateway.tempfail(451, "4.7.1", "sender later") end
end
function on_rcpt_to(tx, addr)
  if addr:find("^nobody@") then return gateway.reject(550, "5.1.1", "no such user here") end
  if addr:find("^busy@") then return gateway.tempfail(452, "4.2.2", "mailbox busy") end
end
function on_data(tx, msg)
  local s = msg:header("Subject") or ""
  if s:find("VIAGRA") then return gateway.reject(554, "5.7.1", "spam refused") end
  if s:find("LATER") then return gateway.tempfail() end
  tx:add_header("X-Lua-Policy", "checked " .. #tx.recipients)
  gateway.log("info", "policy looked at " .. s)
  gateway.counter("policy_checked", 2)
end
"""


def test_every_stage_verdict(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, POLICY)
    c = session(gw.port)
    code, lines = c.cmd("EHLO bad.helo")
    assert code == 550 and "helo says no" in lines[-1] and "5.7.1" in lines[-1]
    code, lines = c.cmd("EHLO slow.helo")
    assert code == 450 and "4.7.2 helo later" in lines[-1]
    code, _ = c.cmd("EHLO good.helo")  # the session stays open after a HELO verdict
    assert code == 250
    code, lines = c.cmd("MAIL FROM:<spammer@bad.test>")
    assert code == 550 and "sender refused" in lines[-1]
    code, lines = c.cmd("MAIL FROM:<later@bad.test>")
    assert code == 451 and "sender later" in lines[-1]
    code, _ = c.cmd("MAIL FROM:<alice@sender.test>")
    assert code == 250
    code, lines = c.cmd("RCPT TO:<nobody@example.test>")
    assert code == 550 and "5.1.1 no such user here" in lines[-1]
    code, lines = c.cmd("RCPT TO:<busy@example.test>")
    assert code == 452 and "4.2.2 mailbox busy" in lines[-1]
    code, _ = c.cmd("RCPT TO:<bob@example.test>")
    assert code == 250
    code, lines = data(c, "Subject: buy VIAGRA\r\n\r\nx\r\n")
    assert code == 554 and "spam refused" in lines[-1]
    c.cmd("MAIL FROM:<alice@sender.test>")
    c.cmd("RCPT TO:<bob@example.test>")
    code, lines = data(c, "Subject: try LATER\r\n\r\nx\r\n")
    assert code == 451 and lines[-1].startswith("451 4.7.1")
    c.cmd("MAIL FROM:<alice@sender.test>")
    c.cmd("RCPT TO:<bob@example.test>")
    c.cmd("RCPT TO:<carol@example.test>")
    code, lines = data(c, "Subject: hello\r\n\r\nbody\r\n")
    assert code == 250, lines
    c.cmd("QUIT")
    assert sink.wait_count(1)
    assert sink.count() == 1  # the refused messages never reached the upstream
    msg = sink.messages[0]
    assert msg.rcpts == ["bob@example.test", "carol@example.test"]
    assert msg.header("X-Lua-Policy") == ["checked 2"]
    assert "policy looked at hello" in gw.log()
    assert gw.metric('smtpgw_lua_counter_total{name="policy_checked"}') == 2


def test_connect_reject_and_tempfail(gateway_factory, sink, tmp_path):
    from gwtest import Client
    gw = start(gateway_factory, sink, tmp_path, """
        function on_connect(tx) return gateway.reject(554, "5.7.1", "go away") end
    """)
    c = Client(gw.port)
    code, lines = c.reply()
    assert code == 554 and "go away" in lines[-1]
    code, _ = c.cmd("EHLO x.test")
    assert code == 503
    code, _ = c.cmd("QUIT")
    assert code == 221
    c.close()
    gw2 = start(gateway_factory, sink, tmp_path, scripts=[write(tmp_path, "t.lua", """
        function on_connect(tx) return gateway.tempfail(421, "4.7.0", "busy now") end
    """)])
    c = Client(gw2.port)
    code, lines = c.reply()
    assert code == 421 and "busy now" in lines[-1]
    assert c.closed()
    c.close()


def test_accept_ends_stage_and_first_verdict_wins(gateway_factory, sink, tmp_path):
    first = write(tmp_path, "first.lua", """
        function on_rcpt_to(tx, addr)
          if addr:find("^vip@") then return gateway.accept() end
          if addr:find("^both@") then return gateway.reject(550, "5.7.1", "first script") end
        end
        function on_data(tx, msg) tx:add_header("X-Order", "first") end
    """)
    second = write(tmp_path, "second.lua", """
        function on_rcpt_to(tx, addr)
          if addr:find("^vip@") or addr:find("^both@") or addr:find("^deny@") then
            return gateway.reject(550, "5.7.1", "second script")
          end
        end
        function on_data(tx, msg) tx:add_header("X-Order", "second") end
    """)
    gw = start(gateway_factory, sink, tmp_path, scripts=[first, second])
    c = session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    assert c.cmd("RCPT TO:<vip@example.test>")[0] == 250  # accept: the second script never ran
    code, lines = c.cmd("RCPT TO:<both@example.test>")
    assert code == 550 and "first script" in lines[-1]
    code, lines = c.cmd("RCPT TO:<deny@example.test>")  # the first said nothing: the second decides
    assert code == 550 and "second script" in lines[-1]
    code, _ = data(c, "Subject: x\r\n\r\ny\r\n")
    assert code == 250
    assert sink.wait_count(1)
    assert sink.messages[0].header("X-Order") == ["first", "second"]


def test_bad_arguments_raise_and_give_on_error(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, """
        function on_rcpt_to(tx, addr)
          if addr:find("^r250@") then return gateway.reject(250, "2.0.0", "sneaky") end
          if addr:find("^t550@") then return gateway.tempfail(550, "5.7.1", "wrong class") end
          if addr:find("^crlf@") then return gateway.reject(550, "5.7.1", "a\\r\\nQUIT") end
          if addr:find("^enh@") then return gateway.reject(550, "4.7.1", "wrong enhanced") end
          if addr:find("^table@") then return {code = 250} end
        end
        function on_data(tx, msg)
          local s = msg:header("Subject")
          if s == "colon" then tx:add_header("X-Bad:Name", "v") end
          if s == "crlf" then tx:add_header("X-Inject", "v\\r\\nBcc: evil@x.test") end
          if s == "nul" then tx:add_header("X-Nul", "a\\0b") end
          if s == "space" then tx:add_header("X Bad", "v") end
        end
    """)
    c = session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    for rcpt in ("r250", "t550", "crlf", "enh", "table"):
        code, lines = c.cmd("RCPT TO:<%s@example.test>" % rcpt)
        assert code == 451 and lines[-1].startswith("451 4.7.1"), (rcpt, lines)
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    for subject in ("colon", "crlf", "nul", "space"):
        code, lines = data(c, "Subject: %s\r\n\r\nx\r\n" % subject)
        assert code == 451, (subject, lines)
        c.cmd("MAIL FROM:<a@sender.test>")
        c.cmd("RCPT TO:<bob@example.test>")
    code, _ = data(c, "Subject: fine\r\n\r\nx\r\n")
    assert code == 250
    assert sink.wait_count(1) and sink.count() == 1
    assert not sink.messages[0].header("X-Inject") and not sink.messages[0].header("Bcc")
    log = gw.log()
    assert "gateway.reject needs a 5xx code" in log
    assert "gateway.tempfail needs a 4xx code" in log
    assert "policy.lua:" in log  # errors name the script and line


def test_on_error_reject(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, """
        function on_mail_from(tx, addr) error("boom") end
    """, on_error="reject")
    c = session(gw.port)
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 550 and "5.7.1" in lines[-1]
    assert "policy.lua:2: boom" in gw.log()


def test_accept_at_every_stage_skips_later_scripts(gateway_factory, sink, tmp_path):
    first = write(tmp_path, "accept.lua", """
        function on_connect(tx) return gateway.accept() end
        function on_helo(tx, name) return gateway.accept() end
        function on_mail_from(tx, addr) return gateway.accept() end
        function on_rcpt_to(tx, addr) return gateway.accept() end
        function on_data(tx, msg) return gateway.accept() end
    """)
    second = write(tmp_path, "deny.lua", """
        function on_connect(tx) return gateway.reject(554, "5.7.1", "deny connect") end
        function on_helo(tx, name) return gateway.reject(550, "5.7.1", "deny helo") end
        function on_mail_from(tx, addr) return gateway.reject(550, "5.7.1", "deny mail") end
        function on_rcpt_to(tx, addr) return gateway.reject(550, "5.7.1", "deny rcpt") end
        function on_data(tx, msg) return gateway.reject(550, "5.7.1", "deny data") end
    """)
    gw = start(gateway_factory, sink, tmp_path, scripts=[first, second])
    code, lines = send_message(gw.port)
    assert code == 250, lines
    assert sink.wait_count(1)
    # the same scripts the other way round: the deny script decides every stage, starting at connect
    gw2 = start(gateway_factory, sink, tmp_path, scripts=[second, first])
    from gwtest import Client
    c = Client(gw2.port)
    code, lines = c.reply()
    assert code == 554 and "deny connect" in lines[-1]
    c.close()
