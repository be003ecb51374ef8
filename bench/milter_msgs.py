"""msgs/s through the gateway with the scriptable pymilter (tests/integration/milters/script_milter.py)
in the pipeline, beside the same gateway without it, in one run: smtp-source (-s SESSIONS, -l SIZE)
-> gateway -> smtp-sink, all on loopback, and (as root, with
Postfix installed) a private Postfix whose smtpd calls the same milter through smtpd_milters (it queues,
then relays to the same sink: its 250 comes before delivery, the gateway's after it).

    /usr/bin/python3 bench/milter_msgs.py [--msgs 2000] [--sessions 20] [--size 4096]

A row counts only when smtp-source got a 2xx for every message."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration" / "lib"))
from gwtest import free_port, wait_port  # noqa: E402
from miltertest import ScriptMilter  # noqa: E402

try:
    from edgetest import PostfixInstance  # noqa: E402
except ImportError:
    PostfixInstance = None

BUILD = Path(os.environ.get("GATEWAY_BUILD", ROOT / "build"))


def gateway(tmp, port, sink_port, milter):
    cfg = tmp / ("gw-%d.toml" % port)
    text = ('pipeline = [%s]\n[server]\nhostname = "gw.bench"\nthreads = 0\n[[listener]]\naddress = "127.0.0.1:%d"\n'
            '[upstream]\nservers = ["127.0.0.1:%d"]\n[log]\nlevel = "warn"\n[metrics]\nlisten = ""\n'
            % ('"milter"' if milter else "", port, sink_port))
    if milter:
        text += ('[plugins.milter]\n[[plugins.milter.servers]]\nname = "pymilter"\naddress = "%s"\n'
                 'command_timeout = "30s"\n' % milter.address)
    cfg.write_text(text)
    p = subprocess.Popen([str(BUILD / "smtp-gateway"), "--config", str(cfg)], stderr=open(tmp / "gw.log", "ab"))
    assert wait_port(port), (tmp / "gw.log").read_text()
    return p


def run_row(name, port, msgs, sessions, size):
    t = time.time()
    r = subprocess.run(["smtp-source", "-s", str(sessions), "-l", str(size), "-m", str(msgs), "-f", "a@bench.test",
                        "-t", "b@example.test", "127.0.0.1:%d" % port], capture_output=True, text=True)
    took = time.time() - t
    ok = r.returncode == 0
    return name, msgs / took, ok, r.stderr.strip()[:200]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    for tool in ("smtp-source", "smtp-sink"):
        if not shutil.which(tool):
            sys.exit("needs %s (Debian package postfix)" % tool)
    tmp = Path(tempfile.mkdtemp(prefix="milter-bench-"))
    procs = []
    pf = None
    try:
        sink_port = free_port()
        procs.append(subprocess.Popen(["smtp-sink", "-c", "-u", "root", "127.0.0.1:%d" % sink_port, "1000"],
                                      stdout=open(tmp / "sink.out", "w"), stderr=subprocess.STDOUT))
        assert wait_port(sink_port)
        m = ScriptMilter(tmp, {}).start()
        procs.append(m.proc)
        p_plain = free_port()
        procs.append(gateway(tmp, p_plain, sink_port, None))
        p_milter = free_port()  # after the first gateway bound its port: never the same one
        procs.append(gateway(tmp, p_milter, sink_port, m))
        rows = [("gateway-empty", p_plain), ("gateway-pymilter", p_milter)]
        if PostfixInstance and shutil.which("postfix") and os.geteuid() == 0:
            # Postfix queues each message (the milters see the content only on that path, not with
            # smtpd_proxy_filter) and relays it to the same sink; smtpd calls the same milter
            pf = PostfixInstance(tmp, sink_port)
            main_cf = os.path.join(pf.etc, "main.cf")
            text = open(main_cf).read().replace("smtpd_proxy_filter =", "relayhost = [127.0.0.1]:%d\n#" % sink_port)
            text += "smtpd_milters = inet:127.0.0.1:%d\nmilter_default_action = tempfail\n" % m.port
            open(main_cf, "w").write(text)
            pf.start()
            rows.append(("postfix-smtpd_milters", pf.port))
        print("| row | %d B c=%d msgs/s | all 2xx | messages the milter saw |" % (a.size, a.sessions))
        print("|---|---:|---|---:|")
        for name, port in rows:
            before = len(m.events("eom"))
            n, rate, ok, err = run_row(name, port, a.msgs, a.sessions, a.size)
            seen = len(m.events("eom")) - before
            print("| %s | %.0f | %s %s | %d |" % (n, rate, "yes" if ok else "NO", err, seen))
    finally:
        if pf:
            pf.stop()
        for p in reversed(procs):
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
