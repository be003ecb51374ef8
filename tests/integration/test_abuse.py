"""Abuse: many connections, slow and silent clients, floods. The gateway keeps serving normal
clients, its memory stays bounded, and it leaks no descriptor. Each test prints its peak RSS."""
import resource
import socket
import threading
import time

from gwtest import SANITIZED, Client, open_session, send_message

# peak RSS allowed for one abusive client (KiB); see gwtest.SANITIZED
RSS_BOUND = 64 * 1024 if not SANITIZED else 2 * 1024 * 1024


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard) if hard != resource.RLIM_INFINITY else want, max(want, hard)))
    except ValueError:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_fds(gw, target, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end and gw.fd_count() > target:
        time.sleep(0.1)
    return gw.fd_count()


def test_ten_thousand_connections(sink, gateway_factory):
    raise_fd_limit(25000)  # inherited by the gateway
    # pool_size = 0: pooled upstream connections would make the descriptor count depend on which
    # worker served the warm-up (they are bounded and tested in test_upstream_pool.py).
    gw = gateway_factory(None, upstream_ports=[sink.port], max_connections=20000, command_timeout="60s",
                         pool_size=0)
    assert send_message(gw.port)[0] == 250  # warm up: each worker's reactor opens its descriptors once
    base_fds = gw.fd_count()
    base_rss = gw.rss_kib()
    socks = []
    for _ in range(10000):
        s = socket.socket()
        s.setblocking(True)
        s.connect(("127.0.0.1", gw.port))
        socks.append(s)
    # every one of them gets its banner
    for s in socks[:: 500]:
        s.settimeout(10)
        assert s.recv(100).startswith(b"220")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and gw.metric("smtpgw_connections_open") < 10000:
        time.sleep(0.2)
    held = gw.metric("smtpgw_connections_open")
    rss = gw.rss_kib()
    print("10000 idle connections: open=%d rss=%d KiB (%.2f KiB per connection over %d KiB idle)"
          % (held, rss, (rss - base_rss) / 10000, base_rss))
    assert held >= 10000
    assert send_message(gw.port)[0] == 250, "a normal client is still served"
    for s in socks:
        s.close()
    left = wait_fds(gw, base_fds + 5, timeout=30)
    assert left <= base_fds + 5, "descriptors leaked: %d before, %d after" % (base_fds, left)
    assert sink.count() == 2


def test_slowloris_clients_are_timed_out(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], command_timeout="2s", pool_size=0)
    for _ in range(4):  # warm up: each worker's reactor opens its descriptors once
        assert send_message(gw.port)[0] == 250
    base_fds = gw.fd_count()
    stop = threading.Event()
    results = []

    def trickle():
        c = Client(gw.port)
        c.reply()
        t = time.monotonic()
        try:
            for ch in "EHLO slowly.example.test\r\n":
                if stop.is_set():
                    break
                c.send(ch)
                time.sleep(1)
        except OSError:
            pass
        results.append(time.monotonic() - t)
        c.close()

    threads = [threading.Thread(target=trickle) for _ in range(50)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    for _ in range(3):
        assert send_message(gw.port)[0] == 250
    for t in threads:
        t.join(30)
    stop.set()
    assert len(results) == 50
    assert max(results) < 10, "a trickling client must be cut at command_timeout, not served byte by byte"
    assert wait_fds(gw, base_fds + 2) <= base_fds + 2


def test_client_that_never_reads(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], command_timeout="3s")
    rss0 = gw.rss_kib()
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    sent = 0
    chunk = b"NOOP\r\n" * 10000
    try:
        while sent < 200 * 1024 * 1024:
            s.send(chunk)
            sent += len(chunk)
    except (socket.timeout, OSError):
        pass
    assert send_message(gw.port)[0] == 250
    rss = gw.peak_rss_kib()
    print("never-reading client: sent %d MiB of NOOPs before the gateway stopped reading; peak RSS %d KiB (start %d)"
          % (sent >> 20, rss, rss0))
    assert sent < 200 * 1024 * 1024, "the gateway must stop reading when the client does not read replies"
    assert rss < rss0 + RSS_BOUND
    s.close()


def test_gigabyte_without_newline(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    block = b"A" * (1 << 20)
    t = time.monotonic()
    for _ in range(1024):
        c.send(block)
    c.send(b"\r\n")
    code, lines = c.reply()
    assert code == 500 and "5.5.2" in lines[0]
    assert c.cmd("NOOP")[0] == 250
    rss = gw.peak_rss_kib()
    print("1 GiB without a newline in %.1f s: peak RSS %d KiB" % (time.monotonic() - t, rss))
    assert rss < RSS_BOUND


def test_data_far_above_max_message_size(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_message_size=1048576)
    c = open_session(gw.port)
    c.cmd("MAIL FROM:<a@sender.test>")
    c.cmd("RCPT TO:<b@example.test>")
    assert c.cmd("DATA")[0] == 354
    line = b"B" * 998 + b"\r\n"
    block = line * 1024
    for _ in range(100):  # 100 MiB
        c.send(block)
    c.send(b".\r\n")
    code, lines = c.reply()
    assert code == 552 and "5.3.4" in lines[0]
    rss = gw.peak_rss_kib()
    print("100 MiB DATA with max 1 MiB: peak RSS %d KiB" % rss)
    assert rss < RSS_BOUND
    assert sink.count() == 0


def test_ten_thousand_rcpts(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port], max_recipients=100)
    c = open_session(gw.port)
    assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
    codes = {}

    def reader():
        for _ in range(10000):
            code, _ = c.reply()
            codes[code] = codes.get(code, 0) + 1

    t = threading.Thread(target=reader)
    t.start()
    batch = b"".join(b"RCPT TO:<r%d@example.test>\r\n" % i for i in range(10000))
    c.send(batch)
    t.join(120)
    assert codes == {250: 100, 452: 9900}
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    assert sink.wait_count(1) and len(sink.messages[0].rcpts) == 100


def test_pipelining_flood(sink, gateway_factory):
    gw = gateway_factory(None, upstream_ports=[sink.port])
    c = open_session(gw.port)
    n = 100000
    got = []

    def reader():
        for _ in range(n):
            got.append(c.reply()[0])

    t = threading.Thread(target=reader)
    t.start()
    c.send(b"NOOP\r\n" * n)
    t.join(120)
    assert len(got) == n and set(got) == {250}
    assert gw.alive()
    assert send_message(gw.port)[0] == 250
