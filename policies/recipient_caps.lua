-- recipient_caps.lua: cap how many recipients one sender domain may address per time window.
--
-- What it does: at every RCPT, counts the recipient under the sender's domain in gateway.store
-- (shared by all worker threads, and by all gateways with the redis store), in a fixed window that
-- starts at the domain's first recipient. Past the cap, further recipients get
-- 451 4.7.1 (the client retries later) until the window ends. The null sender (bounces) is counted
-- under "<>".
--
-- How to configure: needs [store] (embedded or redis) and the lua plugin:
--     pipeline = [..., "lua", ...]
--     [plugins.lua]
--     scripts = ["policies/recipient_caps.lua"]
-- and edit the constants below: LIMIT and WINDOW for every domain, CAPS for domains with their own
-- cap, SKIP_OUTBOUND to leave trusted networks and authenticated users uncounted. When the store
-- cannot be reached the script lets mail through (ON_STORE_ERROR = "accept") or answers 451
-- (ON_STORE_ERROR = "tempfail").

local LIMIT = 500              -- recipients per domain per window
local WINDOW = "1h"            -- a duration: "30s", "10m", "1h", "1d"
local CAPS = {                 -- per-domain caps overriding LIMIT
  -- ["newsletter.example"] = 5000,
}
local SKIP_OUTBOUND = true
local ON_STORE_ERROR = "accept"

local function domain_of(addr)
  if addr == nil or addr == "" then return "<>" end
  return (addr:match("@([^@]+)$") or addr):lower()
end

function on_rcpt_to(tx, addr)
  if SKIP_OUTBOUND and (tx.trusted or tx.auth_user) then return end
  local domain = domain_of(tx.sender)
  local cap = CAPS[domain] or LIMIT
  local ok, n = pcall(gateway.store.incr, "rcptcap:" .. domain, 1, WINDOW)
  if not ok then
    gateway.log("warn", "recipient_caps: store error: " .. tostring(n))
    if ON_STORE_ERROR == "tempfail" then return gateway.tempfail(451, "4.7.1", "Try again later") end
    return
  end
  if n > cap then
    gateway.counter("recipient_cap_exceeded")
    return gateway.tempfail(451, "4.7.1", "Too many recipients from " .. domain .. ", try again later")
  end
end
