#!/usr/bin/env python3
"""The self-contained benchmark driver behind bench/run.sh: Debian's Postfix smtp-source (load) and
smtp-sink (upstream), the gateway built from this checkout, nothing from outside the repository.

Each run measures every cell (message size x sessions) for every target: `direct` (smtp-source ->
smtp-sink) and the gateway rows; a ratio is always gateway / direct of the same cell in the same run,
and the tables give medians over RUNS runs. One new connection per message (smtp-source's default).
A cell counts only when smtp-source exited 0 and the sink counted exactly the messages sent.

    driver.py OUTDIR            env: RUNS SIZES SESSIONS ROWS MSGS_1 MSGS_N IDLE_CONNS GATEWAY_BIN
Writes OUTDIR/runs.tsv (every run), OUTDIR/results.tsv (medians, read by plot.py), OUTDIR/report.md.

A row is PROFILE[:VARIANT...]: bench/profiles/PROFILE.toml plus the server, listener and upstream
tables. Variants: `nopool` (upstream.pool_size = 0, connect_at = "mail"), `uncached` (the row's DNS
server puts an SOA with MINIMUM 0 on negative answers, so the resolver caches none of them: every
connection's DNS list lookups are real queries). The placeholders a profile may hold are
filled here: ${BENCH_DIR} (this folder), ${BENCH_STATE} (the store of the run: a fresh directory per
run, shared by that run's rows), ${BENCH_DNS_PORT} (bench/dns_server.py, started once when a row
needs it), ${BENCH_KEYS} (a DKIM ed25519 key made with `smtp-gateway dkim-keygen`). A profile with
"greylist" in its pipeline gets the greylist triplet of smtp-source's envelope passed before it is
measured (one warm-up message, retried after the delay until the sink has it), once per run. The
gateway runs in the repository's root (paths in profiles and policies are relative to it).
"""
import asyncio
import os
import re
import shutil
import smtplib
import resource
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")


def env_list(name, default):
    return os.environ.get(name, default).split()


RUNS = int(os.environ.get("RUNS", "3"))
SIZES = [int(s) for s in env_list("SIZES", "4096")]
SESSIONS = [int(s) for s in env_list("SESSIONS", "1 20")]
# a row is PROFILE[:VARIANT...]: bench/profiles/PROFILE.toml; variants "nopool", "uncached" (docstring)
ROWS = env_list("ROWS", "empty empty:nopool")
MSGS_1 = int(os.environ.get("MSGS_1", "3000"))   # messages per cell at 1 session
MSGS_N = int(os.environ.get("MSGS_N", "8000"))   # at more sessions
IDLE_CONNS = int(os.environ.get("IDLE_CONNS", "10000"))
GATEWAY = os.environ.get("GATEWAY_BIN", os.path.join(ROOT, "build", "smtp-gateway"))
SOURCE = os.environ.get("SMTP_SOURCE", "smtp-source")
SINK = os.environ.get("SMTP_SINK", "smtp-sink")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Sink:
    """smtp-sink with its running counter (-c): `messages()` is what it has received so far."""

    def __init__(self, out):
        self.port = free_port()
        self.counter = os.path.join(out, "sink-%d.counter" % self.port)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([SINK, "-c"] + user + ["-m", "4096", "127.0.0.1:%d" % self.port, "4096"],
                                     stdout=open(self.counter, "wb"), stderr=subprocess.DEVNULL,
                                     preexec_fn=raise_nofile)
        if not wait_banner(self.port):
            raise RuntimeError("smtp-sink did not start")

    def messages(self):
        with open(self.counter, "rb") as f:
            f.seek(max(0, os.path.getsize(self.counter) - 512))
            tail = f.read().replace(b"\r", b"\n").decode(errors="replace")
        n = [int(x.split("=")[1]) for x in tail.split() if x.startswith("mesg=")]
        return n[-1] if n else 0

    def wait_messages(self, want, timeout=30):
        end = time.time() + timeout
        while time.time() < end and self.messages() < want:
            time.sleep(0.05)
        return self.messages()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class RunEnv:
    """What the plugin rows of one run share: the store directory, the DNS servers, the warm-ups."""

    def __init__(self, out, run):
        self.out = out
        self.state = os.path.join(out, "state-run%d" % run)
        self.dns = {}          # variant ("" or "uncached") -> (process, port)
        self.greylist_passed = False

    def dns_port(self, uncached):
        key = "uncached" if uncached else ""
        if key not in self.dns:
            args = [dns_python(), os.path.join(HERE, "dns_server.py"), "0"]
            if uncached:
                args += ["--negative-ttl", "0"]
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = proc.stdout.readline().strip()
            if not line.isdigit():
                proc.kill()
                raise RuntimeError("bench/dns_server.py did not start (it needs python3-dnslib)")
            self.dns[key] = (proc, int(line))
        return self.dns[key][1]

    def keys(self):
        keys = os.path.join(self.out, "keys")
        if not os.path.exists(os.path.join(keys, "bench.test.ed.key")):
            os.makedirs(keys, exist_ok=True)
            subprocess.run([GATEWAY, "dkim-keygen", "--domain", "bench.test", "--selector", "ed", "--algorithm",
                            "ed25519-sha256", "--out", keys], check=True, capture_output=True)
        return keys

    def stop(self):
        for proc, _ in self.dns.values():
            proc.terminate()
            proc.wait()
        self.dns = {}


