-- map_access.lua: allow and deny lists of client networks and sender domains, kept in files that the
-- gateway re-reads when they change (no reload needed).
--
-- What it does: a client address in ALLOW_NETS is accepted at every stage (gateway.accept(): later
-- plugins such as greylist do not run for it); one in DENY_NETS gets 554 at connect. A sender whose
-- domain (or a parent domain) is in DENY_DOMAINS gets 550 5.7.1 at MAIL. Deny wins over allow.
-- The lists are gateway.map files: one entry per line, "#" starts a comment; networks are IPv4 or
-- IPv6 addresses or CIDR networks ("192.0.2.0/24", "2001:db8::/32"); a domain also matches its
-- subdomains. Each list is loaded once per process and shared by every worker thread.
--
-- How to configure: put it before greylist in its own Lua instance, so listed clients skip greylisting:
--     pipeline = ["lua:access", "greylist", ...]
--     [plugins."lua:access"]
--     scripts = ["policies/map_access.lua"]
-- and create the three files (they may be empty). A missing file makes the load fail.

local ALLOW_NETS = gateway.map("/etc/smtp-gateway/allow-nets.list", "ip")
local DENY_NETS = gateway.map("/etc/smtp-gateway/deny-nets.list", "ip")
local DENY_DOMAINS = gateway.map("/etc/smtp-gateway/deny-domains.list", "domain")

local function allowed(tx)
  return ALLOW_NETS:contains(tx.client.ip) and not DENY_NETS:contains(tx.client.ip)
end

function on_connect(tx)
  if DENY_NETS:contains(tx.client.ip) then
    gateway.counter("map_access_denied")
    return gateway.reject(554, "5.7.1", "Access denied")
  end
  if allowed(tx) then return gateway.accept() end
end

function on_helo(tx, name) if allowed(tx) then return gateway.accept() end end

function on_mail_from(tx, addr)
  if addr ~= "" and DENY_DOMAINS:contains(addr) then
    gateway.counter("map_access_denied")
    return gateway.reject(550, "5.7.1", "Sender denied")
  end
  if allowed(tx) then return gateway.accept() end
end

function on_rcpt_to(tx, addr) if allowed(tx) then return gateway.accept() end end
function on_data(tx, msg) if allowed(tx) then return gateway.accept() end end
