"""What scripts see: every tx field in every hook, msg:header/headers/body/size, types as docs/lua.md says."""
from luahelp import data, session, start

FIELDS = r"""
local seen = {}
local function rec(tx, k, v)
  local s = seen[tx.session] or {}
  seen[tx.session] = s
  s[#s + 1] = {k, v}
end
local function show(v)
  if math.type(v) == "integer" then return "integer:" .. v end
  return type(v) .. ":" .. tostring(v)
end

function on_connect(tx)
  rec(tx, "X-Connect", table.concat({show(tx.client.ip), show(tx.client.port), show(tx.client.rdns),
      show(tx.listener.role), show(tx.tls), show(tx.trusted), show(tx.helo), show(tx.sender)}, " "))
end
function on_helo(tx, name)
  rec(tx, "X-Helo", show(name) .. " " .. show(tx.helo))
end
function on_mail_from(tx, addr)
  rec(tx, "X-Mail", table.concat({show(addr), show(tx.sender), show(tx.auth_user), show(tx.trusted),
      show(tx.helo), show(#tx.recipients), show(tx.tls), show(tx.listener.role)}, " "))
end
function on_rcpt_to(tx, addr)
  rec(tx, "X-Rcpt", show(addr) .. " [" .. table.concat(tx.recipients, ",") .. "]")
end
function on_data(tx, msg)
  for _, kv in ipairs(seen[tx.session] or {}) do tx:add_header(kv[1], kv[2]) end
  seen[tx.session] = nil
  tx:add_header("X-Size", show(msg.size))
  tx:add_header("X-Subject", show(msg:header("subject")))
  tx:add_header("X-Missing", show(msg:header("X-Nope")))
  tx:add_header("X-Got-Folded", show(msg:header("X-Folded")))
  tx:add_header("X-Got-Multi", show(table.concat(msg:headers("x-multi"), "|")))
  tx:add_header("X-Multi-None", show(#msg:headers("X-None")))
  local body = msg:body():gsub("\r\n", "/")
  tx:add_header("X-Body", show(body))
  tx:add_header("X-Spf", show(tx.spf.result) .. " " .. show(tx.spf.domain))
  local d = {}
  for _, e in ipairs(tx.dkim) do d[#d + 1] = e.domain .. "/" .. e.selector .. "/" .. e.result end
  tx:add_header("X-Dkim", #tx.dkim .. ":" .. table.concat(d, ","))
  tx:add_header("X-Rcpts", table.concat(tx.recipients, ","))
  tx:add_header("X-Env", show(tx.sender) .. " " .. show(tx.id ~= nil and #tx.id > 0))
end
"""

MESSAGE = ("Subject: hello world\r\n"
           "X-Folded: first part\r\n\tsecond part\r\n"
           "X-Multi: one\r\n"
           "X-Multi:   two\r\n"
           "\r\n"
           "line one\r\nline two\r\n")


def run(gw, sender="alice@sender.test", message=MESSAGE):
    c = session(gw.port, helo="client.test")
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<carol@example.test>")[0] == 250
    code, lines = data(c, message)
    assert code == 250, lines
    c.cmd("QUIT")
    c.close()


