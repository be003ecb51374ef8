-- dnsbl_rbl.lua: refuse clients listed on a DNS block list, with a local allow list first.
--
-- What it does: at RCPT (so the client sees a clear 554 for each recipient and the log has the
-- envelope), looks the client address up in each ZONES entry with gateway.dns.rbl (IPv4 reversed
-- octets, IPv6 nibbles; through the gateway's resolver and cache). An answer in 127.0.0.0/8 counts,
-- except 127.255.255.0/24 (the list's own errors, "query refused"), so a list that stops answering
-- properly never refuses mail. A lookup that fails lets the mail through. Trusted and authenticated
-- clients are skipped. The result is kept in tx.session_data, so a session is looked up once.
-- For weights, domain lists and reject-at-connect use the dnsbl plugin; this script is the example
-- to start from for rules of your own.
--
-- How to configure:
--     [plugins.lua]
--     scripts = ["policies/dnsbl_rbl.lua"]
-- and set ZONES. Each zone costs one DNS lookup per session (max_dns_lookups, default 10, per hook).

local ZONES = {"zen.spamhaus.org"}

local function counts(answer)
  return answer ~= nil and answer:match("^127%.") ~= nil and answer:match("^127%.255%.255%.") == nil
end

function on_rcpt_to(tx, addr)
  if tx.trusted or tx.auth_user then return end
  local s = tx.session_data
  if s.dnsbl_zone == nil then
    s.dnsbl_zone = false
    for _, zone in ipairs(ZONES) do
      if counts(gateway.dns.rbl(tx.client.ip, zone)) then
        s.dnsbl_zone = zone
        break
      end
    end
  end
  if s.dnsbl_zone then
    gateway.counter("dnsbl_rbl_rejected")
    return gateway.reject(554, "5.7.1", "Service unavailable; client [" .. tx.client.ip .. "] blocked using " .. s.dnsbl_zone)
  end
end
