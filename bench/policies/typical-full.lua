-- A typical inbound policy for the benchmark's inbound-full row (bench/profiles/inbound-full.toml),
-- using the richer Lua API as an admin would (see docs/lua.md), on every message:
--   connect: a gateway.map lookup of the client address in a list of denied networks
--   MAIL:    a gateway.dns.lookup of the sender domain's MX (answered from the resolver's cache after
--            the first message: bench.test's MX has a TTL of 3600 s on bench/dns_server.py)
--   RCPT:    a per-client recipient counter in the store (as bench/policies/typical.lua)
--   DATA:    a PCRE2 rule (gateway.regex) over the Subject and the body, the dnsbl score, a header
-- The map path is relative to the gateway's working directory: bench/driver.py starts the gateway
-- in the repository's root.

local DENY_NETS = gateway.map("bench/policies/typical-full-deny.list", "ip")
local SPAM = gateway.regex.new([[\b(?:viagra|cialis|casino|lottery\s+winner)\b]], "i")

function on_connect(tx)
  if DENY_NETS:contains(tx.client.ip) then
    return gateway.reject(554, "5.7.1", "Access denied")
  end
end

function on_mail_from(tx, addr)
  local domain = addr:match("@([^@]+)$")
  if domain then
    local r = gateway.dns.lookup(domain, "MX")
    tx.data.sender_mx = r.status == "ok" and #r.answers > 0
  end
end

function on_rcpt_to(tx, addr)
  local n = gateway.store.incr("bench:rcpt:" .. tx.client.ip, 1, "1h")
  if n < 0 then
    return gateway.tempfail(451, "4.7.1", "impossible")
  end
end

function on_data(tx, msg)
  if SPAM:find(msg:header("Subject") or "") or SPAM:find(msg:body()) then
    return gateway.reject(550, "5.7.1", "Message content refused")
  end
  if tx.dnsbl and tx.dnsbl.score > 0 then
    tx:add_header("X-Spam-Flag", "YES")
  end
  tx:add_header("X-Policy", tx.data.sender_mx and "checked" or "checked; sender without MX")
end
