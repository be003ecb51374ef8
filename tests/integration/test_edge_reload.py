"""SIGHUP reload without dropping anything; SIGTERM drain: stop accepting, finish in-flight, exit 0."""
import signal
import socket
import threading
import time

import pytest

from gwtest import Client, open_session, send_message
from edgetest import gateway_config, start_gateway, wait_log


def test_sighup_under_steady_load_loses_nothing(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}]), [sink.port])
    try:
        results = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(n):
            i = 0
            while not stop.is_set():
                try:
                    code, lines = send_message(gw.port, sender="c%d-%d@sender.test" % (n, i))
                except Exception as e:  # a dropped connection is a failure too
                    code, lines = 0, [repr(e)]
                with lock:
                    results.append((code, lines))
                i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        reloads = 0
        for _ in range(12):
            gw.signal(signal.SIGHUP)
            reloads += 1
            time.sleep(0.25)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        failed = [r for r in results if r[0] != 250]
        assert not failed, failed[:5]
        assert len(results) >= 20, len(results)
        print("transactions during reloads:", len(results))
        assert sink.wait_count(len(results))
        assert sink.count() == len(results)
        assert gw.log().count("reloaded") >= reloads - 1  # signals may coalesce, never fail
        assert "reload_failed" not in gw.log()
    finally:
        gw.stop()


def test_broken_config_is_refused_and_old_one_keeps_serving(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}]), [sink.port])
    try:
        with open(gw.config_path) as f:
            good = f.read()
        with open(gw.config_path, "w") as f:
            f.write(good.replace('hostname = "gw.test"', 'hostname = "gw.test"\nmax_connections = "many"'))
        mark = len(gw.log())
        gw.signal(signal.SIGHUP)
        assert wait_log(gw, "reload_failed", start=mark)
        line = [l for l in gw.log()[mark:].splitlines() if "reload_failed" in l][0]
        assert gw.config_path + ":" in line and "error" in line, line  # PATH:LINE:COL: message
        code, lines = send_message(gw.port)
        assert code == 250, lines
        c = Client(gw.port)
        assert "gw.test ESMTP" in c.reply()[1][0]
        c.close()
        # a good new config takes effect for new sessions
        with open(gw.config_path, "w") as f:
            f.write(good.replace('hostname = "gw.test"', 'hostname = "gw2.test"'))
        mark = len(gw.log())
        gw.signal(signal.SIGHUP)
        assert wait_log(gw, "reloaded", start=mark)
        c = Client(gw.port)
        assert "gw2.test ESMTP" in c.reply()[1][0]
        c.close()
    finally:
        gw.stop()


def test_sigterm_lets_a_slow_transaction_finish(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}]), [sink.port], drain_timeout="20s")
    sink.data_delay = 2.0
    result = {}

    def slow():
        result["reply"] = send_message(gw.port)
    idle = open_session(gw.port)
    t = threading.Thread(target=slow)
    t.start()
    try:
        end = time.monotonic() + 10
        while "DATA" not in sink.commands and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.3)  # the message is at the sink, which takes 2 s to answer
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        # no new connections
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
        # an idle session is told to go away
        code, lines = idle.reply()
        assert code == 421, lines
        t.join(15)
        assert result["reply"][0] == 250, result
        assert gw.proc.wait(15) == 0
        elapsed = time.monotonic() - t0
        assert elapsed < 10, elapsed
        assert sink.count() == 1
        log = gw.log()
        assert "draining" in log and "stopped" in log
    finally:
        idle.close()
        gw.stop()


def test_drain_timeout_bounds_the_wait(tmp_path, sink):
    gw = start_gateway(tmp_path, gateway_config([{}]), [sink.port], drain_timeout="1s")
    sink.data_delay = 8.0
    result = {}

    def slow():
        try:
            result["reply"] = send_message(gw.port)
        except EOFError as e:
            result["reply"] = (0, [str(e)])
    t = threading.Thread(target=slow, daemon=True)
    t.start()
    try:
        end = time.monotonic() + 10
        while "DATA" not in sink.commands and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.2)
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        assert gw.proc.wait(10) == 0
        assert time.monotonic() - t0 < 4
        assert "drain_timeout" in gw.log()
        t.join(5)
        assert result["reply"][0] != 250, result  # cut off: never a 250 the upstream did not give
    finally:
        gw.stop()
