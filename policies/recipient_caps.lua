-- recipient_caps.lua: cap how many recipients one authenticated user, or one client network, may
-- address per time window.
--
-- What it does: at every RCPT, counts the recipient in gateway.store (shared by all worker threads,
-- and by all gateways with the redis store) under who is sending: the AUTH user when the session
-- authenticated, else the client's network (the /24 of an IPv4 address, the /64 of an IPv6 one).
-- Both come from the connection, not from the message, so a sender cannot dodge its cap, or use up
-- someone else's, by writing another MAIL FROM domain. The window is fixed and starts at the first
-- recipient. Past the cap, further recipients get 451 4.7.1 (the client retries later) until the
-- window ends.
--
-- How to configure: needs [store] (embedded or redis) and the lua plugin:
--     pipeline = [..., "lua", ...]
--     [plugins.lua]
--     scripts = ["policies/recipient_caps.lua"]
-- and edit the constants below: LIMIT and WINDOW for everyone, CAPS for users or networks with their
-- own cap ("alice", "192.0.2.0/24", "2001:db8:1:2::/64"), SKIP_TRUSTED to leave [trusted] networks
-- uncounted. When the store cannot be reached the script lets mail through (ON_STORE_ERROR =
-- "accept") or answers 451 (ON_STORE_ERROR = "tempfail").

local LIMIT = 500              -- recipients per user or network per window
local WINDOW = "1h"            -- a duration: "30s", "10m", "1h", "1d"
local CAPS = {                 -- caps overriding LIMIT
  -- ["newsletter-robot"] = 5000,
}
local SKIP_TRUSTED = true
local ON_STORE_ERROR = "accept"

-- "2001:db8::1" -> "2001:db8:0:0::/64"
local function ipv6_net64(ip)
  local head, tail = ip:match("^(.-)::(.*)$")
  local groups = {}
  if head then
    local h, t = {}, {}
    for g in head:gmatch("[^:]+") do h[#h + 1] = g end
    for g in tail:gmatch("[^:]+") do t[#t + 1] = g end
    for _, g in ipairs(h) do groups[#groups + 1] = g end
    for _ = 1, 8 - #h - #t do groups[#groups + 1] = "0" end
    for _, g in ipairs(t) do groups[#groups + 1] = g end
  else
    for g in ip:gmatch("[^:]+") do groups[#groups + 1] = g end
  end
  for i = 1, 4 do groups[i] = string.format("%x", tonumber(groups[i] or "0", 16) or 0) end
  return table.concat(groups, ":", 1, 4) .. "::/64"
end

local function who(tx)
  if tx.auth_user then return tx.auth_user end
  local ip = tx.client.ip
  local a, b, c = ip:match("^(%d+)%.(%d+)%.(%d+)%.%d+$")
  if a then return a .. "." .. b .. "." .. c .. ".0/24" end
  return ipv6_net64(ip)
end

function on_rcpt_to(tx, addr)
  if SKIP_TRUSTED and tx.trusted then return end
  local key = who(tx)
  local cap = CAPS[key] or LIMIT
  local ok, n = pcall(gateway.store.incr, "rcptcap:" .. key, 1, WINDOW)
  if not ok then
    gateway.log("warn", "recipient_caps: store error: " .. tostring(n))
    if ON_STORE_ERROR == "tempfail" then return gateway.tempfail(451, "4.7.1", "Try again later") end
    return
  end
  if n > cap then
    gateway.counter("recipient_cap_exceeded")
    return gateway.tempfail(451, "4.7.1", "Too many recipients, try again later")
  end
end
