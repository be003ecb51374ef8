#!/usr/bin/env python3
"""Reply latency per SMTP command, one client session at a time, for gateway rows (bench/profiles):
where a row's plugins add time a client waits for, stage by stage. Messages per second at one session
move by +-30% between runs on a shared machine; the median reply time of one command over many
transactions does not, so this shows what one change did to one stage.

    python3 bench/latency.py [ROW ...]          (default: empty inbound-lua; environment as bench/run.sh)
    LAT_MSGS=1500 LAT_RUNS=3 GATEWAY_BIN=build/smtp-gateway python3 bench/latency.py empty inbound-lua

Each run starts the sink (smtp-sink), then for each row the gateway (as bench/driver.py does: the
same profiles, store, DNS server and greylist warm-up), sends 50 warm-up messages with smtp-source,
then LAT_MSGS transactions over a new connection each (4 KiB body, as smtp-source's), timing every
reply. The report gives, per row, the median over runs of each run's median reply time in µs:
connect (to the greeting), EHLO, MAIL, RCPT, end of data (the final "."), QUIT, and the whole
transaction. A row's plugins at MAIL whose time hides behind the upstream's answer leave its MAIL
column where the empty row's is (docs/upstream-pool.md, "MAIL while the plugins decide")."""
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

MSGS = int(os.environ.get("LAT_MSGS", "1500"))
RUNS = int(os.environ.get("LAT_RUNS", "3"))
STAGES = ["connect", "ehlo", "mail", "rcpt", "data_end", "quit", "total"]
BODY = (b"From: <from@bench.test>\r\nTo: <to@bench.test>\r\nSubject: latency\r\n\r\n" +
        (b"X" * 78 + b"\r\n") * 50)


def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            return line


def one(port):
    t = {}
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    try:
        reply(f)
        t["connect"] = time.perf_counter() - t0
        for stage, cmd, want in (("ehlo", b"EHLO latency.bench.test\r\n", b"250"),
                                 ("mail", b"MAIL FROM:<from@bench.test>\r\n", b"250"),
                                 ("rcpt", b"RCPT TO:<to@bench.test>\r\n", b"250"),
                                 ("data", b"DATA\r\n", b"354"),
                                 ("data_end", BODY + b".\r\n", b"250"),
                                 ("quit", b"QUIT\r\n", b"221")):
            a = time.perf_counter()
            s.sendall(cmd)
            line = reply(f)
            if not line.startswith(want):
                raise RuntimeError("%s: %r" % (stage, line))
            t[stage] = time.perf_counter() - a
    finally:
        s.close()
    t["total"] = time.perf_counter() - t0
    return t


def measure(port):
    times = [one(port) for _ in range(MSGS)]
    times = times[MSGS // 10:]  # the first tenth warms caches and the pool
    return {k: statistics.median(t[k] for t in times) * 1e6 for k in STAGES}


def main():
    rows = sys.argv[1:] or ["empty", "inbound-lua"]
    out = os.environ.get("OUT") or os.path.join(driver.HERE, "out", "latency-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out, exist_ok=True)
    results = {row: [] for row in rows}
    for run in range(1, RUNS + 1):
        sink = driver.Sink(out)
        env = driver.RunEnv(out, run)
        try:
            for row in rows:
                gw = driver.GatewayRow(row, out, sink, env)
                try:
                    subprocess.run([driver.SOURCE, "-m", "50", "-f", "from@bench.test", "-t", "to@bench.test",
                                    "127.0.0.1:%d" % gw.port], check=True, capture_output=True, timeout=120)
                    r = measure(gw.port)
                finally:
                    gw.stop()
                results[row].append(r)
                print("run %d %s %s" % (run, row, {k: round(v) for k, v in r.items()}), flush=True)
        finally:
            env.stop()
            sink.stop()
    lines = ["Median reply time in µs (median over %d runs of each run's median of %d transactions; one session)\n"
             % (RUNS, MSGS - MSGS // 10), "", "| row | " + " | ".join(STAGES) + " |",
             "|---|" + "---:|" * len(STAGES)]
    for row in rows:
        med = {k: statistics.median(r[k] for r in results[row]) for k in STAGES}
        lines.append("| %s | %s |" % (row, " | ".join("%.0f" % med[k] for k in STAGES)))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "latency.md"), "w") as f:
        f.write(text)
    print(text + "results: " + os.path.join(out, "latency.md"))


if __name__ == "__main__":
    main()
