"""Milters for the tests: the scriptable pymilter (tests/integration/milters/script_milter.py) run as a
process, and a raw protocol server in this process for faults (hang, die mid-body, garbage)."""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from gwtest import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT_MILTER = os.path.join(HERE, "..", "milters", "script_milter.py")
# the interpreter running the tests (CTest runs them with Debian's python3, which has python3-milter)
PYTHON = sys.executable


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class ScriptMilter:
    """The pymilter milter on loopback (inet) or on a unix socket in tmp_path."""

    def __init__(self, tmp_path, script=None, unix=False, name="m"):
        self.tmp = tmp_path
        self.script_path = str(tmp_path / ("%s-script.json" % name))
        self.log_path = str(tmp_path / ("%s-events.jsonl" % name))
        self.out_path = str(tmp_path / ("%s-stderr.log" % name))
        self.unix = unix
        if unix:
            self.path = str(tmp_path / ("%s.sock" % name))
            self.spec = "unix:" + self.path
            self.address = "unix:" + self.path
        else:
            self.port = free_port()
            self.spec = "inet:%d@127.0.0.1" % self.port
            self.address = "inet:127.0.0.1:%d" % self.port
        self.set_script(script or {})
        self.proc = None

    def set_script(self, script):
        tmp = self.script_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(script, f)
        os.replace(tmp, self.script_path)

    def start(self):
        open(self.log_path, "w").close()
        self.out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([PYTHON, SCRIPT_MILTER, self.spec, self.script_path, self.log_path],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        if self.unix:
            ok = wait_for(lambda: os.path.exists(self.path), 15)
        else:
            ok = wait_port(self.port, 15)
        if not ok:
            raise RuntimeError("milter did not start: " + open(self.out_path).read())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # libmilter lingers seconds on SIGTERM; the test is over anyway
            self.proc.wait()
        if self.proc:
            self.out.close()

    def clear(self):
        open(self.log_path, "w").close()

    def events(self, ev=None):
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        e = json.loads(line)
                        if ev is None or e["ev"] == ev:
                            out.append(e)
        except (OSError, ValueError):
            pass
        return out

    def sessions(self):
        """Events grouped by milter connection, in order of first appearance."""
        out = {}
        for e in self.events():
            out.setdefault(e.get("cid"), []).append(e)
        return [v for k, v in out.items() if k]

    def session_with(self, ev):
        """The events of the (first) connection that saw `ev`."""
        for s in self.sessions():
            if any(e["ev"] == ev for e in s):
                return s
        return []

    def wait_event(self, ev, n=1, timeout=10):
        return wait_for(lambda: len(self.events(ev)) >= n, timeout)


# ---- a raw milter for faults ----------------------------------------------------------------

def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def read_packet(conn):
    head = b""
    while len(head) < 4:
        c = conn.recv(4 - len(head))
        if not c:
            return None, None
        head += c
    (n,) = struct.unpack(">I", head)
    data = b""
    while len(data) < n:
        c = conn.recv(n - len(data))
        if not c:
            return None, None
        data += c
    return data[:1], data[1:]


class RawMilter:
    """Speaks just enough of the protocol: answers OPTNEG, continue to everything, and misbehaves at
    the command `fault_at` (a command octet such as b"B" for body, b"E" for end of message):
      mode "hang": never answers; "die": closes the connection; "garbage": sends `garbage` bytes;
      "progress": SMFIR_PROGRESS every 0.1 s, forever;
      "ok": behaves. Counts the commands it received in `seen`."""

    def __init__(self, mode="ok", fault_at=b"E", garbage=b"\x00\x00\x00\x05zjunk"):
        self.port = free_port()
        self.address = "inet:127.0.0.1:%d" % self.port
        self.mode = mode
        self.fault_at = fault_at
        self.garbage = garbage
        self.seen = []
        self.per_conn = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.conns = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        mine = []
        with self.lock:
            self.per_conn.append(mine)
        try:
            while True:
                cmd, data = read_packet(conn)
                if cmd is None:
                    return
                with self.lock:
                    self.seen.append(cmd)
                    mine.append(cmd)
                if cmd == b"O":
                    conn.sendall(packet(b"O", struct.pack(">III", 6, 0x01 | 0x10, 0)))
                    continue
                if cmd in (b"D", b"A", b"Q"):
                    if cmd == b"Q":
                        return
                    continue
                if cmd == self.fault_at and self.mode != "ok":
                    if self.mode == "hang":
                        while self.running:
                            time.sleep(0.1)
                        return
                    if self.mode == "die":
                        conn.close()
                        return
                    if self.mode == "progress":  # alive, but never done
                        while self.running:
                            conn.sendall(packet(b"p"))
                            time.sleep(0.1)
                        return
                    if self.mode == "garbage":
                        conn.sendall(self.garbage)
                        continue
                conn.sendall(packet(b"c"))
        except OSError:
            return

    def commands(self):
        with self.lock:
            return list(self.seen)

    def sessions(self):
        """The commands of each milter connection, in order of connection."""
        with self.lock:
            return [list(c) for c in self.per_conn]

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
