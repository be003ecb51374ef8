-- dmarc_lite.lua: reject mail whose From domain is backed by neither SPF nor DKIM (a small DMARC-style
-- alignment check).
--
-- What it does: at DATA, takes the domain of the From header and looks for an aligned pass:
--   * SPF: tx.spf.result is "pass" and the SPF-checked domain (MAIL FROM, or HELO for bounces) is
--     aligned with the From domain;
--   * DKIM: a tx.dkim entry with result "pass" whose d= domain is aligned with the From domain.
-- "Aligned" is relaxed alignment: equal organizational domains, taken here as the last two labels
-- (the last three under the ccTLD second levels listed in TWO_LEVEL_SUFFIXES; there is no full public
-- suffix list). Without any aligned pass the message gets 550 5.7.1. It does not read published
-- DMARC records (no p=none/quarantine): every domain is treated as p=reject. Messages from
-- trusted networks and authenticated users are skipped, as are messages where SPF was not checked
-- (tx.spf.result is nil: no spf plugin before lua).
--
-- How to configure: run it after the spf and dkim_verify plugins:
--     pipeline = ["spf", "dkim_verify", "lua", "dkim_sign"]
--     [plugins.lua]
--     scripts = ["policies/dmarc_lite.lua"]
-- EXEMPT lists From domains never rejected (mailing lists that break both SPF and DKIM, ...).
-- With TAG_ONLY = true nothing is rejected: the message gets "X-Policy-DMARC: fail" instead.

local EXEMPT = {
  -- ["lists.example.org"] = true,
}
local TAG_ONLY = false
local TWO_LEVEL_SUFFIXES = {
  ["co.uk"] = true, ["org.uk"] = true, ["ac.uk"] = true, ["gov.uk"] = true, ["com.au"] = true,
  ["net.au"] = true, ["org.au"] = true, ["co.jp"] = true, ["co.nz"] = true, ["com.br"] = true,
  ["co.za"] = true, ["com.cn"] = true, ["co.in"] = true,
}

local function org_domain(domain)
  domain = domain:lower():gsub("%.$", "")
  local labels = {}
  for label in domain:gmatch("[^%.]+") do labels[#labels + 1] = label end
  local n = #labels
  if n <= 2 then return domain end
  local last2 = labels[n - 1] .. "." .. labels[n]
  if TWO_LEVEL_SUFFIXES[last2] then return labels[n - 2] .. "." .. last2 end
  return last2
end

local function aligned(a, b)
  return a and b and a ~= "" and b ~= "" and org_domain(a) == org_domain(b)
end

-- the domain of the (first) address in a From header: "Name <user@example.com>" or user@example.com
local function from_domain(value)
  local addr = value:match("<([^>]*)>") or value:match("([^%s,;]+@[^%s,;]+)")
  if not addr then return nil end
  return addr:match("@([%w%.%-]+)%s*$")
end

function on_data(tx, msg)
  if tx.trusted or tx.auth_user then return end
  local spf = tx.spf.result
  if spf == nil then return end
  local from = msg:header("From")
  local domain = from and from_domain(from)
  if not domain then return end
  domain = domain:lower()
  if EXEMPT[domain] then return end
  if spf == "pass" and aligned(tx.spf.domain, domain) then return end
  for _, sig in ipairs(tx.dkim) do
    if sig.result == "pass" and aligned(sig.domain, domain) then return end
  end
  gateway.counter("dmarc_lite_fail")
  if TAG_ONLY then
    tx:add_header("X-Policy-DMARC", "fail (header.from=" .. domain .. ")")
    return
  end
  return gateway.reject(550, "5.7.1", "From domain " .. domain:sub(1, 200) .. " is not authenticated by SPF or DKIM")
end
