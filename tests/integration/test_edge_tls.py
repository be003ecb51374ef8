"""TLS at the edge (RFC 3207 STARTTLS, RFC 8314 implicit TLS) against the real binary.

Clients: Python's ssl, `openssl s_client`, `swaks --tls`. Certificates are made per test with openssl.
"""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from gwtest import transaction
from edgetest import TlsClient, gateway_config, greet, make_cert, start_gateway, wait_log


@pytest.fixture
def tls_gw(tmp_path, sink):
    """Listeners: starttls (gw.port), implicit (gw.implicit), starttls with require_tls (gw.strict)."""
    cert, key = make_cert(tmp_path, "gw.test")
    config = gateway_config(
        [dict(tls="starttls"), dict(tls="implicit"), dict(tls="starttls", require_tls=True)],
        body='\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n' % (cert, key))
    gw = start_gateway(tmp_path, config, [sink.port])
    gw.implicit, gw.strict, gw.cert, gw.key = gw.ports[1], gw.ports[2], cert, key
    yield gw
    gw.stop()


def test_starttls_upgrade_and_message(tls_gw, sink):
    c = greet(tls_gw.port)
    assert "STARTTLS" in c.ext
    c.starttls()
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    ext = c.ehlo()
    assert "STARTTLS" not in ext, ext  # RFC 3207: not offered again once in TLS
    code, lines = c.cmd("STARTTLS")
    assert code == 502, lines
    code, lines = transaction(c)
    assert code == 250, lines
    assert sink.wait_count(1)
    received = sink.messages[0].header("Received")[0]
    assert "with ESMTPS" in received, received
    c.close()


def test_starttls_resets_session(tls_gw):
    c = greet(tls_gw.port)
    c.starttls()
    # RFC 3207 §4.2: the session starts over, the client must EHLO again
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 503, lines
    c.close()


@pytest.mark.parametrize("injected", ["RSET", "MAIL FROM:<evil@sender.test>"])
def test_starttls_plaintext_injection_is_discarded(tls_gw, sink, injected):
    """CVE-2011-0411: commands pipelined after STARTTLS in the same packet never run after the handshake."""
    c = TlsClient(tls_gw.port)
    assert c.reply()[0] == 220
    c.ehlo()
    c.send("STARTTLS\r\n%s\r\n" % injected)  # one write, one packet
    code, lines = c.reply()
    assert code == 220, lines
    c.sock = c.ctx.wrap_socket(c.sock, server_hostname="gw.test")
    c.sock.settimeout(0.7)
    with pytest.raises((socket.timeout, TimeoutError)):
        data = c.sock.recv(4096)  # a reply to the injected command would arrive here
        pytest.fail("reply to an injected command: %r" % data)
    c.sock.settimeout(10)
    ext = c.ehlo()  # the first reply after the handshake is the EHLO's
    assert "STARTTLS" not in ext
    code, lines = c.cmd("MAIL FROM:<good@sender.test>")
    assert code == 250, lines  # not 503 "nested MAIL": the injected MAIL did not run
    code, lines = c.cmd("RCPT TO:<bob@example.test>")
    assert code == 250
    c.cmd("QUIT")
    c.close()
    assert not any("evil" in cmd for cmd in sink.commands), sink.commands


def test_implicit_tls(tls_gw, sink):
    c = greet(tls_gw.implicit, implicit=True)
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert "STARTTLS" not in c.ext
    code, lines = transaction(c)
    assert code == 250, lines
    assert sink.wait_count(1)
    assert "with ESMTPS" in sink.messages[0].header("Received")[0]
    c.close()


def test_require_tls(tls_gw):
    c = greet(tls_gw.strict)
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 530 and "5.7.0" in lines[0], lines
    c.starttls()
    c.ehlo()
    code, lines = c.cmd("MAIL FROM:<a@sender.test>")
    assert code == 250, lines
    c.close()


def s_client(port, *args, starttls=True, data=b"QUIT\r\n"):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "gw.test"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    cmd += list(args)
    return subprocess.run(cmd, input=data, capture_output=True, timeout=20)