def dns_python():
    """An interpreter with dnslib for bench/dns_server.py (Debian's python3-dnslib is for the system
    python3, which a pyenv or venv python3 in PATH may not see)."""
    for exe in [sys.executable, shutil.which("python3"), "/usr/bin/python3"]:
        if exe and subprocess.run([exe, "-c", "import dnslib"], capture_output=True).returncode == 0:
            return exe
    raise RuntimeError("no python3 with dnslib: apt-get install python3-dnslib")


WARMUP = (b"From: <from@bench.test>\r\nTo: <to@bench.test>\r\nSubject: greylist warm-up\r\n"
          b"Message-Id: <warm-up@bench.test>\r\n\r\nwarm-up\r\n")


def pass_greylist(port, sink, timeout=60):
    """Sends smtp-source's envelope (from@bench.test -> to@bench.test from 127.0.0.1) until the gateway
    delivers it: the first try is greylisted, a retry after the profile's delay passes the triplet."""
    before = sink.messages()
    end = time.time() + timeout
    last = ""
    while time.time() < end:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="warmup.bench.test", timeout=30) as c:
                c.sendmail("from@bench.test", ["to@bench.test"], WARMUP)
            if sink.wait_messages(before + 1) == before + 1:
                return
            last = "the sink did not count the warm-up message"
        except (smtplib.SMTPException, OSError) as e:
            last = str(e)
        time.sleep(0.5)
    raise RuntimeError("the greylist warm-up did not pass: %s" % last)


