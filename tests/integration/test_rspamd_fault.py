"""Faults of rspamd under load: half the requests hang (no answer ever), 20 clients at once. Every client
gets its reply within the timeout, nothing refused reaches the upstream, and everything the clients
were told is accepted is there (sent = received = acknowledged)."""
import threading
import time

import pytest

from gwtest import send_message
from rspamdfake import FakeRspamd, no_action
from rspamdtest import rspamd_gateway

CLIENTS = 20


def hang_on_odd(req):
    return "hang" if b"X-Hang: yes" in req.body else no_action(req)


def run_clients(port):
    results = {}

    def one(i):
        body = b"Subject: msg %d\r\nX-Hang: %s\r\n\r\nbody %d\r\n" % (i, b"yes" if i % 2 else b"no", i)
        t0 = time.monotonic()
        try:
            code, lines = send_message(port, body=body)
        except Exception as e:  # a dropped connection would be a failure of the test, not of the helper
            code, lines = None, [repr(e)]
        results[i] = (code, lines, time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


@pytest.mark.parametrize("on_error", ["tempfail", "accept"])
def test_hanging_rspamd_sent_received_acknowledged(tmp_path, sink, on_error):
    fake = FakeRspamd(hang_on_odd).start()
    gw = rspamd_gateway(tmp_path, sink, fake.url, on_error=on_error, timeout="2s", threads=2)
    try:
        results = run_clients(gw.port)
        assert len(results) == CLIENTS, results
        acknowledged = sorted(i for i, (code, _, _) in results.items() if code == 250)
        for i, (code, lines, secs) in results.items():
            hung = i % 2 == 1
            want = 451 if hung and on_error == "tempfail" else 250
            assert code == want, (i, code, lines)
            assert secs < 60, (i, secs)
        assert sink.wait_count(len(acknowledged))
        received = sorted(int(m.header("Subject")[0].split()[1]) for m in sink.messages)
        assert received == acknowledged
        assert len(fake.requests) == CLIENTS
        assert gw.log().count("rspamd_error") == CLIENTS // 2
        assert gw.alive()
    finally:
        gw.stop()
        fake.stop()
