"""A small authoritative DNS server for tests (UDP and TCP on 127.0.0.1), built on dnslib.

zone: {name: [(type, value), ...]} where type is "A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS",
"SPF", or the special "TIMEOUT" (never answer any query for that name; ("TIMEOUT", "other"): only
queries for a type the name has no record of) / "SERVFAIL".
TXT values may be a str or a list of str (several character-strings in one record).
MX values are (preference, exchange). Names are case-insensitive, without the final dot.
`delay` seconds are waited before every answer (for slow-DNS tests). Queries are counted.
"""
import socket
import socketserver
import struct
import threading
import time

from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from gwtest import free_port


def _rdata(rtype, value):
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        pref, name = value
        return MX(name, pref)
    if rtype in ("TXT", "SPF"):
        parts = value if isinstance(value, (list, tuple)) else [value]
        parts = [p.encode("utf-8") if isinstance(p, str) else p for p in parts]
        # a character-string holds at most 255 octets
        chunks = []
        for p in parts:
            if len(p) == 0:
                chunks.append(b"")
            while p:
                chunks.append(p[:255])
                p = p[255:]
        return TXT(chunks)
    if rtype == "PTR":
        return PTR(value)
    if rtype == "CNAME":
        return CNAME(value)
    if rtype == "NS":
        return NS(value)
    raise ValueError(rtype)


class DnsServer:
    def __init__(self, zone=None, port=0, ttl=300, delay=0.0):
        self.zone = {}
        self.ttl = ttl
        self.delay = delay
        self.queries = 0
        self._log = []
        self.lock = threading.Lock()
        for name, records in (zone or {}).items():
            self.zone[name.lower().rstrip(".")] = list(records)
        self._udp = None
        self._tcp = None
        self.port = port

    @property
    def log(self):
        """(name, type) of every query so far: a copy taken under the lock. A query is logged before
        it is answered, so a reader that got the answer always finds the query here."""
        with self.lock:
            return list(self._log)

    def set(self, name, records):
        with self.lock:
            self.zone[name.lower().rstrip(".")] = list(records)

    def answer(self, data):
        req = DNSRecord.parse(data)
        reply = req.reply()
        q = req.q
        # the labels as sent (str() would escape spaces and other bytes)
        name = b".".join(q.qname.label).decode("utf-8", "replace").lower()
        qtype = QTYPE[q.qtype]
        with self.lock:
            self.queries += 1
            self._log.append((name, qtype))
            records = self.zone.get(name)
        if self.delay:
            time.sleep(self.delay)
        if records is not None and any(t == "TIMEOUT" for t, _ in records):
            # ("TIMEOUT", "other"): only queries for a type the name has no record of time out
            if not any(t == "TIMEOUT" and v == "other" for t, v in records) or \
                    not any(t == qtype or t == "CNAME" for t, _ in records):
                return None
        if records is not None and any(t == "SERVFAIL" for t, _ in records):
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        if records is None:
            # a name with records below it exists (empty non-terminal): NODATA, else NXDOMAIN
            with self.lock:
                exists = any(k.endswith("." + name) for k in self.zone)
            if not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack()
        reply.header.aa = 1
        owner = q.qname
        for _ in range(8):  # a CNAME is followed inside the zone, as a recursive resolver would
            target = None
            for rtype, value in records:
                if rtype == qtype or (rtype == "CNAME" and qtype != "CNAME"):
                    try:
                        reply.add_answer(RR(owner, getattr(QTYPE, rtype), rdata=_rdata(rtype, value), ttl=self.ttl))
                    except Exception:
                        reply.header.rcode = RCODE.SERVFAIL
                        return reply.pack()
                    if rtype == "CNAME":
                        target = value
            if target is None:
                break
            owner = target
            with self.lock:
                records = self.zone.get(target.lower().rstrip("."))
            if records is None:
                break
        return reply.pack()

    def start(self):
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    out = server.answer(data)
                except Exception:
                    return
                if out is None:
                    return
                if len(out) > 512:  # truncate: the client must retry over TCP
                    req = DNSRecord.parse(data)
                    r = req.reply()
                    r.header.tc = 1
                    out = r.pack()
                sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    hdr = self.request.recv(2)
                    if len(hdr) < 2:
                        return
                    (n,) = struct.unpack("!H", hdr)
                    data = b""
                    while len(data) < n:
                        chunk = self.request.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = server.answer(data)
                    if out is None:
                        time.sleep(30)
                        return
                    self.request.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    pass

        class UdpServer(socketserver.ThreadingUDPServer):
            allow_reuse_address = True
            daemon_threads = True

        class TcpServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        # UDP and TCP on one port, reserved for this test process (gwtest.free_port): a restart on
        # the same port after stop() cannot find it taken
        if not self.port:
            self.port = free_port()
        self._udp = UdpServer(("127.0.0.1", self.port), Udp)
        try:
            self._tcp = TcpServer(("127.0.0.1", self.port), Tcp)
        except OSError:
            self._udp.server_close()
            self._udp = None
            raise
        threading.Thread(target=self._udp.serve_forever, daemon=True).start()
        threading.Thread(target=self._tcp.serve_forever, daemon=True).start()
        return self

    def stop(self):
        for s in (self._udp, self._tcp):
            if s:
                s.shutdown()
                s.server_close()
        self._udp = self._tcp = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port