def test_fields_in_every_hook(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, FIELDS)
    run(gw)
    assert sink.wait_count(1)
    m = sink.messages[0]
    h = lambda name: m.header(name)  # noqa: E731
    ip, port, rdns, role, tls, trusted, helo, sender = h("X-Connect")[0].split(" ")
    assert ip == "string:127.0.0.1"
    assert port.startswith("integer:") and int(port.split(":")[1]) > 0
    assert rdns == "nil:nil"
    assert role == "string:inbound"
    assert tls == "boolean:false"
    assert trusted == "boolean:true"  # 127.0.0.0/8 is in the default [trusted] networks
    assert helo == "nil:nil" and sender == "nil:nil"
    assert h("X-Helo") == ["string:client.test nil:nil"]
    assert h("X-Mail") == ["string:alice@sender.test string:alice@sender.test nil:nil boolean:true "
                           "string:client.test integer:0 boolean:false string:inbound"]
    assert h("X-Rcpt") == ["string:bob@example.test []", "string:carol@example.test [bob@example.test]"]
    assert h("X-Size") == ["integer:%d" % len(MESSAGE)]
    assert h("X-Subject") == ["string:hello world"]
    assert h("X-Missing") == ["nil:nil"]
    assert h("X-Got-Folded") == ["string:first part\tsecond part"]
    assert h("X-Got-Multi") == ["string:one|two"]
    assert h("X-Multi-None") == ["integer:0"]
    assert h("X-Body") == ["string:line one/line two/"]
    assert h("X-Spf") == ["nil:nil nil:nil"]
    assert h("X-Dkim") == ["0:"]
    assert h("X-Rcpts") == ["bob@example.test,carol@example.test"]
    assert h("X-Env") == ["string:alice@sender.test boolean:true"]


def test_null_sender_and_body_cap(gateway_factory, sink, tmp_path):
    gw = start(gateway_factory, sink, tmp_path, FIELDS, max_body_bytes=6)
    run(gw, sender="")
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Mail")[0].startswith("string: string: ")  # <> is the empty string
    assert m.header("X-Body") == ["string:line o"]  # the first max_body_bytes bytes


def test_facts_from_other_plugins(gateway_factory, sink, tmp_path):
    extra = '\n[plugins.test_facts]\nrdns = "mx.client.test"\nauth_user = "alice"\n'
    gw = start(gateway_factory, sink, tmp_path, FIELDS, pipeline=("test_facts", "lua"), extra=extra,
               binary="smtp-gateway-test")
    msg = ("X-Test-Spf: softfail sender.test\r\n"
           "X-Test-Dkim: sender.test s1 pass\r\n"
           "X-Test-Dkim: other.test s2 fail\r\n"
           "Subject: facts\r\n\r\nbody\r\n")
    run(gw, message=msg)
    assert sink.wait_count(1)
    m = sink.messages[0]
    assert m.header("X-Connect")[0].split(" ")[2] == "string:mx.client.test"
    assert m.header("X-Mail")[0].split(" ")[2] == "string:alice"
    assert m.header("X-Spf") == ["string:softfail string:sender.test"]
    assert m.header("X-Dkim") == ["2:sender.test/s1/pass,other.test/s2/fail"]


def test_tls_submission_and_auth_user(tmp_path, sink):
    from edgetest import TlsClient, crypt_hash, gateway_config, make_cert, plain, start_gateway
    from gwtest import transaction
    cert, key = make_cert(tmp_path)
    users = tmp_path / "users"
    users.write_text("alice:%s\n" % crypt_hash("pw", "$6$"))
    script = tmp_path / "fields.lua"
    script.write_text(FIELDS)
    config = gateway_config([dict(role="submission", tls="starttls")], trusted=[], pipeline=["lua"],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n\n[auth]\nusers_file = "%s"\n'
                                 '\n[plugins.lua]\nscripts = ["%s"]\n' % (cert, key, users, script))
    gw = start_gateway(tmp_path, config, [sink.port], threads=1)
    try:
        c = TlsClient(gw.port)
        assert c.reply()[0] == 220
        c.ehlo()
        c.starttls()
        c.ehlo()
        code, lines = c.cmd("AUTH PLAIN " + plain("alice", "pw"))
        assert code == 235, lines
        assert transaction(c)[0] == 250
        c.close()
        assert sink.wait_count(1)
        m = sink.messages[0]
        connect = m.header("X-Connect")[0].split(" ")
        assert connect[3:6] == ["string:submission", "boolean:false", "boolean:false"]  # role, tls, trusted at connect
        mail = m.header("X-Mail")[0].split(" ")
        assert mail[2:4] == ["string:alice", "boolean:false"]  # auth_user, trusted
        assert mail[6:8] == ["boolean:true", "string:submission"]  # tls after STARTTLS
    finally:
        gw.stop()
