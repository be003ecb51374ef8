#!/usr/bin/python3
"""Gateway msgs/s with Debian's real rspamd in the pipeline, against the empty pipeline, in one run.

smtp-source (postfix) sends N messages of 4 KiB over S parallel sessions through the real
smtp-gateway to smtp-sink; the same load runs against the empty pipeline and against
pipeline = ["rspamd"] calling a private rspamd 3.4 (tests/integration/lib/rspamdserver.py: normal
worker only, network modules off, its DNS to a local server that knows no names). Rows run
interleaved, R rounds; median and best. A row counts only when smtp-source exited 0 and the gateway
logged no rspamd_error.

usage: bench/rspamd_msgs.py [--messages N] [--sessions S] [--size BYTES] [--rounds R] [--threads T]
       (GATEWAY_BUILD = the build dir, default build/)
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration", "lib"))
from dnsserver import DnsServer  # noqa: E402
from gwtest import Gateway, free_port, wait_port  # noqa: E402
from rspamdserver import RspamdServer  # noqa: E402


def start_gateway(tmp, sink_port, args, pipeline, body):
    gw = Gateway(tmp, body, pipeline=pipeline, upstream_ports=[sink_port], threads=args.threads,
                 max_connections=10000, log_level="info")
    return gw.start()


def load(gw, args):
    before = len(gw.log())
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
                        "-f", "bench@sender.test", "-t", "rcpt@example.test", "127.0.0.1:%d" % gw.port],
                       capture_output=True, text=True)
    dt = time.time() - t0
    log = gw.log()[before:]
    ok = r.returncode == 0 and "rspamd_error" not in log
    if not ok:
        print("row failed: smtp-source rc %d %s; rspamd errors %d" % (r.returncode, r.stderr.strip()[:200],
                                                                      log.count("rspamd_error")))
    return args.messages / dt, ok, log.count(" rspamd ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("smtp-source") or not shutil.which("smtp-sink"):
        sys.exit("needs smtp-source and smtp-sink (package postfix)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gwbench-rspamd-"))
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:%d" % sink_port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dns = DnsServer({}).start()
    rspamd = RspamdServer(tmp / "rspamd", dns.address).start()
    gws = []
    try:
        wait_port(sink_port)
        rows = [("empty pipeline", start_gateway(tmp, sink_port, args, [], "")),
                ("rspamd", start_gateway(tmp, sink_port, args, ["rspamd"],
                                         '\n[plugins.rspamd]\nurl = "%s"\non_error = "tempfail"\n' % rspamd.url))]
        gws = [gw for _, gw in rows]
        results = {label: [] for label, _ in rows}
        for _ in range(args.rounds):  # interleaved, so load from other processes hits every row alike
            for label, gw in rows:
                rate, ok, scanned = load(gw, args)
                if ok:
                    results[label].append(rate)
                if label == "rspamd" and ok and scanned != args.messages:
                    print("rspamd answered %d of %d messages" % (scanned, args.messages))
        print("%d messages of %d bytes x %d rounds, %d sessions, gateway threads %d"
              % (args.messages, args.size, args.rounds, args.sessions, args.threads))
        base = sorted(results["empty pipeline"])[len(results["empty pipeline"]) // 2] if results["empty pipeline"] else 0
        for label, _ in rows:
            rs = sorted(results[label])
            if not rs:
                print("%-16s no valid round" % label)
                continue
            med = rs[len(rs) // 2]
            print("%-16s median %7.0f msgs/s  best %7.0f  (%3.0f%% of empty)  valid rounds %d/%d"
                  % (label, med, rs[-1], 100 * med / base if base else 0, len(rs), args.rounds))
    finally:
        for gw in gws:
            gw.stop()
        sink.kill()
        rspamd.stop()
        dns.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
