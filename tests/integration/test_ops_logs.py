"""Logs an admin can grep: the transaction line carries Message-ID, TLS version, AUTH user and, for a
refused transaction, the plugin and its reply; JSON lines are always valid JSON (numbers and
booleans as such, lists as lists, bytes outside UTF-8 escaped), also on hostile input."""
import json

from gwtest import Client, Gateway, send_message

POLICY = """
function on_helo(tx, name)
  gateway.log("info", "helo " .. name)
end
function on_mail_from(tx, addr)
  if addr:find("spammer", 1, true) then return gateway.reject(550, "5.7.1", "no spammers here") end
end
"""


def start(tmp_path, sink, fmt):
    script = tmp_path / "policy.lua"
    script.write_text(POLICY)
    body = '\n[relay]\ndomains = ["example.test"]\n[plugins.lua]\nscripts = ["%s"]\n' % script
    gw = Gateway(tmp_path, body.replace("[log]", ""), upstream_ports=[sink.port], pipeline=["lua"])
    text = open(gw.config_path).read().replace('level = "debug"', 'level = "debug"\nformat = "%s"' % fmt)
    open(gw.config_path, "w").write(text)
    gw.start()
    return gw


def json_lines(gw):
    raw = open(gw.log_path, "rb").read()
    out = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        text = line.decode("utf-8")  # strict: any byte outside UTF-8 fails here
        out.append(json.loads(text))
    return out


def transactions(lines):
    return [l for l in lines if l.get("event") == "transaction"]


def test_json_transaction_line(tmp_path, sink):
    gw = start(tmp_path, sink, "json")
    try:
        body = b"Message-ID: <abc.123@sender.test>\r\nSubject: t\r\n\r\nhello\r\n"
        code, _ = send_message(gw.port, rcpts=("bob@example.test", "carol@example.test"), body=body)
        assert code == 250
        code, lines = send_message(gw.port, sender="spammer@sender.test")
        assert code == 550
        gw.stop()
        lines = json_lines(gw)
        for l in lines:
            assert l["level"] in ("debug", "info", "warn", "error")
        tx = transactions(lines)
        ok = [t for t in tx if t["outcome"] == "delivered"][0]
        assert ok["message_id"] == "<abc.123@sender.test>"
        assert ok["recipients"] == ["bob@example.test", "carol@example.test"]
        assert isinstance(ok["size"], int) and ok["size"] == len(body) or ok["size"] > 0
        assert isinstance(ok["duration_ms"], int)
        assert ok["tls"] == "none" and ok["auth_user"] == ""
        assert ok["refused_by"] == "" and isinstance(ok["verdicts"], list)
        bad = [t for t in tx if t["outcome"] == "rejected"][0]
        assert bad["refused_by"] == "lua" and "550 5.7.1 no spammers here" in bad["reason"]
        assert bad["sender"] == "spammer@sender.test"
    finally:
        gw.stop()


def test_json_stays_valid_on_hostile_input(tmp_path, sink):
    gw = start(tmp_path, sink, "json")
    try:
        c = Client(gw.port)
        assert c.reply()[0] == 220
        c.send(b"EHLO h\xff\xfe\xc3\x28\x01\x1b[31m\"\\q\r\n")
        c.reply()
        c.send(b"MAIL FROM:<a\xc0\xafb\x7f\"@sender.test>\r\n")
        c.reply()
        c.send(b"RCPT TO:<\xed\xa0\x80@example.test>\r\n")
        c.reply()
        c.send(b"XYZZY \xf5\x80\x80\x80 \x00\r\n")
        c.reply()
        c.send(b"QUIT\r\n")
        c.close()
        body = b"Message-ID: <\xff\xfe\x01\x1b\"q\\@sender.test>\r\nSubject: \xc3\x28\r\n\r\nhello\r\n"
        code, _ = send_message(gw.port, body=body)
        assert code == 250
        gw.stop()
        lines = json_lines(gw)  # every line is valid UTF-8 and valid JSON
        assert any(l.get("event") == "connect" and l.get("trusted") is True for l in lines)
        tx = [t for t in transactions(lines) if t["outcome"] == "delivered"][0]
        # the invalid bytes are there, escaped as \xNN, the control characters as themselves
        assert tx["message_id"] == '<\\xff\\xfe\x01\x1b"q\\@sender.test>', tx["message_id"]
    finally:
        gw.stop()


def test_text_transaction_line(tmp_path, sink):
    gw = start(tmp_path, sink, "text")
    try:
        body = b"Message-ID: <m1@sender.test>\r\nSubject: t\r\n\r\nhello\r\n"
        assert send_message(gw.port, body=body)[0] == 250
        assert send_message(gw.port, sender="spammer@sender.test")[0] == 550
        gw.stop()
        log = gw.log()
        ok = [l for l in log.splitlines() if " transaction " in l and "outcome=delivered" in l][0]
        assert "message_id=<m1@sender.test>" in ok and "tls=none" in ok and "recipients=bob@example.test" in ok
        bad = [l for l in log.splitlines() if " transaction " in l and "outcome=rejected" in l][0]
        assert "refused_by=lua" in bad and 'reason="550 5.7.1 no spammers here"' in bad
    finally:
        gw.stop()