class GatewayRow:
    def __init__(self, row, out, sink, env):
        profile, *variants = row.split(":")
        self.port = free_port()
        self.cfg = os.path.join(out, "gateway-%s-%d.toml" % (row.replace(":", "-"), self.port))
        with open(os.path.join(HERE, "profiles", profile + ".toml")) as f:
            text = f.read()
        fill = {"BENCH_DIR": lambda: HERE, "BENCH_STATE": lambda: env.state,
                "BENCH_DNS_PORT": lambda: str(env.dns_port("uncached" in variants)),
                "BENCH_KEYS": env.keys}
        for name in set(re.findall(r"\$\{(BENCH_[A-Z_]+)\}", text)):
            if name not in fill:
                raise RuntimeError("%s.toml: ${%s} is not filled by bench/driver.py" % (profile, name))
            text = text.replace("${%s}" % name, fill[name]())
        if not re.search(r"^\[store\]", text, re.M):
            text += '\n[store]\npath = "%s"\n' % env.state
        text += """
[server]
hostname = "gw.bench.test"
max_connections = 20000
threads = %s

[[listener]]
address = "127.0.0.1:%d"

[upstream]
servers = ["127.0.0.1:%d"]
""" % (os.environ.get("GATEWAY_THREADS", "0"), self.port, sink.port)
        if "nopool" in variants:
            text += 'pool_size = 0\nconnect_at = "mail"\n'
        text += '\n[metrics]\nlisten = ""\n\n[log]\nlevel = "warn"\n'
        with open(self.cfg, "w") as f:
            f.write(text)
        self.log = open(self.cfg[:-5] + ".log", "ab")
        self.proc = subprocess.Popen([GATEWAY, "--config", self.cfg], stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, preexec_fn=raise_nofile)
        if not wait_banner(self.port):
            self.stop()
            raise RuntimeError("the gateway did not start: see " + self.cfg[:-5] + ".log")
        if re.search(r'^pipeline\s*=.*"greylist"', text, re.M) and not env.greylist_passed:
            try:
                pass_greylist(self.port, sink)
            except RuntimeError:
                self.stop()
                raise
            env.greylist_passed = True

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def source(port, sessions, msgs, size):
    args = [SOURCE, "-s", str(sessions), "-m", str(msgs), "-l", str(size), "-f", "from@bench.test",
            "-t", "to@bench.test", "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    r = subprocess.run(args, capture_output=True, timeout=300, preexec_fn=raise_nofile)
    return time.monotonic() - t0, r.returncode, r.stderr.decode(errors="replace").strip()[-300:]


def cell(target, port, sink, size, sessions, sut_pid):
    msgs = MSGS_1 if sessions == 1 else MSGS_N
    before = sink.messages()
    sink_cpu0 = cpu_seconds(sink.proc.pid)
    sut_cpu0 = cpu_seconds(sut_pid) if sut_pid else 0.0
    wall, rc, err = source(port, sessions, msgs, size)
    got = sink.wait_messages(before + msgs) - before
    sink_cpu = cpu_seconds(sink.proc.pid) - sink_cpu0
    sut_cpu = (cpu_seconds(sut_pid) - sut_cpu0) if sut_pid else 0.0
    status = "ok" if rc == 0 and got == msgs else "bad: rc=%d sink=%d/%d %s" % (rc, got, msgs, err)
    return dict(target=target, size=size, sessions=sessions, msgs=msgs, wall_s="%.3f" % wall,
                msgs_per_s="%.0f" % (msgs / wall), sink_cpu_pct="%.1f" % (100 * sink_cpu / wall),
                sut_cpu_us_per_msg="%.0f" % (1e6 * sut_cpu / msgs) if sut_pid else "",
                sink_cpu_us_per_msg="%.0f" % (1e6 * sink_cpu / msgs), status=status)


async def idle_probe(port, count):
    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        await r.readline()
        w.write(b"EHLO idle.bench.test\r\n")
        while True:
            line = await r.readline()
            if not line or line[3:4] == b" ":
                break
        return w

    sem = asyncio.Semaphore(200)

    async def guarded():
        async with sem:
            return await one()

    results = await asyncio.gather(*[guarded() for _ in range(count)], return_exceptions=True)
    return [w for w in results if not isinstance(w, BaseException)]


def idle(out, row):
    raise_nofile()
    sink = Sink(out)
    env = RunEnv(out, 0)
    try:
        gw = GatewayRow(row, out, sink, env)
    except BaseException:
        env.stop()
        sink.stop()
        raise
    try:
        time.sleep(1)
        base = rss_kib(gw.proc.pid)
        loop = asyncio.new_event_loop()
        writers = loop.run_until_complete(idle_probe(gw.port, IDLE_CONNS))
        time.sleep(2)
        held = rss_kib(gw.proc.pid)
        served = subprocess.run([SOURCE, "-m", "1", "-f", "from@bench.test", "-t", "to@bench.test",
                                 "127.0.0.1:%d" % gw.port], capture_output=True, timeout=60).returncode == 0
        upstream = sum(1 for line in open("/proc/net/tcp").read().splitlines()[1:]
                       if line.split()[2].endswith(":%04X" % sink.port) and line.split()[3] == "01")
        for w in writers:
            w.close()
        loop.close()
        return dict(row=row, wanted=IDLE_CONNS, held=len(writers), base_kib=base, held_kib=held,
                    kib_per_conn=(held - base) / max(len(writers), 1), still_serving=served,
                    upstream_conns=upstream)
    finally:
        gw.stop()
        env.stop()
        sink.stop()


def median_rows(runs):
    out = []
    keys = sorted({(r["target"], r["size"], r["sessions"]) for r in runs}, key=lambda k: (k[1], k[2], k[0]))
    for t, size, s in keys:
        ok = [r for r in runs if (r["target"], r["size"], r["sessions"]) == (t, size, s) and r["status"] == "ok"]
        if not ok:
            continue
        med = lambda k: statistics.median(float(r[k]) for r in ok if r[k] != "")  # noqa: E731
        out.append(dict(target=t, size=size, sessions=s, n=len(ok), msgs_per_s="%.0f" % med("msgs_per_s"),
                        sink_cpu_pct="%.1f" % med("sink_cpu_pct"), status="ok",
                        sut_cpu_us_per_msg="%.0f" % med("sut_cpu_us_per_msg") if t != "direct" else "",
                        sink_cpu_us_per_msg="%.0f" % med("sink_cpu_us_per_msg"),
                        ratio="%.2f" % statistics.median(float(r["ratio"]) for r in ok),
                        ratio_runs=" / ".join(r["ratio"] for r in sorted(ok, key=lambda r: r["run"])),
                        ratio_empty=("%.2f" % statistics.median(float(r["ratio_empty"]) for r in ok)
                                     if all(r.get("ratio_empty") for r in ok) else ""),
                        ratio_empty_runs=" / ".join(r.get("ratio_empty", "") for r in sorted(ok, key=lambda r: r["run"])),
                        cpu_runs=" / ".join(r["sut_cpu_us_per_msg"] for r in sorted(ok, key=lambda r: r["run"]))))
    return out


def write_tsv(path, rows, cols):
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            f.write("\t".join(str(r.get(c, "")) for c in cols) + "\n")


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    runs = []
    if mode in ("all", "matrix"):
        for run in range(1, RUNS + 1):
            sink = Sink(out)
            env = RunEnv(out, run)
            try:
                for size in SIZES:
                    for s in SESSIONS:
                        d = cell("direct", sink.port, sink, size, s, None)
                        d.update(run=run, ratio="1.00")
                        runs.append(d)
                        print("run %d %s" % (run, d), flush=True)
                        for row in ROWS:
                            gw = GatewayRow(row, out, sink, env)
                            try:
                                r = cell("gateway-" + row.replace(":", "-"), gw.port, sink, size, s, gw.proc.pid)
                            finally:
                                gw.stop()
                            r.update(run=run, ratio="%.2f" % (float(r["msgs_per_s"]) / float(d["msgs_per_s"])))
                            # the share of the empty pipeline: gateway-empty of the same cell and run
                            empty = [e for e in runs if e["run"] == run and e["size"] == size and e["sessions"] == s
                                     and e["target"] == "gateway-empty" and e["status"] == "ok"]
                            if empty and r["target"] != "gateway-empty":
                                r["ratio_empty"] = "%.2f" % (float(r["msgs_per_s"]) / float(empty[0]["msgs_per_s"]))
                            runs.append(r)
                            print("run %d %s" % (run, r), flush=True)
            finally:
                env.stop()
                sink.stop()
        cols = ["run", "target", "size", "sessions", "msgs", "wall_s", "msgs_per_s", "ratio", "ratio_empty", "sink_cpu_pct",
                "sink_cpu_us_per_msg", "sut_cpu_us_per_msg", "status"]
        write_tsv(os.path.join(out, "runs.tsv"), runs, cols)
        med = median_rows(runs)
        write_tsv(os.path.join(out, "results.tsv"), med, ["target", "size", "sessions", "n", "msgs_per_s", "ratio",
                                                          "ratio_empty", "sink_cpu_pct", "sink_cpu_us_per_msg",
                                                          "sut_cpu_us_per_msg", "status"])
    idle_rows = []
    if mode in ("all", "idle") and IDLE_CONNS > 0:
        for row in env_list("IDLE_ROWS", "empty"):
            r = idle(out, row)
            print("idle %s" % r, flush=True)
            idle_rows.append(r)
    with open(os.path.join(out, "report.md"), "w") as f:
        if runs:
            f.write("Medians of %d runs; ratio = the median of gateway / direct taken within each run; share of "
                    "empty = the median of row / gateway-empty taken within each run (same cell); the values of "
                    "each run follow in parentheses, run 1 first.\n\n" % RUNS)
            f.write("| target | size | sessions | msgs/s | ratio to direct | share of empty | CPU µs/msg (gateway) "
                    "| sink CPU µs/msg | runs ok |\n")
            f.write("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
            for r in med:
                per = lambda k: " (%s)" % r[k + "_runs"] if r["n"] > 1 and r["target"] != "direct" else ""  # noqa: E731
                f.write("| %s | %s | %s | %s | %s%s | %s | %s | %s | %s |\n" % (
                    r["target"], r["size"], r["sessions"], r["msgs_per_s"], r["ratio"], per("ratio"),
                    (r["ratio_empty"] + per("ratio_empty")) if r["ratio_empty"] else "–",
                    (r["sut_cpu_us_per_msg"] + per("cpu")) if r["sut_cpu_us_per_msg"] else "–",
                    r["sink_cpu_us_per_msg"], r["n"]))
            f.write("\nEvery run: see runs.tsv (a cell is `ok` when smtp-source succeeded and the sink counted every message).\n")
            bad = [r for r in runs if r["status"] != "ok"]
            if bad:
                f.write("\n%d cells failed:\n" % len(bad) + "".join("- %s\n" % r for r in bad))
        for r in idle_rows:
            f.write("\nIdle (%s): %d of %d connections held after banner + EHLO; RSS %d -> %d KiB: **%.1f KiB per "
                    "connection**; upstream connections while held: %d; still serving a message: %s\n" % (
                        r["row"], r["held"], r["wanted"], r["base_kib"], r["held_kib"], r["kib_per_conn"],
                        r["upstream_conns"], r["still_serving"]))
    print(open(os.path.join(out, "report.md")).read())


if __name__ == "__main__":
    main()
