"""Test helpers: start the real smtp-gateway, a recording SMTP sink, talk raw SMTP.

Everything listens on 127.0.0.1 on ports free_port() reserves; nothing leaves the machine.
"""
import os
import random
import signal
import socket
import socketserver
import subprocess
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.environ.get("GATEWAY_BUILD", os.path.join(ROOT, "build"))
# Under ASan (build-asan) RSS holds shadow memory and the allocator's quarantine: memory bounds are
# only asserted on the normal build.
SANITIZED = os.path.basename(os.path.normpath(BUILD)).endswith("asan")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_LOW = 15000
_port_locks = {}  # port -> the abstract UNIX socket that reserves it for this process


def _reserve(port):
    """Reserves `port` for this test process among every test process on the machine: an abstract
    UNIX socket named after it (Linux) that only one process can bind, and that the kernel releases
    when the process exits, however it exits."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        lock.bind("\0smtp-gateway-test-port-%d" % port)
    except OSError:
        lock.close()
        return False
    _port_locks[port] = lock
    return True


def _bindable(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A TCP and UDP port on 127.0.0.1 that this test process owns until it exits.

    A port the kernel hands out (bind to 0) is free only at that instant: once closed, any process
    may take it, most often as the source port of an outgoing connection, and a test that starts a
    server on it later (or restarts one on the same port after an outage) fails by luck. So the
    port comes from below the kernel's ephemeral range, which outgoing connections never use, and is
    reserved against the other test processes of a parallel CTest run (_reserve). The same port is
    never handed out twice by one process, so a test may stop a server and start it again on it."""
    high = _ephemeral_low()
    if high - _PORT_LOW < 1000:  # an unusual ip_local_port_range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    span = high - _PORT_LOW
    start = random.randrange(span)
    for i in range(span):
        port = _PORT_LOW + (start + i) % span
        if port in _port_locks or not _reserve(port):
            continue
        if _bindable(port):
            return port
        # held by something outside the test suite: keep it reserved so it is not tried again
    raise RuntimeError("no free port below %d" % high)


def listening_ports(pid):
    """The TCP ports on which process `pid` has a listening socket (from /proc, Linux)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(port, path, timeout=5):
    """The whole raw response to an HTTP/1.0 GET of `path` on 127.0.0.1:`port`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


class Message:
    def __init__(self, mail_from, rcpts, data, helo, xclient):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.data = data  # bytes as received, dot-unstuffed, without the final ".\r\n"
        self.helo = helo
        self.xclient = xclient

    def header(self, name):
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        out = []
        cur = None
        for line in lines:
            if line[:1] in (" ", "\t") and cur is not None:
                cur += line
                continue
            if cur is not None:
                out.append(cur)
            cur = line
        if cur is not None:
            out.append(cur)
        vals = []
        for f in out:
            k, _, v = f.partition(":")
            if k.lower() == name.lower():
                vals.append(v.strip())
        return vals

    @property
    def body(self):
        parts = self.data.split(b"\r\n\r\n", 1)
        return parts[1] if len(parts) == 2 else b""


