"""gateway.dns.lookup and gateway.dns.rbl against the test DNS server, through the gateway's resolver:
every type and status, the cache, the per-call lookup bound, and a slow name that does not hold the
worker thread."""
import threading
import time

from dnsserver import DnsServer
from luahelp import session, start

ZONE = {
    "host.dns.test": [("A", "192.0.2.1"), ("A", "192.0.2.2"), ("AAAA", "2001:db8::1")],
    "dns.test": [("MX", (10, "mx.dns.test.")), ("MX", (20, "mx2.dns.test."))],
    "txt.dns.test": [("TXT", ["v=spf1 ", "-all"]), ("TXT", "second")],
    "10.2.0.192.in-addr.arpa": [("PTR", "client.dns.test.")],
    "fail.dns.test": [("SERVFAIL", None)],
    "slow.dns.test": [("TIMEOUT", None)],
    "99.2.0.192.zen.test": [("A", "127.0.0.2"), ("A", "127.0.0.9")],
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test": [("A", "127.0.0.4")],
}

SCRIPT = r"""
local queries = {
  a = {"host.dns.test", "A"}, aaaa = {"HOST.dns.test.", "AAAA"}, mx = {"dns.test", "MX"},
  txt = {"txt.dns.test", "TXT"}, ptr = {"10.2.0.192.in-addr.arpa", "PTR"}, nx = {"nope.dns.test", "A"},
  nodata = {"host.dns.test", "MX"}, temp = {"fail.dns.test", "A"}, slow = {"slow.dns.test", "A"},
}
local function say(text) return gateway.reject(550, "5.7.1", text) end
function on_rcpt_to(tx, addr)
  local key = addr:match("^(.-)@")
  local q = queries[key]
  if q then
    local r = gateway.dns.lookup(q[1], q[2])
    return say(r.status .. " [" .. table.concat(r.answers, "|") .. "]")
  elseif key == "rbl4" then return say("rbl " .. tostring(gateway.dns.rbl("192.0.2.99", "zen.test")))
  elseif key == "rbl4clean" then return say("rbl " .. tostring(gateway.dns.rbl("192.0.2.1", "zen.test")))
  elseif key == "rbl6" then return say("rbl " .. tostring(gateway.dns.rbl("2001:db8::1", "zen.test")))
  elseif key == "badip" then gateway.dns.rbl("not-an-ip", "zen.test")
  elseif key == "ten" then
    for i = 1, 10 do gateway.dns.lookup("host.dns.test", "A") end
    return say("ten ok")
  elseif key == "loop" then
    local n = 0
    while true do
      local ok = pcall(gateway.dns.lookup, "host.dns.test", "A")  -- the bound holds through pcall too
      n = n + 1
      if n > 1000 then return say("unbounded") end
    end
  end
end
"""


def probe(port, key):
    c = session(port)
    try:
        assert c.cmd("MAIL FROM:<a@sender.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<%s@example.test>" % key)
        return code, lines[-1][10:]
    finally:
        c.close()


def dns_gateway(gateway_factory, sink, tmp_path, dns, threads=2):
    extra = '\n[dns]\nnameservers = ["%s"]\ntimeout = "3s"\n' % dns.address
    return start(gateway_factory, sink, tmp_path, SCRIPT, extra=extra, threads=threads)


def test_lookup_types_and_statuses(gateway_factory, sink, tmp_path):
    dns = DnsServer(ZONE).start()
    try:
        gw = dns_gateway(gateway_factory, sink, tmp_path, dns)
        assert probe(gw.port, "a") == (550, "ok [192.0.2.1|192.0.2.2]")
        assert probe(gw.port, "aaaa") == (550, "ok [2001:db8::1]")
        assert probe(gw.port, "mx") == (550, "ok [10 mx.dns.test|20 mx2.dns.test]")
        assert probe(gw.port, "txt") == (550, "ok [v=spf1 -all|second]")
        assert probe(gw.port, "ptr") == (550, "ok [client.dns.test]")
        assert probe(gw.port, "nx") == (550, "nxdomain []")
        assert probe(gw.port, "nodata") == (550, "nodata []")
        assert probe(gw.port, "temp") == (550, "temperror []")
        # the resolver's cache answers a repeated question
        before = dns.queries
        assert probe(gw.port, "a") == (550, "ok [192.0.2.1|192.0.2.2]")
        assert probe(gw.port, "mx") == (550, "ok [10 mx.dns.test|20 mx2.dns.test]")
        assert dns.queries == before
    finally:
        dns.stop()


def test_rbl(gateway_factory, sink, tmp_path):
    dns = DnsServer(ZONE).start()
    try:
        gw = dns_gateway(gateway_factory, sink, tmp_path, dns)
        assert probe(gw.port, "rbl4") == (550, "rbl 127.0.0.2")
        assert probe(gw.port, "rbl4clean") == (550, "rbl nil")
        assert probe(gw.port, "rbl6") == (550, "rbl 127.0.0.4")  # RFC 5782 §2.4 nibbles
        assert ("99.2.0.192.zen.test", "A") in dns.log
        code, _ = probe(gw.port, "badip")
        assert code == 451 and "not an IPv4 or IPv6 address" in gw.log()
    finally:
        dns.stop()


def test_lookup_bound(gateway_factory, sink, tmp_path):
    dns = DnsServer(ZONE).start()
    try:
        gw = dns_gateway(gateway_factory, sink, tmp_path, dns)
        assert probe(gw.port, "ten") == (550, "ten ok")  # max_dns_lookups = 10 by default
        code, text = probe(gw.port, "loop")
        assert (code, text) == (451, "Local policy error, try again later")  # on_error, not "unbounded"
        assert "more than 10 lookups in one hook call (max_dns_lookups)" in gw.log()
        assert probe(gw.port, "ten") == (550, "ten ok")  # the count is per hook call
    finally:
        dns.stop()


def test_slow_name_does_not_block_the_thread(gateway_factory, sink, tmp_path):
    dns = DnsServer(ZONE).start()
    try:
        gw = dns_gateway(gateway_factory, sink, tmp_path, dns, threads=1)  # one worker thread for both
        slow = {}

        def run_slow():
            t0 = time.monotonic()
            slow["reply"] = probe(gw.port, "slow")
            slow["took"] = time.monotonic() - t0

        t = threading.Thread(target=run_slow)
        t.start()
        deadline = time.monotonic() + 10
        while ("slow.dns.test", "A") not in dns.log and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ("slow.dns.test", "A") in dns.log
        assert probe(gw.port, "ptr") == (550, "ok [client.dns.test]")
        assert "reply" not in slow  # answered while the slow lookup still waited, on the same thread
        t.join(15)
        assert slow["reply"] == (550, "temperror []")  # dns.timeout
        assert slow["took"] >= 2.5, slow
    finally:
        dns.stop()
