"""Helpers for the edge tests (TLS, AUTH, PROXY protocol, relay control, XCLIENT, reload/drain).

Test certificates are made with the openssl CLI in the test's tmp dir; password hashes with
libxcrypt (crypt(3)) through ctypes, so yescrypt, SHA512-CRYPT and bcrypt are all real.
"""
import base64
import ctypes
import os
import socket
import ssl
import subprocess
import threading
import time

from gwtest import Client, Gateway, RecordingSink, free_port, wait_port

_libcrypt = ctypes.CDLL("libcrypt.so.1")
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_crypt_lock = threading.Lock()


def crypt_hash(password, prefix="$6$", rounds=0):
    """A crypt(3) string: prefix "$y$" yescrypt, "$6$" SHA512-CRYPT, "$2b$" bcrypt (rounds = cost)."""
    with _crypt_lock:
        setting = _libcrypt.crypt_gensalt(prefix.encode(), rounds, None, 0)
        assert setting, prefix
        h = _libcrypt.crypt(password.encode(), setting)
    assert h and h.startswith(b"$"), h
    return h.decode()


def make_cert(directory, cn="gw.test", name="cert"):
    """Self-signed RSA certificate; returns (cert_path, key_path)."""
    cert = os.path.join(str(directory), name + ".pem")
    key = os.path.join(str(directory), name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn],
                   check=True, capture_output=True)
    return cert, key


def client_context(minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


class TlsClient(Client):
    """Client that can upgrade in place (STARTTLS) or start in TLS (implicit)."""

    def __init__(self, port, implicit=False, ctx=None, timeout=15):
        super().__init__(port, timeout=timeout)
        self.ctx = ctx or client_context()
        if implicit:
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname="gw.test")

    def starttls(self):
        code, lines = self.cmd("STARTTLS")
        assert code == 220, lines
        assert self.buf == b"", self.buf
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname="gw.test")
        return self.sock

    def peer_cn(self):
        der = self.sock.getpeercert(binary_form=True)
        out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                             capture_output=True, check=True).stdout.decode()
        return out.strip().split("CN", 1)[1].lstrip(" =")

    def ehlo(self, name="client.test"):
        code, lines = self.cmd("EHLO " + name)
        assert code == 250, lines
        return [l[4:] for l in lines[1:]]


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def plain(user, password, authz=""):
    return b64("%s\0%s\0%s" % (authz, user, password))


class _TlsFiles:
    """rfile/wfile pair for RecordingSink._session that can switch to TLS on STARTTLS."""

    def __init__(self, sink, conn):
        self.sink = sink
        self.conn = conn
        self.r = conn.makefile("rb")
        self.w = conn.makefile("wb")
        self.tls = False
        sink.local.tls = False

    # rfile side
    def readline(self, n=-1):
        line = self.r.readline(n)
        if line.rstrip(b"\r\n").upper() == b"STARTTLS" and not self.tls and self.sink.offer_starttls:
            self.sink.note_command("STARTTLS")
            self.w.write(b"220 2.0.0 Ready to start TLS\r\n")
            self.w.flush()
            if self.sink.break_tls:  # says yes, then no handshake: garbage and close
                self.conn.sendall(b"this is not a TLS ServerHello\r\n")
                self.conn.close()
                return b""
            self.conn = self.sink.tls_ctx.wrap_socket(self.conn, server_side=True)
            self.r = self.conn.makefile("rb")
            self.w = self.conn.makefile("wb")
            self.tls = True
            self.sink.local.tls = True
            with self.sink.lock:
                self.sink.tls_sessions += 1
            return self.readline(n)
        return line

    # wfile side
    def write(self, data):
        if b"STARTTLS" in data and (self.tls or not self.sink.offer_starttls):
            if data.startswith(b"250 "):  # never the last line: the sink's EHLO list does not end with it
                self.w.write(data)
            return len(data)
        return self.w.write(data)

    def flush(self):
        self.w.flush()


class TlsSink(RecordingSink):
    """A RecordingSink that offers STARTTLS (offer_starttls) and marks each message with .tls."""

    def __init__(self, cert, key, offer_starttls=True, port=None):
        super().__init__(port)
        self.offer_starttls = offer_starttls
        self.break_tls = False
        self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls_ctx.load_cert_chain(cert, key)
        self.tls_sessions = 0
        self.local = threading.local()
        self.ehlo_lines = ["PIPELINING", "STARTTLS", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES",
                           "XCLIENT ADDR NAME PORT PROTO HELO LOGIN", "SMTPUTF8"]

        def mark(msg):
            msg.tls = getattr(self.local, "tls", False)
            return None
        self.data_reply = mark

    def _session(self, rfile, wfile, conn):
        f = _TlsFiles(self, conn)
        try:
            super()._session(f, f, conn)
        except (ssl.SSLError, OSError):
            pass