class RecordingSink:
    """A scriptable upstream MTA. Records every message it accepted (250 after DATA).

    Behaviour knobs (set before or during a test):
      mail_reply(addr) / rcpt_reply(addr) / data_reply(msg) -> "250 2.0.0 ok" style string or None for default
      data_cmd_reply -> reply to the DATA command (default 354)
      drop_mid_data -> close the connection after reading this many bytes of DATA
      data_delay -> seconds to wait before the final reply
      greeting -> greeting line
      ehlo_lines -> capability lines after the first
      record_delay -> seconds between writing the final 250 and recording the message (a test knob
                      that widens the window in which a reader could see the 250 but not the message)

    Read what it got only through `messages` and `commands`: each returns a copy taken under the
    lock that also covers "send 250, record the message", so a reader never sees one without the other.
    """

    def __init__(self, port=None, record_delay=0.0):
        self.port = port or free_port()
        self._messages = []
        self.connections = 0
        self._commands = []
        self.record_delay = record_delay
        self.lock = threading.Lock()
        self.mail_reply = lambda addr: None
        self.rcpt_reply = lambda addr: None
        self.data_reply = lambda msg: None
        self.data_cmd_reply = None
        self.drop_mid_data = None
        self.data_delay = 0.0
        self.greeting = "220 sink.test ESMTP recording sink"
        self.ehlo_lines = ["PIPELINING", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "XCLIENT ADDR NAME PORT PROTO HELO LOGIN"]
        self.server = None
        self.active = set()
        self.killed = False

    @property
    def messages(self):
        with self.lock:
            return list(self._messages)

    @property
    def commands(self):
        with self.lock:
            return list(self._commands)

    def note_command(self, cmd):
        with self.lock:
            self._commands.append(cmd)

    def kill(self):
        """Like kill -9 of an MTA: stop listening and cut every open connection at once. A message
        is recorded and answered 250 under one lock, so it is either both or neither."""
        with self.lock:
            self.killed = True
            for c in list(self.active):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.stop()

    def restart(self):
        with self.lock:
            self.killed = False
        self.start()

    def start(self):
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with sink.lock:
                    sink.connections += 1
                    sink.active.add(self.connection)
                try:
                    sink._session(self.rfile, self.wfile, self.connection)
                except OSError:
                    pass
                finally:
                    with sink.lock:
                        sink.active.discard(self.connection)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 1024  # bursts of sessions connect at once; the default 5 drops SYNs

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def count(self):
        with self.lock:
            return len(self._messages)

    def wait_count(self, n, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count() >= n:
                return True
            time.sleep(0.02)
        return self.count() >= n

    def _session(self, rfile, wfile, conn):
        def send(line):
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        send(self.greeting)
        helo = None
        xclient = None
        mail_from = None
        rcpts = []
        while True:
            line = rfile.readline(65536)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            with self.lock:
                self._commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                helo = cmd.split(" ", 1)[1] if " " in cmd else ""
                if verb == "EHLO":
                    lines = ["sink.test"] + self.ehlo_lines
                    for i, l in enumerate(lines):
                        send(("250-" if i < len(lines) - 1 else "250 ") + l)
                else:
                    send("250 sink.test")
            elif verb == "XCLIENT":
                xclient = cmd[8:]
                send(self.greeting)
            elif verb == "MAIL":
                addr = cmd[10:].split(">")[0].lstrip("<")
                r = self.mail_reply(addr)
                if r:
                    send(r)
                    continue
                mail_from = addr
                rcpts = []
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = cmd[8:].split(">")[0].lstrip("<")
                r = self.rcpt_reply(addr)
                if r:
                    send(r)
                    continue
                rcpts.append(addr)
                send("250 2.1.5 Ok")
            elif verb == "DATA":
                if self.data_cmd_reply:
                    send(self.data_cmd_reply)
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                got = 0
                while True:
                    l = rfile.readline(1 << 20)
                    if not l:
                        return
                    got += len(l)
                    if self.drop_mid_data is not None and got >= self.drop_mid_data:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    if l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                msg = Message(mail_from, list(rcpts), bytes(data), helo, xclient)
                if self.data_delay:
                    time.sleep(self.data_delay)
                r = self.data_reply(msg)
                if r:
                    send(r)
                else:
                    with self.lock:
                        if self.killed:
                            return
                        send("250 2.0.0 Ok: queued as SINK%d" % (len(self._messages) + 1))
                        if self.record_delay:
                            time.sleep(self.record_delay)
                        self._messages.append(msg)
                mail_from = None
                rcpts = []
            elif verb == "RSET":
                mail_from = None
                rcpts = []
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            elif verb == "NOOP":
                send("250 2.0.0 Ok")
            else:
                send("502 5.5.2 Error: command not recognized")


# The one writer of gateway config files for the tests. Every keyword of gateway_toml() has the
# default below; None leaves a key out, so the gateway's own default applies.
SERVER_DEFAULTS = dict(hostname="gw.test", command_timeout="30s", data_timeout="60s", max_message_size=26214400,
                       max_recipients=100, max_connections=1000, threads=2, drain_timeout="10s")
UPSTREAM_DEFAULTS = dict(connect_timeout="2s", upstream_timeout="10s", pool_size=8)


def toml_value(v):
    """A TOML literal of a Python bool, number, string or list of them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    return "[%s]" % ", ".join(toml_value(x) for x in v)


def _table(header, keys):
    """`[header]` and one line a key, leaving out keys whose value is None."""
    return "\n%s\n" % header + "".join("%s = %s\n" % (k, toml_value(v)) for k, v in keys.items() if v is not None)


def gateway_toml(port, metrics_port, upstream_ports=(), pipeline=None, listeners=None, proxy_protocol=False,
                 upstream="", dns=None, dns_timeout=None, trusted=None, relay=None, log_level="debug", body="",
                 **settings):
    """The text of a gateway config file.

    [server] takes the SERVER_DEFAULTS keywords; [upstream] servers are 127.0.0.1:`upstream_ports`, with
    connect_timeout, upstream_timeout (both command_timeout and data_timeout) and pool_size, then the raw
    `upstream` text. `listeners` is a list of dicts of [[listener]] keys: the first listens on `port`,
    each other one on its "port" key (default: a single listener with `proxy_protocol`). `dns` (an
    address), `trusted` and `relay` (lists) write [dns], [trusted] networks and [relay] domains when
    given. [metrics] listens on `metrics_port`; `body` (plugin tables, [tls], ...) comes last."""
    unknown = set(settings) - set(SERVER_DEFAULTS) - set(UPSTREAM_DEFAULTS)
    if unknown:
        raise TypeError("gateway_toml: unknown settings %s" % sorted(unknown))
    if not isinstance(proxy_protocol, bool):
        raise TypeError("gateway_toml: proxy_protocol is True or False")
    s = dict(SERVER_DEFAULTS, **UPSTREAM_DEFAULTS)
    s.update(settings)
    text = "pipeline = %s\n" % toml_value(list(pipeline)) if pipeline is not None else ""
    text += _table("[server]", {k: s[k] for k in SERVER_DEFAULTS})
    for i, listener in enumerate(listeners if listeners is not None else [dict(proxy_protocol=proxy_protocol)]):
        keys = dict(listener)
        at = port if i == 0 else keys["port"]
        keys.pop("port", None)
        text += _table("[[listener]]", dict(address="127.0.0.1:%d" % at, **keys))
    text += _table("[upstream]", dict(servers=["127.0.0.1:%d" % p for p in upstream_ports],
                                      connect_timeout=s["connect_timeout"], command_timeout=s["upstream_timeout"],
                                      data_timeout=s["upstream_timeout"], pool_size=s["pool_size"])) + upstream
    if dns is not None:
        text += _table("[dns]", dict(nameservers=[dns], timeout=dns_timeout))
    if trusted is not None:
        text += _table("[trusted]", dict(networks=list(trusted)))
    if relay is not None:
        text += _table("[relay]", dict(domains=list(relay)))
    text += _table("[metrics]", dict(listen="127.0.0.1:%d" % metrics_port))
    text += _table("[log]", dict(level=log_level))
    return text + body


# Every gateway process a test started; conftest.py stops the ones still running after each test
# (and so checks their logs for sanitizer reports), whichever helper started them.
RUNNING = []


class Gateway:
    """The real smtp-gateway with a config written by gateway_toml(): `config_body` and `extra` are
    appended as its body; every other keyword (pipeline, listeners, trusted, threads, ...) goes to
    gateway_toml(). gw.ports[i] is listener i's port (gw.port is listener 0's)."""

    def __init__(self, tmp_path, config_body=None, binary="smtp-gateway", upstream_ports=(), port=None, extra="",
                 listeners=None, body="", **config):
        # kept so that start() can rewrite the config with fresh ports when another process took one
        self._args = dict(tmp_path=tmp_path, config_body=config_body, binary=binary, upstream_ports=upstream_ports,
                          port=port, extra=extra, listeners=listeners, body=body, **config)
        self.tmp = tmp_path
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.binary = os.path.join(BUILD, binary)
        if listeners is not None:  # listeners after the first without a "port" get a free one
            listeners = [dict(l) if i == 0 or "port" in l else dict(l, port=free_port()) for i, l in enumerate(listeners)]
            self.ports = {i: l.get("port") for i, l in enumerate(listeners)}
        else:
            self.ports = {}
        self.ports[0] = self.port
        text = gateway_toml(self.port, self.metrics_port, upstream_ports, listeners=listeners,
                            body=(config_body or "") + body + extra, **config)
        self.config_path = str(tmp_path / ("gw-%d.toml" % self.port))
        with open(self.config_path, "w") as f:
            f.write(text)
        self.log_path = str(tmp_path / ("gw-%d.log" % self.port))
        self.proc = None

    def start(self, wait=True):
        """Starts the binary and, with `wait`, returns once this process listens on gw.port. free_port()
        then bind is a window in which another process (a test running beside this one) may take a port:
        when every port was chosen here, that is retried with fresh ports, never reported as a failure."""
        for attempt in range(4):
            self.logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen([self.binary, "--config", self.config_path], stdout=self.logf,
                                         stderr=subprocess.STDOUT, cwd=str(self.tmp))
            if self not in RUNNING:
                RUNNING.append(self)
            if not wait or self._wait_listening():
                return self
            self.stop()
            log = self.log()
            if "Address already in use" in log and self._ports_are_ours() and attempt < 3:
                self.__init__(**self._args)
                continue
            raise RuntimeError("gateway did not start:\n" + log)

    def _ports_are_ours(self):
        a = self._args
        return a["port"] is None and all("port" not in l for l in (a["listeners"] or [])[1:])

    def _wait_listening(self, timeout=10.0):
        """True once this process (not whoever else may hold the port) listens on gw.port."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            if self.port in listening_ports(self.proc.pid):
                # and one connection, as tests have always seen (some count it: rate limits, milters)
                return wait_port(self.port, max(0.5, end - time.monotonic()))
            time.sleep(0.05)
        return False

    def outlives_test(self):
        """For a gateway a module-scoped fixture shares between tests: the per-test clean-up leaves it
        to the fixture that started it."""
        if self in RUNNING:
            RUNNING.remove(self)
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
            # under the sanitizer build (CI), any report fails the test that ran the gateway
            log = self.log()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in log:
                    raise AssertionError("sanitizer report in the gateway log:\n" + log[-6000:])
        return self.proc.returncode if self.proc else None

    def _status_kib(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self._status_kib("VmRSS")

    def peak_rss_kib(self):
        return self._status_kib("VmHWM")

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def alive(self):
        return self.proc.poll() is None

    def metrics(self):
        return http_get(self.metrics_port, "/metrics").decode()

    def metric(self, name_and_labels):
        for line in self.metrics().splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.split()[-1])
        return 0.0


