-- access_lists.lua: allow and deny lists read from a file when the script loads.
--
-- What it does: reads LIST_FILE once per load (at start, and again on every SIGHUP reload). Each
-- line is "allow ENTRY" or "deny ENTRY"; "#" starts a comment. An ENTRY is
--     alice@example.com     one address (compared case-insensitively)
--     @example.com          every address of a domain
--     @.example.com         every address of the domain's subdomains
--     192.0.2.7             one IPv4 client address
--     192.0.2.0/24          an IPv4 network
-- A denied client address gets 554 at connect; a denied sender gets 550 5.7.1 at MAIL. An allowed
-- client or sender is accepted at every stage (gateway.accept(): later scripts and later plugins
-- such as ratelimit or greylist do not run for that stage; put dkim_sign before lua if it must
-- still sign). Deny entries win over allow entries.
--
-- How to configure:
--     [plugins.lua]
--     scripts = ["policies/access_lists.lua"]
-- and write LIST_FILE (relative paths are from the gateway's working directory). A missing or
-- malformed file makes the load fail: --check-config reports it and SIGHUP keeps the old lists.

local LIST_FILE = "etc/access.list"

local allow = {addr = {}, domain = {}, sub = {}, net = {}}
local deny = {addr = {}, domain = {}, sub = {}, net = {}}

local function ipv4(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

for n, line in ipairs(gateway.read_lines(LIST_FILE)) do
  line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
  if line ~= "" then
    local kind, entry = line:match("^(%a+)%s+(%S+)$")
    local list = (kind == "allow" and allow) or (kind == "deny" and deny)
    if not list then error(LIST_FILE .. ":" .. n .. ": expected 'allow ENTRY' or 'deny ENTRY'", 0) end
    entry = entry:lower()
    local ip, bits = entry:match("^([%d%.]+)/(%d+)$")
    if ip or ipv4(entry) then
      local base = ipv4(ip or entry)
      bits = tonumber(bits or 32)
      if not base or bits > 32 then error(LIST_FILE .. ":" .. n .. ": bad address " .. entry, 0) end
      local size = 1 << (32 - bits)
      list.net[#list.net + 1] = {base - base % size, size}
    elseif entry:sub(1, 2) == "@." then
      list.sub[#list.sub + 1] = entry:sub(2)  -- ".example.com"
    elseif entry:sub(1, 1) == "@" then
      list.domain[entry:sub(2)] = true
    elseif entry:find("@", 1, true) then
      list.addr[entry] = true
    else
      error(LIST_FILE .. ":" .. n .. ": bad entry " .. entry, 0)
    end
  end
end

local function ip_in(list, ip)
  local v = ipv4(ip)
  if not v then return false end
  for _, net in ipairs(list.net) do
    if v >= net[1] and v < net[1] + net[2] then return true end
  end
  return false
end

local function addr_in(list, addr)
  if not addr or addr == "" then return false end
  addr = addr:lower()
  if list.addr[addr] then return true end
  local domain = addr:match("@([^@]+)$")
  if not domain then return false end
  if list.domain[domain] then return true end
  for _, suffix in ipairs(list.sub) do
    if #domain > #suffix and domain:sub(-#suffix) == suffix then return true end
  end
  return false
end

local function allowed(tx)
  return ip_in(allow, tx.client.ip) or addr_in(allow, tx.sender)
end

function on_connect(tx)
  if ip_in(deny, tx.client.ip) then return gateway.reject(554, "5.7.1", "Access denied") end
  if ip_in(allow, tx.client.ip) then return gateway.accept() end
end

function on_mail_from(tx, addr)
  if addr_in(deny, addr) then return gateway.reject(550, "5.7.1", "Sender denied by local policy") end
  if allowed(tx) then return gateway.accept() end
end

function on_rcpt_to(tx, addr)
  if allowed(tx) then return gateway.accept() end
end

function on_data(tx, msg)
  if allowed(tx) then return gateway.accept() end
end
