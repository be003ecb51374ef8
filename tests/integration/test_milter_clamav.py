"""milter plugin with Debian's clamav-milter and clamd, loaded only with a signature database this
test writes (the EICAR test string as an .ndb body signature; no freshclam, no download). One clamd
and one clamav-milter for the module: an EICAR message is refused, a clean one delivered."""
import os
import shutil
import subprocess

import pytest

from gwtest import free_port, send_message, wait_port
from miltertest import wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("clamd") or os.path.exists("/usr/sbin/clamd")),
                                reason="clamav-daemon / clamav-milter not installed")

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def which(name):
    return shutil.which(name) or os.path.join("/usr/sbin", name)


@pytest.fixture(scope="module")
def clamav(tmp_path_factory):
    d = tmp_path_factory.mktemp("clamav")
    db = d / "db"
    db.mkdir()
    (db / "gateway-test.ndb").write_text("Gateway-Test-EICAR:0:*:%s\n" % EICAR.hex())
    sock = d / "clamd.sock"
    (d / "clamd.conf").write_text(
        "LocalSocket %s\nDatabaseDirectory %s\nForeground yes\nUser root\nLogFile %s\nTemporaryDirectory %s\n"
        "ScanMail yes\n" % (sock, db, d / "clamd.log", d))
    port = free_port()
    (d / "clamav-milter.conf").write_text(
        "MilterSocket inet:%d@127.0.0.1\nClamdSocket unix:%s\nForeground yes\nUser root\n"
        "AllowSupplementaryGroups yes\nOnInfected Reject\nOnFail Defer\nAddHeader Replace\n"
        "LogFile %s\nTemporaryDirectory %s\nRejectMsg Virus %%v found\n" % (port, sock, d / "milter.log", d))
    out = open(d / "procs.log", "ab")
    clamd = subprocess.Popen([which("clamd"), "-c", str(d / "clamd.conf")], stdout=out, stderr=subprocess.STDOUT)
    procs = [clamd]
    try:
        assert wait_for(lambda: sock.exists(), 60, 0.1), (d / "procs.log").read_text()
        milter = subprocess.Popen([which("clamav-milter"), "-c", str(d / "clamav-milter.conf")], stdout=out,
                                  stderr=subprocess.STDOUT)
        procs.append(milter)
        assert wait_port(port, 30), (d / "procs.log").read_text() + (d / "milter.log").read_text()
        yield "inet:127.0.0.1:%d" % port
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait()
        out.close()


def config(address):
    return """
[plugins.milter]
[[plugins.milter.servers]]
name = "clamav"
address = "%s"
connect_timeout = "5s"
command_timeout = "30s"
on_error = "tempfail"
""" % address


def test_eicar_refused_clean_delivered(sink, gateway_factory, clamav):
    gw = gateway_factory(config(clamav), pipeline=["milter"], upstream_ports=[sink.port])
    virus = (b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: test file\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: text/plain\r\n\r\n" + EICAR + b"\r\n")
    code, lines = send_message(gw.port, body=virus)
    assert code == 550 or code == 554, lines
    assert "Virus" in " ".join(lines) and "Gateway-Test-EICAR" in " ".join(lines), lines
    clean = b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: clean\r\n\r\nnothing to see here\r\n"
    code, lines = send_message(gw.port, body=clean)
    assert code == 250, lines
    assert sink.wait_count(1) and sink.count() == 1
    msg = sink.messages[0]
    assert msg.header("Subject") == ["clean"]
    # clamav-milter's own header, added through the milter's add/change header
    assert any("clamav-milter" in v for v in msg.header("X-Virus-Scanned")), msg.data[:600]
