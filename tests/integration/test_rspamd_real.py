"""The rspamd plugin against Debian's real rspamd 3.4, started privately on loopback once for the module
(see lib/rspamdserver.py): GTUBE refused with 5xx, a clean message delivered with the headers rspamd
asked for, a paused rspamd (timeout) and a stopped one (connection refused) under on_error both ways."""
import shutil
import threading
import time

import pytest

from dnsserver import DnsServer
from gwtest import send_message
from rspamdserver import RspamdServer
from rspamdtest import rspamd_gateway, transaction_ids
from spftest import transaction

GTUBE = (b"From: Spammer <spam@sender.test>\r\nTo: bob@example.test\r\nSubject: cheap\r\n"
         b"Message-ID: <gtube@sender.test>\r\nDate: Wed, 02 Dec 2026 22:00:00 +0000\r\n\r\n"
         b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")

CLEAN = ("From: Alice <alice@sender.test>\r\nTo: Bob <bob@example.test>\r\nSubject: lunch\r\n"
         "Message-ID: <clean-1@sender.test>\r\nDate: Wed, 02 Dec 2026 22:00:00 +0000\r\n"
         "X-Spamd-Result: forged by the client\r\n\r\n"
         "Shall we meet at noon?\r\n")


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    assert shutil.which("rspamd"), "Debian's rspamd package is needed (listed in .ci/packages.txt)"
    dns = DnsServer({}).start()
    server = RspamdServer(tmp_path_factory.mktemp("rspamd"), dns.address)
    t0 = time.monotonic()
    server.start()
    print("rspamd started in %.1f s" % (time.monotonic() - t0))
    yield server
    server.stop()
    dns.stop()


def running(server):
    if not server.running():
        server.start()
    return server


def test_gtube_is_refused(rspamd, tmp_path, sink):
    running(rspamd)
    gw = rspamd_gateway(tmp_path, sink, rspamd.url, on_error="tempfail", timeout="20s")
    try:
        code, lines = send_message(gw.port, body=GTUBE)
        assert code == 550, lines
        assert lines[0].startswith("550 5.7.1 ") and "Gtube pattern" in lines[0], lines
        assert sink.count() == 0
        assert "action=reject" in gw.log()
    finally:
        gw.stop()


def test_clean_message_delivered_with_rspamd_headers(rspamd, tmp_path, sink):
    running(rspamd)
    gw = rspamd_gateway(tmp_path, sink, rspamd.url, on_error="tempfail", timeout="20s",
                        listeners=[dict(proxy_protocol=True)])
    try:
        stage, code, lines = transaction(gw.port, "192.0.2.10", "alice@sender.test", helo="mx.sender.test",
                                         body=CLEAN)
        assert (stage, code) == ("done", 250), lines
        assert sink.wait_count(1)
        m = sink.messages[0]
        ids = transaction_ids(gw)
        assert m.header("X-Rspamd-Queue-Id") == ids
        assert m.header("X-Rspamd-Action") == ["no action"]
        results = m.header("X-Spamd-Result")
        assert len(results) == 1 and results[0].startswith("default: False ["), results  # the forged one is gone
        assert m.header("X-Rspamd-Server")
        assert m.header("X-Spam") == []
        assert m.body == b"Shall we meet at noon?\r\n"
        assert 'action="no action"' in gw.log()
        # rspamd logged the same queue id and the client address it was given
        end = time.monotonic() + 10
        while ids[0] not in rspamd.log() and time.monotonic() < end:
            time.sleep(0.1)
        assert ids[0] in rspamd.log()
        assert "192.0.2.10" in rspamd.log()
    finally:
        gw.stop()


def test_paused_rspamd_times_out_and_nothing_acknowledged_is_lost(rspamd, tmp_path, sink):
    """rspamd SIGSTOPped: the kernel still accepts the connections, nobody answers. 8 clients at once:
    each gets its reply within the timeout; with on_error = accept every 250 is a delivered message."""
    running(rspamd)
    gw = rspamd_gateway(tmp_path, sink, rspamd.url, on_error="accept", timeout="1s", threads=2)
    rspamd.pause()
    try:
        results = [None] * 8

        def one(i):
            t0 = time.monotonic()
            code, lines = send_message(gw.port, body=b"Subject: paused %d\r\n\r\nx\r\n" % i)
            results[i] = (code, time.monotonic() - t0)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(r is not None for r in results), results
        assert all(code == 250 for code, _ in results), results
        assert max(d for _, d in results) < 30, results
        assert sink.wait_count(8)
        assert sorted(m.header("Subject")[0] for m in sink.messages) == sorted("paused %d" % i for i in range(8))
        assert gw.log().count("rspamd_error") == 8 and "timed out" in gw.log()
    finally:
        rspamd.resume()
        gw.stop()


def test_stopped_rspamd_on_error_both_ways(rspamd, tmp_path, sink):
    running(rspamd)
    rspamd.stop()
    accept = rspamd_gateway(tmp_path, sink, rspamd.url, on_error="accept")
    tempfail = rspamd_gateway(tmp_path, sink, rspamd.url, on_error="tempfail")
    try:
        code, lines = send_message(accept.port, body=CLEAN.encode())
        assert code == 250, lines
        assert sink.wait_count(1)
        assert sink.messages[0].header("X-Rspamd-Action") == []
        assert "cannot connect" in accept.log()
        code, lines = send_message(tempfail.port, body=CLEAN.encode())
        assert code == 451 and lines[0].startswith("451 4.7.1 "), lines
        assert sink.count() == 1
    finally:
        accept.stop()
        tempfail.stop()
