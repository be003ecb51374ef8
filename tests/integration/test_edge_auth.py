"""SMTP AUTH (RFC 4954) on submission listeners: PLAIN and LOGIN after TLS, crypt(3) users_file."""
import signal
import subprocess
import threading
import time

import pytest

from gwtest import Gateway, transaction
from edgetest import (b64, crypt_hash, gateway_config, greet, make_cert, plain, start_gateway,
                      wait_log)

PASSWORDS = {"alice": "alice-pw", "bob": "bob pw with spaces", "carol": "c4rol!"}


def write_users(path, extra=""):
    with open(path, "w") as f:
        f.write("# test users\n\n")
        f.write("alice:%s\n" % crypt_hash(PASSWORDS["alice"], "$y$"))                      # yescrypt
        f.write("bob:{SHA512-CRYPT}%s\n" % crypt_hash(PASSWORDS["bob"], "$6$"))             # SHA512-CRYPT
        f.write("carol:%s:1000:1000::/home/carol\n" % crypt_hash(PASSWORDS["carol"], "$2b$", 5))  # bcrypt
        f.write(extra)


@pytest.fixture
def auth_gw(tmp_path, sink):
    """submission + starttls (gw.port), submission + implicit + require_auth (gw.implicit),
    inbound + none (gw.inbound). xclient on: the sink records XCLIENT LOGIN."""
    cert, key = make_cert(tmp_path)
    users = str(tmp_path / "users")
    write_users(users)
    config = gateway_config(
        [dict(role="submission", tls="starttls"), dict(role="submission", tls="implicit", require_auth=True),
         dict()],
        upstream="xclient = true\n", trusted=[], relay=["example.test"],
        body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n\n[auth]\nusers_file = "%s"\n' % (cert, key, users))
    gw = start_gateway(tmp_path, config, [sink.port], threads=1)
    gw.implicit, gw.inbound, gw.users = gw.ports[1], gw.ports[2], users
    yield gw
    gw.stop()


def test_auth_not_before_tls(auth_gw):
    c = greet(auth_gw.port)
    assert not any(e.startswith("AUTH") for e in c.ext), c.ext
    code, lines = c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]))
    assert code in (530, 538) and "5.7" in lines[0], lines
    c.starttls()
    assert "AUTH PLAIN LOGIN" in c.ehlo()


def test_auth_plain_initial_response_and_login_reaches_upstream(auth_gw, sink):
    before = auth_gw.metric('smtpgw_auth_total{result="success"}')
    c = greet(auth_gw.port)
    c.starttls()
    c.ehlo()
    code, lines = c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]))
    assert code == 235 and "2.7.0" in lines[0], lines
    code, lines = c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]))
    assert code == 503, lines  # once per session
    assert not any(e.startswith("AUTH") for e in c.ehlo())
    # an authenticated client relays to any domain, MAIL may carry AUTH=
    code, lines = transaction(c, rcpts=("someone@elsewhere.test",))
    assert code == 250, lines
    assert sink.wait_count(1)
    assert "LOGIN=alice" in sink.messages[0].xclient, sink.messages[0].xclient
    assert auth_gw.metric('smtpgw_auth_total{result="success"}') == before + 1
    assert "result=success" in [l for l in auth_gw.log().splitlines() if "auth " in l or "event=auth" in l][-1]


def test_auth_plain_after_challenge_and_authzid(auth_gw):
    c = greet(auth_gw.port)
    c.starttls()
    c.ehlo()
    code, lines = c.cmd("AUTH PLAIN")
    assert code == 334 and lines[0] == "334 ", lines
    code, lines = c.cmd(plain("bob", PASSWORDS["bob"], authz="bob"))
    assert code == 235, lines
    c.close()


def test_auth_login_bcrypt(auth_gw):
    c = greet(auth_gw.implicit, implicit=True)
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 530, lines  # require_auth
    code, lines = c.cmd("AUTH LOGIN")
    assert lines == ["334 VXNlcm5hbWU6"], lines
    code, lines = c.cmd(b64("carol"))
    assert lines == ["334 UGFzc3dvcmQ6"], lines
    code, lines = c.cmd(b64(PASSWORDS["carol"]))
    assert code == 235, lines
    code, lines = c.cmd("MAIL FROM:<carol@example.test> AUTH=<>")
    assert code == 250, lines
    c.close()
    # LOGIN with the user name as initial response
    c = greet(auth_gw.implicit, implicit=True)
    code, lines = c.cmd("AUTH LOGIN " + b64("carol"))
    assert lines == ["334 UGFzc3dvcmQ6"], lines
    assert c.cmd(b64(PASSWORDS["carol"]))[0] == 235


def test_auth_failures_delay_grows_and_is_capped(auth_gw):
    before = auth_gw.metric('smtpgw_auth_total{result="failure"}')
    c = greet(auth_gw.port)
    c.starttls()
    c.ehlo()
    times = []
    for attempt in (plain("alice", "wrong"), plain("nobody", "x"), plain("alice", "wrong2")):
        t = time.monotonic()
        code, lines = c.cmd("AUTH PLAIN " + attempt)
        times.append(time.monotonic() - t)
        assert code == 535 and "5.7.8" in lines[0], lines
    # 0.5 s, 1 s, 2 s: grows per client IP; never more than 5 s a reply
    # (differences, so the hashing time on a busy machine cancels out)
    assert 0.4 < times[0] < 5.5 and times[1] - times[0] > 0.3 and times[2] - times[1] > 0.6, times
    assert max(times) < 5.5
    # the count is per client IP, not per connection
    c2 = greet(auth_gw.implicit, implicit=True)
    t = time.monotonic()
    assert c2.cmd("AUTH PLAIN " + plain("bob", "nope"))[0] == 535
    assert 3.0 < time.monotonic() - t < 5.5
    # the right password still works afterwards
    assert c2.cmd("AUTH PLAIN " + plain("bob", PASSWORDS["bob"]))[0] == 235
    assert auth_gw.metric('smtpgw_auth_total{result="failure"}') == before + 4
    assert "result=failure" in auth_gw.log()


