-- dangerous_attachments.lua: refuse mail carrying attachments whose file name has a dangerous type.
--
-- What it does: at DATA, walks the MIME structure of the message (the top-level header and the
-- header block of every body part), takes each file name from Content-Disposition "filename" and
-- Content-Type "name" (quoted, unquoted, RFC 2231 "filename*=" with %XX, RFC 2047 =?..?B/Q?..?=),
-- and rejects the message with 550 5.7.1 when the last extension is in BLOCKED. Archives are not
-- opened.
--
-- How to configure: list it in smtp-gateway.toml
--     pipeline = [..., "lua", ...]
--     [plugins.lua]
--     scripts = ["policies/dangerous_attachments.lua"]
--     max_body_bytes = "8MiB"   # the part of the body scanned; raise it to see attachments deep
--                                # inside big messages (keep it below max_memory)
-- and edit BLOCKED below. Authenticated and trusted clients are checked too (SKIP_OUTBOUND = false).

local BLOCKED = {
  "ade", "adp", "app", "bat", "chm", "cmd", "com", "cpl", "dll", "exe", "hta", "inf", "ins", "isp",
  "jar", "js", "jse", "lib", "lnk", "mde", "msc", "msi", "msp", "mst", "pif", "ps1", "reg", "scr",
  "sct", "shb", "shs", "sys", "vb", "vbe", "vbs", "vxd", "wsc", "wsf", "wsh", "iso", "img", "vhd",
}
local SKIP_OUTBOUND = false
local REPLY = "5.7.1"

local blocked = {}
for _, e in ipairs(BLOCKED) do blocked[e] = true end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64index = {}
for i = 1, #B64 do b64index[B64:sub(i, i)] = i - 1 end

local function base64(s)
  local out, bits, n = {}, 0, 0
  for c in s:gmatch("[%w+/]") do
    bits = (bits << 6) | b64index[c]
    n = n + 6
    if n >= 8 then
      n = n - 8
      out[#out + 1] = string.char((bits >> n) & 0xff)
    end
  end
  return table.concat(out)
end

-- RFC 2047 encoded words (=?charset?B|Q?text?=) and RFC 2231 / URL-style %XX escapes
local function decode(name)
  name = name:gsub("=%?[^?]+%?([bBqQ])%?([^?]*)%?=", function(enc, text)
    if enc == "b" or enc == "B" then return base64(text) end
    return (text:gsub("_", " "):gsub("=(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end)
  name = name:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  return name
end

-- "name" -> "[nN][aA][mM][eE]": parameter names are case-insensitive, encoded values are not
local function anycase(word)
  return (word:gsub("%a", function(c) return "[" .. c:lower() .. c:upper() .. "]" end))
end
local KEYS = {anycase("filename"), anycase("name")}

-- file names named by one header block (already unfolded): filename=, name=, filename*=,
-- filename*0*=... (RFC 2231 continuations are looked at one by one)
local function names_in(block, out)
  for _, key in ipairs(KEYS) do
    for value in block:gmatch("[;%s]" .. key .. "%*?%d*%*?%s*=%s*(\"[^\"]*\")") do
      out[#out + 1] = value:sub(2, -2)
    end
    for value in block:gmatch("[;%s]" .. key .. "%*?%d*%*?%s*=%s*([^\"%s;][^%s;]*)") do
      out[#out + 1] = value:gsub("^[%w%-]*'[%w%-]*'", "")  -- RFC 2231: charset'language'value
    end
  end
end

local function dangerous(name)
  name = decode(name):gsub("[%s%.]+$", "")  -- Windows ignores trailing dots and spaces
  local ext = name:match("%.([^%.]+)$")
  return ext and blocked[ext:lower()]
end

local function header_block(text)
  return (" " .. text:gsub("\r?\n[ \t]+", " "))
end

function on_data(tx, msg)
  if SKIP_OUTBOUND and (tx.trusted or tx.auth_user) then return end
  local names = {}
  for _, h in ipairs({"Content-Type", "Content-Disposition"}) do
    local v = msg:header(h)
    if v then names_in(header_block(" " .. v), names) end
  end
  -- every part starts after a boundary line "--something"; its header block ends at the first blank
  -- line. Each search is bounded so that the whole walk stays linear in the body size.
  local body = msg:body()
  local pos = body:sub(1, 2) == "--" and 1 or body:find("\n--", 1, true)
  while pos do
    local eol = body:find("\n", pos + 1, true)
    if not eol then break end
    local next_boundary = body:find("\n--", eol, true)
    local stop = math.min(next_boundary or #body, eol + 4096)
    local block = body:sub(eol + 1, stop)
    local blank = block:find("\r?\n\r?\n")
    if blank then block = block:sub(1, blank) end
    if block:find("^[%w%-]+:") then names_in(header_block(block), names) end
    pos = next_boundary
  end
  for _, name in ipairs(names) do
    if dangerous(name) then
      gateway.log("info", "dangerous attachment " .. name .. " from " .. tostring(tx.sender))
      gateway.counter("dangerous_attachment_rejected")
      return gateway.reject(550, REPLY, "Attachments of this type are not accepted: " .. name:sub(1, 100):gsub("[^%w%.%-_ ]", "?"))
    end
  end
end