def test_tls12_minimum_and_failed_handshake_keeps_serving(tls_gw, sink):
    before_fail = tls_gw.metric('smtpgw_tls_handshakes_total{result="failed"}')
    # A client that offers at most TLS 1.1 (SECLEVEL=0 lets OpenSSL 3 try it at all): refused.
    r = s_client(tls_gw.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert b"Cipher is (NONE)" in r.stdout and b"alert protocol version" in r.stderr, (r.stdout[-500:], r.stderr)
    r = s_client(tls_gw.implicit, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", starttls=False)
    assert b"Cipher is (NONE)" in r.stdout and b"alert protocol version" in r.stderr, (r.stdout[-500:], r.stderr)
    # TLS 1.2 and 1.3 work, through STARTTLS and implicitly
    for args, starttls, port in ((["-tls1_2"], True, tls_gw.port), (["-tls1_3"], True, tls_gw.port),
                                 (["-tls1_2"], False, tls_gw.implicit)):
        r = s_client(port, *args, starttls=starttls)
        out = r.stdout.decode("utf-8", "replace")
        assert "Protocol  : TLSv1.%s" % args[0][-1] in out or "New, TLSv1.%s" % args[0][-1] in out, out[-800:]
    # garbage instead of a ClientHello after STARTTLS
    c = TlsClient(tls_gw.port)
    c.reply()
    c.ehlo()
    c.cmd("STARTTLS")
    c.send(b"this is not TLS\r\n" * 10)
    assert c.closed()
    assert wait_log(tls_gw, "tls_handshake_failed")
    log = tls_gw.log()
    assert "client=127.0.0.1" in [l for l in log.splitlines() if "tls_handshake_failed" in l][0]
    assert tls_gw.metric('smtpgw_tls_handshakes_total{result="failed"}') >= before_fail + 3
    # the process is alive and serving
    assert tls_gw.proc.poll() is None
    c = greet(tls_gw.implicit, implicit=True)
    assert transaction(c)[0] == 250
    assert tls_gw.metric('smtpgw_tls_handshakes_total{result="ok"}') >= 4


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_starttls(tls_gw, sink):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % tls_gw.port, "--tls", "--from", "a@sender.test",
                        "--to", "bob@example.test", "--helo", "swaks.test", "--body", "via swaks"],
                       capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert "TLS started" in out
    assert sink.wait_count(1)
    assert b"via swaks" in sink.messages[0].body
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % tls_gw.implicit, "--tlsc", "--from", "a@sender.test",
                        "--to", "bob@example.test", "--body", "implicit via swaks"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode()[-800:]
    assert sink.wait_count(2)


def test_certificate_reloaded_on_sighup(tls_gw, tmp_path, sink):
    old = greet(tls_gw.port)
    old.starttls()
    assert old.peer_cn() == "gw.test"
    old.ehlo()
    # new certificate and key in place of the old files, then SIGHUP
    cert2, key2 = make_cert(tmp_path, "new.gw.test", name="cert2")
    shutil.copy(cert2, tls_gw.cert)
    shutil.copy(key2, tls_gw.key)
    mark = len(tls_gw.log())
    tls_gw.signal(signal.SIGHUP)
    assert wait_log(tls_gw, "reloaded", start=mark)
    c = greet(tls_gw.port)
    c.starttls()
    assert c.peer_cn() == "new.gw.test"
    c2 = greet(tls_gw.implicit, implicit=True)
    assert c2.peer_cn() == "new.gw.test"
    # the session that started before the reload goes on in its TLS session
    code, lines = transaction(old)
    assert code == 250, lines
    # a key that does not match the certificate is refused; the running one stays
    shutil.copy(key2 + "", tls_gw.key)
    make_cert(tmp_path, "other.test", name="cert3")
    shutil.copy(os.path.join(str(tmp_path), "cert3.pem"), tls_gw.cert)
    mark = len(tls_gw.log())
    tls_gw.signal(signal.SIGHUP)
    assert wait_log(tls_gw, "reload_failed", start=mark)
    c3 = greet(tls_gw.port)
    c3.starttls()
    assert c3.peer_cn() == "new.gw.test"