def test_auth_syntax_errors(auth_gw):
    c = greet(auth_gw.port)
    c.starttls()
    c.ehlo()
    code, lines = c.cmd("AUTH PLAIN not*base64")
    assert code == 501 and "5.5.2" in lines[0], lines
    code, lines = c.cmd("AUTH CRAM-MD5")
    assert code == 504, lines
    code, lines = c.cmd("AUTH PLAIN")
    assert code == 334
    code, lines = c.cmd("*")
    assert code == 501, lines  # cancelled
    code, lines = c.cmd("AUTH LOGIN")
    assert code == 334
    code, lines = c.cmd(b64("alice"))
    code, lines = c.cmd("%%%")
    assert code == 501 and "5.5.2" in lines[0], lines
    # still usable, and not authenticated
    code, lines = c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]))
    assert code == 235, lines


def test_no_auth_on_inbound_listener(auth_gw):
    c = greet(auth_gw.inbound)
    assert not any(e.startswith("AUTH") for e in c.ext)
    code, lines = c.cmd("AUTH PLAIN " + plain("alice", PASSWORDS["alice"]))
    assert code == 502, lines


def test_hashing_does_not_stall_the_event_loop(tmp_path, sink):
    """One worker thread; a slow bcrypt (cost 14) runs while another client's commands are answered."""
    cert, key = make_cert(tmp_path)
    users = str(tmp_path / "users")
    with open(users, "w") as f:
        f.write("slow:%s\n" % crypt_hash("pw", "$2b$", 14))
    config = gateway_config([dict(role="submission", tls="implicit")],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n[auth]\nusers_file = "%s"\n' % (cert, key, users))
    gw = start_gateway(tmp_path, config, [sink.port], threads=1)
    try:
        slow = greet(gw.port, implicit=True)
        other = greet(gw.port, implicit=True)
        result = {}

        def auth():
            t = time.monotonic()
            result["code"] = slow.cmd("AUTH PLAIN " + plain("slow", "pw"))[0]
            result["t"] = time.monotonic() - t
        th = threading.Thread(target=auth)
        th.start()
        time.sleep(0.15)
        worst = 0.0
        while th.is_alive():
            t = time.monotonic()
            assert other.cmd("NOOP")[0] == 250
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.05)
        th.join()
        assert result["code"] == 235
        print("bcrypt cost 14 AUTH: %.2f s; slowest NOOP meanwhile: %.1f ms" % (result["t"], worst * 1000))
        assert result["t"] > 0.3, result  # the hash really was slow...
        assert worst < 0.5 and worst < result["t"] / 2, worst  # ...and the event loop kept answering meanwhile
    finally:
        gw.stop()


def test_users_file_errors_and_reload(auth_gw, tmp_path):
    # SIGHUP re-reads the users file
    write_users(auth_gw.users, "dave:%s\n" % crypt_hash("dave-pw", "$6$"))
    mark = len(auth_gw.log())
    auth_gw.signal(signal.SIGHUP)
    assert wait_log(auth_gw, "reloaded", start=mark)
    c = greet(auth_gw.implicit, implicit=True)
    assert c.cmd("AUTH PLAIN " + plain("dave", "dave-pw"))[0] == 235
    # a bad line: the reload is refused with file:line, the old users stay
    write_users(auth_gw.users, "this line is broken\n")
    mark = len(auth_gw.log())
    auth_gw.signal(signal.SIGHUP)
    assert wait_log(auth_gw, "reload_failed", start=mark)
    assert auth_gw.users + ":6:" in auth_gw.log()[mark:]
    c = greet(auth_gw.implicit, implicit=True)
    assert c.cmd("AUTH PLAIN " + plain("dave", "dave-pw"))[0] == 235
    # --check-config says the same and exits 1
    r = subprocess.run([auth_gw.binary, "--check-config", "--config", auth_gw.config_path], capture_output=True,
                       cwd=str(tmp_path))
    assert r.returncode == 1
    assert (auth_gw.users + ":6:").encode() in r.stderr, r.stderr


def test_auth_exchange_timeout(tmp_path, sink):
    cert, key = make_cert(tmp_path)
    users = str(tmp_path / "users")
    write_users(users)
    config = gateway_config([dict(role="submission", tls="implicit")],
                            body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n[auth]\nusers_file = "%s"\n' % (cert, key, users))
    gw = start_gateway(tmp_path, config, [sink.port], command_timeout="1s")
    try:
        c = greet(gw.port, implicit=True)
        assert c.cmd("AUTH LOGIN")[0] == 334
        t = time.monotonic()
        code, lines = c.reply()  # we never answer the challenge
        assert code == 421 and "4.4.2" in lines[0], lines
        assert 0.8 < time.monotonic() - t < 5
        assert c.closed()
    finally:
        gw.stop()


def test_require_auth_without_tls_is_a_config_error(tmp_path, sink):
    users = str(tmp_path / "users")
    write_users(users)
    config = gateway_config([dict(role="submission", require_auth=True)],
                            body='\n[auth]\nusers_file = "%s"\n' % users)
    gw = Gateway(tmp_path, upstream_ports=[sink.port], **config)
    r = subprocess.run([gw.binary, "--check-config", "--config", gw.config_path], capture_output=True)
    assert r.returncode == 1
    assert b"require_auth" in r.stderr and (gw.config_path + ":").encode() in r.stderr, r.stderr