class Client:
    """A raw SMTP client: send exact bytes, read whole replies."""

    def __init__(self, port, host="127.0.0.1", timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; partial: %r" % self.buf)
            self.buf += chunk
        l, _, self.buf = self.buf.partition(b"\n")
        return l.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Returns (code, [lines])."""
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_session(port, helo="client.test", proxy_ip=None):
    c = Client(port)
    if proxy_ip:  # a proxy_protocol listener: present the client as proxy_ip
        c.send("PROXY TCP4 %s 127.0.0.1 40000 25\r\n" % proxy_ip)
    code, _ = c.reply()
    assert code == 220
    code, lines = c.cmd("EHLO " + helo)
    assert code == 250, lines
    return c


def transaction(c, sender="alice@sender.test", rcpts=("bob@example.test",), body=b"Subject: t\r\n\r\nhello\r\n",
                quit=False):
    """MAIL/RCPT/DATA on an open, greeted client; `body` is sent as it is (dot-stuffed, ending in CRLF)
    before the final dot. Returns the last (code, lines); QUIT follows the final reply when `quit`."""
    code, lines = c.cmd("MAIL FROM:<%s>" % sender)
    if code != 250:
        return code, lines
    ok = 0
    last = None
    for r in rcpts:
        last = c.cmd("RCPT TO:<%s>" % r)
        if last[0] in (250, 251):
            ok += 1
    if not ok:
        return last
    code, lines = c.cmd("DATA")
    if code != 354:
        return code, lines
    c.send(body + b".\r\n")
    code, lines = c.reply()
    if quit:
        c.cmd("QUIT")
    return code, lines


def send_message(port, sender="alice@sender.test", rcpts=("bob@example.test",), body=b"Subject: t\r\n\r\nhello\r\n",
                 proxy_ip=None):
    """One transaction over a fresh connection, the body dot-stuffed; returns the final reply code and text."""
    if isinstance(body, str):
        body = body.encode()
    stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in body.split(b"\r\n"))
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    c = open_session(port, proxy_ip=proxy_ip)
    try:
        return transaction(c, sender, rcpts, stuffed, quit=True)
    finally:
        c.close()