def gateway_config(listeners, **config):
    """The edge tests' config, as keywords for Gateway/start_gateway: `listeners` is a list of dicts of
    listener keys (gw.ports[i] is listener i's port); [server] max_message_size and max_recipients and
    [upstream] pool_size are left to the gateway's defaults (a test may set pool_size in `upstream`)."""
    return dict(config, listeners=listeners, max_message_size=None, max_recipients=None, pool_size=None)


def start_gateway(tmp_path, config, upstream_ports, **settings):
    """Starts Gateway(**config, **settings) (Gateway.start retries a port someone else took)."""
    return Gateway(tmp_path, upstream_ports=upstream_ports, **dict(config, **settings)).start()


def wait_log(gw, needle, timeout=10.0, start=0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        log = gw.log()
        if needle in log[start:]:
            return True
        time.sleep(0.05)
    return needle in gw.log()[start:]


def greet(port, implicit=False, helo="client.test", ctx=None):
    c = TlsClient(port, implicit=implicit, ctx=ctx)
    code, lines = c.reply()
    assert code == 220, lines
    c.ext = c.ehlo(helo)
    return c


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

POSTFIX_MAIN_CF = """\
# a private instance for the tests (never the system's /etc/postfix)
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = postfix.test
mydomain = test
inet_interfaces = 127.0.0.1
# "all" (Debian's default): with ipv4 only, smtpd refuses XCLIENT ADDR=IPV6:... (501 Bad ADDR syntax)
inet_protocols = all
smtp_dns_support_level = disabled
smtp_host_lookup = native
mydestination =
relay_domains = example.test
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
biff = no
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# the gateway may tell us the real client
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# in-line to the test sink: nothing is queued, the client's 250 is the sink's
smtpd_proxy_filter = 127.0.0.1:{sink_port}
"""


class PostfixInstance:
    """A private Debian Postfix (`postfix -c DIR start`) on loopback whose smtpd hands every message
    in-line to a sink (smtpd_proxy_filter). Needs root, like any Postfix master."""

    def __init__(self, directory, sink_port, port=None):
        import tempfile
        self.dir = os.path.join(str(directory), "postfix")
        self.etc = os.path.join(self.dir, "etc")
        os.makedirs(self.etc, exist_ok=True)
        # QUEUE/public/postlog must fit a 108-byte socket address: keep the queue path short
        self.spool = tempfile.mkdtemp(prefix="gwpf")
        os.chmod(self.spool, 0o755)  # the postfix user must reach its data and queue directories
        self.queue = os.path.join(self.spool, "q")
        self.data = os.path.join(self.spool, "d")
        self.port = port or free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN_CF.format(queue=self.queue, data=self.data, dir=self.dir, sink_port=sink_port))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(port=self.port))
        self.master = None

    def start(self):
        os.makedirs(self.queue, exist_ok=True)
        r = subprocess.run(["postfix", "-c", self.etc, "start"], capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: %s %s" % (r.stdout, r.stderr))
        with open(os.path.join(self.queue, "pid", "master.pid")) as f:
            self.master = int(f.read().strip())
        if not wait_port(self.port, timeout=20):
            self.stop()
            raise RuntimeError("postfix smtpd does not listen:\n" + self.maillog())
        return self

    def maillog(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, needle, timeout=10.0):
        """Postfix logs through postlogd, after it has answered: poll the maillog."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.maillog():
                return True
            time.sleep(0.05)
        return needle in self.maillog()

    def stop(self):
        import shutil
        if self.master:
            subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
            for _ in range(50):  # the master's whole session goes away
                try:
                    os.kill(self.master, 0)
                except OSError:
                    break
                time.sleep(0.1)
            self.master = None
        shutil.rmtree(self.spool, ignore_errors=True)


class BioTlsClient(Client):
    """A TLS client over ssl.MemoryBIO, so bytes can precede the ClientHello in the very same write
    (as HAProxy sends a PROXY header and the client's first TLS record together)."""

    def __init__(self, port, prefix=b"", timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_context().wrap_bio(self.inc, self.out, server_hostname="gw.test")
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.sock.sendall(prefix + self.out.read())  # one write: prefix + ClientHello
        self._pump(self.obj.do_handshake)
        self.buf = b""

    def _pump(self, op):
        while True:
            try:
                r = op()
                if self.out.pending:
                    self.sock.sendall(self.out.read())
                return r
            except ssl.SSLWantReadError:
                if self.out.pending:
                    self.sock.sendall(self.out.read())
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("connection closed")
                self.inc.write(data)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.obj.write(data)
        self.sock.sendall(self.out.read())

    def line(self):
        while b"\n" not in self.buf:
            self.buf += self._pump(lambda: self.obj.read(65536))
        l, _, self.buf = self.buf.partition(b"\n")
        return l.rstrip(b"\r").decode()
