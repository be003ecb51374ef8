#!/usr/bin/python3
"""Gateway msgs/s with ratelimit + greylist on (passed triplets), against the empty pipeline, in one run.

smtp-source (postfix) sends N messages over S parallel sessions through the real smtp-gateway to
smtp-sink; the same load runs against: the empty pipeline, ratelimit+greylist on the embedded store,
and (when redis-server is installed) ratelimit+greylist on Redis. The greylist triplet is passed
before the timing (auto_whitelist_after = 0, so every RCPT looks its triplet up), the rate-limit rule
is high enough never to refuse: what is measured is the cost of the store round trips.

usage: bench/store_pipeline.py [--messages N] [--sessions S] [--rounds R] [--log-level L]
       (GATEWAY_BUILD = the build dir, default build/). Rows run interleaved, R rounds; median and best.
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


def start_gateway(tmp, sink_port, args, pipeline, body):
    gw = Gateway(tmp, body, pipeline=pipeline, upstream_ports=[sink_port], threads=args.threads,
                 max_connections=10000, log_level=args.log_level)
    gw.start()
    if "greylist" in pipeline:  # pass the triplet smtp-source uses
        code, _ = send_message(gw.port, sender="bench@sender.test", rcpts=("rcpt@example.test",))
        assert code == 451, code
        time.sleep(1.2)
        code, _ = send_message(gw.port, sender="bench@sender.test", rcpts=("rcpt@example.test",))
        assert code == 250, code
    return gw


def load(gw, args):
    before = len(gw.log())
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(args.sessions), "-m", str(args.messages), "-f",
                        "bench@sender.test", "-t", "rcpt@example.test", "127.0.0.1:%d" % gw.port],
                       capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode != 0:
        print("smtp-source failed:", r.stderr.strip()[:300])
    log = gw.log()[before:]
    refused = log.count("greylisted") + log.count("ratelimit_exceeded") + log.count("store_error")
    return args.messages / dt, refused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-level", default="info", help="the gateway's log.level (info: one summary line per message)")
    args = ap.parse_args()
    if not shutil.which("smtp-source") or not shutil.which("smtp-sink"):
        sys.exit("needs smtp-source and smtp-sink (package postfix)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gwbench-"))
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:%d" % sink_port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis = None
    gws = []
    try:
        wait_port(sink_port)
        rows = [("empty pipeline", start_gateway(tmp, sink_port, args, [], ""))]
        rows.append(("ratelimit+greylist, embedded",
                     start_gateway(tmp, sink_port, args, ["ratelimit", "greylist"],
                                   PLUGINS.format(store='[store]\npath = "var/bench-state"\n'))))
        if redis_available():
            redis = RedisServer(tmp).start()
            rows.append(("ratelimit+greylist, redis",
                         start_gateway(tmp, sink_port, args, ["ratelimit", "greylist"],
                                       PLUGINS.format(store='[store]\nbackend = "redis"\nredis_url = "%s"\n' % redis.url))))
        gws = [gw for _, gw in rows]
        results = {label: [] for label, _ in rows}
        refusals = {label: 0 for label, _ in rows}
        for _ in range(args.rounds):  # interleaved, so load from other processes hits every row alike
            for label, gw in rows:
                rate, refused = load(gw, args)
                results[label].append(rate)
                refusals[label] += refused
        base = sorted(results["empty pipeline"])[len(results["empty pipeline"]) // 2]
        print("%d messages x %d rounds, %d sessions, gateway threads %d, log level %s"
              % (args.messages, args.rounds, args.sessions, args.threads, args.log_level))
        for label, _ in rows:
            rs = sorted(results[label])
            med = rs[len(rs) // 2]
            print("%-30s median %7.0f msgs/s  best %7.0f  (%3.0f%% of empty)  refusals/store errors: %d"
                  % (label, med, rs[-1], 100 * med / base, refusals[label]))
    finally:
        for gw in gws:
            gw.stop()
        sink.kill()
        if redis:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
