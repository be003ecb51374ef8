"""Fault tests: whatever breaks, every message the clients were told was accepted reached the
upstream exactly once, and nothing reached the upstream that the clients were not told about.
Each test prints sent / received / acknowledged."""
import random
import signal
import threading
import time

from gwtest import send_message


class Load:
    """`sessions` client threads, each sending `per` messages with unique ids, retrying on 4xx."""

    def __init__(self, port, sessions=50, per=6, retries=40):
        self.port = port
        self.sessions = sessions
        self.per = per
        self.retries = retries
        self.acked = []
        self.failed = []
        self.tempfails = 0
        self.lock = threading.Lock()

    pause = 0.0  # seconds between one session's messages
    proxy_ip = None  # present the clients with the PROXY protocol

    def sender(self, sid, i):
        return "alice@sender.test"

    def run_one(self, sid):
        for i in range(self.per):
            time.sleep(self.pause)
            mid = "m-%d-%d" % (sid, i)
            for attempt in range(self.retries):
                try:
                    code, _ = send_message(self.port, sender=self.sender(sid, i), proxy_ip=self.proxy_ip,
                                           body="Message-ID: <%s>\r\nSubject: %s\r\n\r\nbody\r\n" % (mid, mid))
                except (OSError, EOFError, AssertionError):
                    code = 0
                if code == 250:
                    with self.lock:
                        self.acked.append(mid)
                    break
                with self.lock:
                    self.tempfails += 1
                if code >= 500:
                    with self.lock:
                        self.failed.append((mid, code))
                    break
                time.sleep(0.05)
            else:
                with self.lock:
                    self.failed.append((mid, "gave up"))

    def start(self):
        self.threads = [threading.Thread(target=self.run_one, args=(i,)) for i in range(self.sessions)]
        for t in self.threads:
            t.start()

    def join(self, timeout=120):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "clients hung"


def received_ids(sink):
    ids = []
    for m in sink.messages:
        v = m.header("Message-ID")
        ids.append(v[0].strip("<>") if v else None)
    return ids


def check_exact(name, load, sink):
    got = received_ids(sink)
    sent = load.sessions * load.per
    print("%s: sent=%d received=%d acknowledged=%d tempfails=%d" % (name, sent, len(got), len(load.acked), load.tempfails))
    assert len(got) == len(set(got)), "an upstream message arrived twice"
    assert len(load.acked) == len(set(load.acked)), "a message was acknowledged twice"
    assert sorted(got) == sorted(load.acked), "upstream and acknowledgements differ"
    assert not load.failed, load.failed[:5]
    assert len(load.acked) == sent


def test_upstream_killed_and_restarted(sink, gateway_factory):
    sink.record_delay = 0.002  # the 250 goes out before the record: the final check must not race it
    gw = gateway_factory(None, upstream_ports=[sink.port], upstream_timeout="5s")
    load = Load(gw.port, sessions=50, per=8)
    load.start()
    sink.wait_count(100, timeout=30)  # mid-run
    sink.kill()
    time.sleep(1.0)
    sink.restart()
    load.join()
    assert load.tempfails > 0, "the kill should have been felt"
    check_exact("upstream killed", load, sink)


def test_upstream_451_at_random(sink, gateway_factory):
    rnd = random.Random(3)
    lock = threading.Lock()

    def maybe(msg):
        with lock:
            return "451 4.3.0 try later" if rnd.random() < 1 / 3 else None

    sink.data_reply = maybe
    gw = gateway_factory(None, upstream_ports=[sink.port])
    load = Load(gw.port, sessions=30, per=5)
    load.start()
    load.join()
    assert load.tempfails > 0
    check_exact("upstream 451 at random", load, sink)


def test_sighup_every_second_under_load(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    load = Load(gw.port, sessions=20, per=25, retries=1)
    load.start()
    for _ in range(4):
        time.sleep(1.0)
        gw.signal(signal.SIGHUP)
    load.join()
    for _ in range(50):
        if gw.log().count(" reloaded ") >= 4:
            break
        time.sleep(0.1)
    assert gw.log().count(" reloaded ") >= 4
    check_exact("SIGHUP under load", load, sink)
    assert load.tempfails == 0, "a reload must not fail a transaction"


def test_sigterm_under_load_finishes_in_flight(sink, gateway_factory):
    sink.data_delay = 0.5
    gw = gateway_factory(None, upstream_ports=[sink.port])
    load = Load(gw.port, sessions=20, per=3, retries=1)
    load.start()
    time.sleep(0.7)
    gw.signal(signal.SIGTERM)
    gw.proc.wait(20)
    assert gw.proc.returncode == 0
    load.join()
    got = received_ids(sink)
    print("SIGTERM under load: received=%d acknowledged=%d" % (len(got), len(load.acked)))
    assert sorted(got) == sorted(load.acked)
    assert len(load.acked) >= 20, "transactions in flight at SIGTERM must finish"
