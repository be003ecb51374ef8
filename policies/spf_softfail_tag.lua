-- spf_softfail_tag.lua: tag instead of reject when SPF says softfail.
--
-- What it does: at DATA, when the SPF result is "softfail" (the domain says "probably not us"),
-- adds "X-Spam-Flag: YES" and "X-Policy-SPF: softfail (<domain>)" so the mailbox side (Sieve,
-- Exchange rules, spam folder) can file the message, and counts it in /metrics as
-- smtpgw_lua_counter_total{name="spf_softfail_tagged"}. A "fail" is left to the spf plugin's
-- on_fail; with TAG_FAIL = true it is tagged the same way (for when on_fail = "tag" or "ignore").
--
-- How to configure: put the lua plugin after spf, and let spf tag rather than reject softfails
-- (the default):
--     pipeline = ["spf", ..., "lua", ...]
--     [plugins.spf]
--     on_softfail = "tag"
--     [plugins.lua]
--     scripts = ["policies/spf_softfail_tag.lua"]

local FLAG_HEADER = "X-Spam-Flag"
local TAG_FAIL = false

function on_data(tx, msg)
  local result = tx.spf.result
  if result == "softfail" or (TAG_FAIL and result == "fail") then
    tx:add_header(FLAG_HEADER, "YES")
    tx:add_header("X-Policy-SPF", result .. " (" .. (tx.spf.domain or "unknown") .. ")")
    gateway.counter("spf_" .. result .. "_tagged")
  end
end
