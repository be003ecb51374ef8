"""milter plugin with Debian's opendmarc run as a milter on an inet socket (config in tmp_path): its
Authentication-Results header reaches the delivered message, and the milter saw the client's own
header fields."""
import os
import re
import shutil
import subprocess

import pytest

from gwtest import free_port, send_message, wait_port

OPENDMARC = shutil.which("opendmarc") or "/usr/sbin/opendmarc"
pytestmark = pytest.mark.skipif(not os.path.exists(OPENDMARC), reason="opendmarc not installed")


@pytest.fixture(scope="module")
def opendmarc(tmp_path_factory):
    d = tmp_path_factory.mktemp("opendmarc")
    port = free_port()
    (d / "ignore.hosts").write_text("192.0.2.1\n")  # the default would ignore 127.0.0.1, our client
    psl = "/usr/share/publicsuffix/public_suffix_list.dat"
    (d / "opendmarc.conf").write_text(
        "Socket inet:%d@127.0.0.1\nAuthservID gw.test\nIgnoreHosts %s\nPidFile %s\nSyslog false\nUserID root\n"
        "DNSTimeout 1\nSPFSelfValidate false\nRequiredHeaders false\n%s"
        % (port, d / "ignore.hosts", d / "opendmarc.pid", ("PublicSuffixList %s\n" % psl) if os.path.exists(psl) else ""))
    out = open(d / "opendmarc.log", "ab")
    p = subprocess.Popen([OPENDMARC, "-c", str(d / "opendmarc.conf"), "-f"], stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_port(port, 20), (d / "opendmarc.log").read_text()
        yield "inet:127.0.0.1:%d" % port
    finally:
        p.kill()
        p.wait()
        out.close()


def test_authentication_results_added(sink, gateway_factory, opendmarc):
    gw = gateway_factory("""
[plugins.milter]
[[plugins.milter.servers]]
name = "opendmarc"
address = "%s"
command_timeout = "30s"
""" % opendmarc, pipeline=["milter"], upstream_ports=[sink.port])
    body = (b"From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: dmarc\r\n"
            b"Message-ID: <1@sender.test>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\nhello\r\n")
    code, lines = send_message(gw.port, sender="alice@sender.test", body=body)
    assert code == 250, lines
    assert sink.wait_count(1)
    msg = sink.messages[0]
    ar = [v for v in msg.header("Authentication-Results") if "dmarc=" in v]
    assert len(ar) == 1, msg.data[:800]
    # no DMARC record is reachable for sender.test: none (NXDOMAIN) or temperror (no resolver)
    assert re.match(r"gw\.test;\s+dmarc=(none|temperror)\b.*header\.from=sender\.test", ar[0]), ar[0]
    assert msg.body == b"hello\r\n"
