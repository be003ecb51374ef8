"""A real HAProxy (Debian's `haproxy`) in front of several gateways, for the fleet tests: TCP mode,
PROXY v2 to the gateways (`send-proxy-v2`), health checks, its config in tmp_path, run in the
foreground (`haproxy -f cfg -db`, no root needed)."""
import os
import shutil
import signal
import socket
import subprocess

from gwtest import free_port, wait_port


def haproxy_available():
    return shutil.which("haproxy") is not None


def healthz_available(metrics_port):
    """True when the gateway answers GET /healthz with 200 on its metrics listener."""
    try:
        with socket.create_connection(("127.0.0.1", metrics_port), timeout=3) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            head = s.recv(64)
        return head.startswith(b"HTTP/1.") and b" 200" in head.split(b"\r\n", 1)[0]
    except OSError:
        return False


class HAProxy:
    """Frontend `port` balances round-robin over every gateway with health checks; `pinned[i]` is a
    frontend that always goes to gateway i (to choose which gateway a test client reaches)."""

    def __init__(self, tmp_path, gateways):
        self.dir = str(tmp_path)
        self.gateways = gateways
        self.port = free_port()
        self.pinned = [free_port() for _ in gateways]
        self.proc = None
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        # /healthz on the metrics listener when the gateway has it; else an SMTP check (banner, HELO,
        # QUIT) that carries a PROXY v2 LOCAL header like the real traffic's header
        self.httpchk = healthz_available(gateways[0].metrics_port)
        self._write()

    def _server(self, i, g, check):
        line = "    server gw%d 127.0.0.1:%d send-proxy-v2" % (i, g.port)
        if check:
            line += " check inter 200ms fall 1 rise 2"
            line += (" port %d" % g.metrics_port) if self.httpchk else " check-send-proxy"
        return line + "\n"

    def _write(self):
        text = """global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s
    retries 3
    option redispatch

frontend fe_all
    bind 127.0.0.1:%d
    default_backend be_all

backend be_all
    balance roundrobin
""" % self.port
        text += "    option httpchk GET /healthz\n" if self.httpchk else "    option smtpchk HELO haproxy.test\n"
        for i, g in enumerate(self.gateways):
            text += self._server(i, g, True)
        for i, g in enumerate(self.gateways):
            text += "\nfrontend fe_gw%d\n    bind 127.0.0.1:%d\n    default_backend be_gw%d\n" % (i, self.pinned[i], i)
            text += "\nbackend be_gw%d\n" % i + self._server(i, g, False)
        with open(self.cfg, "w") as f:
            f.write(text)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["haproxy", "-f", self.cfg, "-db"], stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        for p in [self.port] + self.pinned:
            if not wait_port(p, 10):
                self.stop()
                raise RuntimeError("haproxy did not start:\n" + self.log())
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
