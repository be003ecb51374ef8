"""A fake rspamd for the tests: an HTTP/1.1 server on 127.0.0.1 that records every POST /checkv2
(request headers with repeats, body bytes, which TCP connection carried it) and answers what the
test scripts.

`answer(request)` returns the reply as one of:
  dict                -> 200 with that JSON
  (status, bytes)     -> that status and body
  "hang"              -> never answers (until stop()); the client's timeout must end it
  "close"             -> closes the connection without answering
Requests are recorded before the answer is chosen, so a test sees a request that hangs.
`keep_alive = False` answers with "Connection: close"; `close_idle_after` (seconds) closes a
kept-alive connection that long after its last answer, the way a server's idle timeout does.
"""
import json
import socket
import socketserver
import threading
import time

from gwtest import free_port


class Request:
    def __init__(self, conn_id, method, path, headers, body):
        self.conn_id = conn_id
        self.method = method
        self.path = path
        self.headers = headers  # [(name, value)] in order, repeats kept
        self.body = body

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def no_action(_req):
    return {"action": "no action", "score": 0.5, "required_score": 15.0, "symbols": {}}


class FakeRspamd:
    def __init__(self, answer=no_action):
        self.port = free_port()
        self.answer = answer
        self.keep_alive = True
        self.close_idle_after = None
        self.lock = threading.Lock()
        self._requests = []
        self._connections = 0
        self._stopping = threading.Event()
        self._socks = set()
        self.server = None

    @property
    def requests(self):
        with self.lock:
            return list(self._requests)

    @property
    def connections(self):
        with self.lock:
            return self._connections

    def open_connections(self):
        with self.lock:
            return len(self._socks)

    def wait_requests(self, n, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.requests) >= n:
                return True
            time.sleep(0.02)
        return len(self.requests) >= n

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with fake.lock:
                    fake._connections += 1
                    conn_id = fake._connections
                    fake._socks.add(self.connection)
                try:
                    while not fake._stopping.is_set():
                        if not fake._one(conn_id, self.rfile, self.wfile, self.connection):
                            return
                except OSError:
                    pass
                finally:
                    with fake.lock:
                        fake._socks.discard(self.connection)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self._stopping.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            for s in list(self._socks):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _one(self, conn_id, rfile, wfile, conn):
        """Serves one request; False when the connection is to end."""
        if self.close_idle_after is not None:
            conn.settimeout(self.close_idle_after)
        try:
            line = rfile.readline(65537)
        except socket.timeout:
            return False  # idle too long: close, as a server's keep-alive timeout does
        conn.settimeout(None)
        if not line:
            return False
        method, path, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = []
        while True:
            h = rfile.readline(65537).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        length = 0
        for k, v in headers:
            if k.lower() == "content-length":
                length = int(v)
        body = rfile.read(length) if length else b""
        req = Request(conn_id, method, path, headers, body)
        with self.lock:
            self._requests.append(req)
        reply = self.answer(req)
        if reply == "hang":
            self._stopping.wait(120)
            return False
        if reply == "close":
            return False
        if isinstance(reply, dict):
            status, payload = 200, json.dumps(reply).encode()
        else:
            status, payload = reply
        reason = {200: "OK", 500: "Internal Server Error", 404: "Not Found"}.get(status, "Status")
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (status, reason, len(payload))
        if not self.keep_alive:
            head += "Connection: close\r\n"
        wfile.write(head.encode() + b"\r\n" + payload)
        wfile.flush()
        return self.keep_alive
