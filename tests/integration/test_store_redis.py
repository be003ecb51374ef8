"""The redis store against a real redis-server: two gateways share rate-limit and greylist state,
exactly `limit` accepted under 50 parallel clients spread over both, on_store_error while Redis is
down, and the store used again within 5 s of Redis' return."""
import threading
import time

import pytest

from gwtest import send_message
from redisserver import RedisServer, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server not installed")


@pytest.fixture
def redis(tmp_path):
    r = RedisServer(tmp_path).start()
    yield r
    r.stop()


def body(redis, ratelimit="", greylist="", rl_error=None, gl_error=None):
    out = """
[trusted]
networks = []

[store]
backend = "redis"
redis_url = "%s"
""" % redis.url
    if ratelimit:
        out += "\n[plugins.ratelimit]\n"
        if rl_error:
            out += 'on_store_error = "%s"\n' % rl_error
        out += "[[plugins.ratelimit.rules]]\n" + ratelimit
    if greylist:
        out += "\n[plugins.greylist]\n" + greylist
        if gl_error:
            out += 'on_store_error = "%s"\n' % gl_error
    return out


def test_two_gateways_share_rate_limit_state(sink, gateway_factory, redis):
    cfg = body(redis, ratelimit='key = "client_ip"\nlimit = 3\nper = "1h"\n')
    a = gateway_factory(cfg, pipeline=["ratelimit"], upstream_ports=[sink.port])
    b = gateway_factory(cfg, pipeline=["ratelimit"], upstream_ports=[sink.port])
    assert send_message(a.port)[0] == 250
    assert send_message(b.port)[0] == 250
    assert send_message(a.port)[0] == 250
    code, lines = send_message(b.port)
    assert code == 451 and "3 messages per 1h" in lines[0]
    assert send_message(a.port)[0] == 451
    keys = redis.command("KEYS", "rl:*")
    assert len(keys) == 1 and keys[0].endswith(":127.0.0.1")


def test_two_gateways_share_greylist_state(sink, gateway_factory, redis):
    cfg = body(redis, greylist='delay = "1s"\nexpire = "1m"\nauto_whitelist_after = 0\n')
    a = gateway_factory(cfg, pipeline=["greylist"], upstream_ports=[sink.port])
    b = gateway_factory(cfg, pipeline=["greylist"], upstream_ports=[sink.port])
    assert send_message(a.port)[0] == 451
    assert send_message(b.port)[0] == 451  # early, on the other gateway
    time.sleep(1.1)
    assert send_message(b.port)[0] == 250
    assert send_message(a.port)[0] == 250  # passed for both
    assert redis.command("KEYS", "gl:w:*")


def test_fifty_parallel_clients_over_two_gateways_limit_twenty(sink, gateway_factory, redis):
    cfg = body(redis, ratelimit='key = "client_ip"\nlimit = 20\nper = "1h"\n')
    gws = [gateway_factory(cfg, pipeline=["ratelimit"], upstream_ports=[sink.port]) for _ in range(2)]
    barrier = threading.Barrier(50)
    results = []
    lock = threading.Lock()

    def one(i):
        barrier.wait()
        try:
            code, lines = send_message(gws[i % 2].port, sender="p%d@sender.test" % i)
            if code == 451 and "Rate limit" not in lines[0]:
                code = lines[0]
        except Exception as e:  # noqa: BLE001
            code = repr(e)
        with lock:
            results.append(code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 50
    assert results.count(250) == 20, results
    assert results.count(451) == 30, results
    assert sink.count() == 20


def wait_until(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_redis_down_on_store_error_then_recovery(sink, gateway_factory, redis, tmp_path):
    rl = 'key = "client_ip"\nlimit = 1\nper = "1h"\n'
    accept = gateway_factory(body(redis, ratelimit=rl), pipeline=["ratelimit"], upstream_ports=[sink.port])
    tempfail = gateway_factory(body(redis, ratelimit=rl, rl_error="tempfail"), pipeline=["ratelimit"],
                               upstream_ports=[sink.port])
    grey = gateway_factory(body(redis, greylist='delay = "1s"\n', gl_error="tempfail"), pipeline=["greylist"],
                           upstream_ports=[sink.port])
    assert send_message(accept.port)[0] == 250
    assert send_message(accept.port)[0] == 451  # limit 1, shared by the two rate-limit gateways
    assert send_message(tempfail.port)[0] == 451

    redis.kill()
    t0 = time.monotonic()
    # default "accept": mail goes through, and the failure is logged
    assert send_message(accept.port)[0] == 250
    assert send_message(accept.port)[0] == 250
    assert "ratelimit_store_error" in accept.log()
    code, lines = send_message(tempfail.port)
    assert code == 451 and "unavailable" in lines[0]
    code, lines = send_message(grey.port)
    assert code == 451 and "Greylisting unavailable" in lines[0]
    assert time.monotonic() - t0 < 5, "store errors must be quick"

    again = RedisServer(tmp_path, port=redis.port).start()
    try:
        t1 = time.monotonic()
        # the store is used again: the fresh Redis has no state, so one message passes, then the limit
        assert wait_until(lambda: send_message(tempfail.port)[0] == 250, 5)
        assert time.monotonic() - t1 < 5
        assert send_message(accept.port)[0] == 451
        assert wait_until(lambda: "Greylisted" in " ".join(send_message(grey.port)[1]), 5)
        assert "store_connected" in accept.log()
    finally:
        again.stop()
