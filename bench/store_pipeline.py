#!/usr/bin/python3
"""Gateway msgs/s with ratelimit + greylist on (passed triplets), against the empty pipeline, in one run.

smtp-source (postfix) sends N messages over S parallel sessions through the real smtp-gateway to
smtp-sink; the same load runs against: the empty pipeline, ratelimit+greylist on the embedded store,
and (when redis-server is installed) ratelimit+greylist on Redis. The greylist triplet is passed
before the timing (auto_whitelist_after = 0, so every RCPT looks its triplet up), the rate-limit rule
is high enough never to refuse: what is measured is the cost of the store round trips.

usage: bench/store_pipeline.py [--messages N] [--sessions S]   (GATEWAY_BUILD=build dir, default build/)
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import pathlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration", "lib"))
from gwtest import Gateway, free_port, send_message, wait_port  # noqa: E402
from redisserver import RedisServer, redis_available  # noqa: E402

PLUGINS = """
[trusted]
networks = []
{store}
[plugins.ratelimit]
[[plugins.ratelimit.rules]]
key = "client_ip"
limit = 1000000000
per = "1h"
[[plugins.ratelimit.rules]]
key = "sender"
limit = 1000000000
per = "1h"

[plugins.greylist]
delay = "1s"
auto_whitelist_after = 0
"""


def run(label, tmp, sink_port, args, pipeline, body):
    gw = Gateway(tmp, body, pipeline=pipeline, upstream_ports=[sink_port], threads=args.threads,
                 max_connections=10000)
    gw.config_path  # noqa: B018
    gw.start()
    try:
        if "greylist" in pipeline:
            code, _ = send_message(gw.port, sender="bench@sender.test", rcpts=("rcpt@example.test",))
            assert code == 451, code
            time.sleep(1.2)
            code, _ = send_message(gw.port, sender="bench@sender.test", rcpts=("rcpt@example.test",))
            assert code == 250, code
        t0 = time.time()
        r = subprocess.run(["smtp-source", "-s", str(args.sessions), "-m", str(args.messages), "-f",
                            "bench@sender.test", "-t", "rcpt@example.test", "127.0.0.1:%d" % gw.port],
                           capture_output=True, text=True)
        dt = time.time() - t0
        if r.returncode != 0:
            print(label, "smtp-source failed:", r.stderr.strip()[:300])
        refused = gw.log().count("greylisted") + gw.log().count("ratelimit_exceeded") + gw.log().count("store_error")
        print("%-34s %7d msgs in %6.2fs  %8.0f msgs/s  (refusals/store errors in log: %d)"
              % (label, args.messages, dt, args.messages / dt, max(0, refused - (1 if "greylist" in pipeline else 0))))
        return args.messages / dt
    finally:
        gw.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("smtp-source") or not shutil.which("smtp-sink"):
        sys.exit("needs smtp-source and smtp-sink (package postfix)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gwbench-"))
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:%d" % sink_port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis = None
    try:
        wait_port(sink_port)
        base = run("empty pipeline", tmp, sink_port, args, [], "")
        emb = run("ratelimit+greylist, embedded", tmp, sink_port, args, ["ratelimit", "greylist"],
                  PLUGINS.format(store='[store]\npath = "var/bench-state"\n'))
        print("  embedded: %.0f%% of the empty pipeline" % (100 * emb / base))
        if redis_available():
            redis = RedisServer(tmp).start()
            red = run("ratelimit+greylist, redis", tmp, sink_port, args, ["ratelimit", "greylist"],
                      PLUGINS.format(store='[store]\nbackend = "redis"\nredis_url = "%s"\n' % redis.url))
            print("  redis: %.0f%% of the empty pipeline" % (100 * red / base))
    finally:
        sink.kill()
        if redis:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
