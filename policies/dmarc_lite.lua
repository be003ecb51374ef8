-- dmarc_lite.lua: apply the dmarc plugin's result with local exceptions.
--
-- What it does: at DATA, reads tx.dmarc, the result of the dmarc plugin (RFC 7489: the From domain's
-- published policy, alignment of SPF and DKIM). A message that fails DMARC is treated as its domain's
-- owner asks, never harder:
--   * p=reject   -> 550 5.7.1 (or only tagged with TAG_ONLY = true)
--   * p=quarantine -> delivered with "X-Spam-Flag: YES"
--   * p=none, or any other result -> delivered; the result is written in "X-Policy-DMARC".
-- From domains in EXEMPT (mailing lists that break both SPF and DKIM, partners with broken setups)
-- are only tagged. Nothing happens when tx.dmarc is nil (the dmarc plugin did not run before this
-- Lua instance, or skipped the client: trusted networks, authenticated users).
--
-- How to configure: run it after the dmarc plugin, and let the plugin only tag so that this script
-- decides (with its exceptions):
--     pipeline = ["spf", "dkim_verify", "dmarc", "lua:dmarc", "dkim_sign"]
--     [plugins.dmarc]
--     on_reject = "tag"
--     on_quarantine = "tag"
--     [plugins."lua:dmarc"]
--     scripts = ["policies/dmarc_lite.lua"]

local EXEMPT = {
  -- ["lists.example.org"] = true,
}
local TAG_ONLY = false

function on_data(tx, msg)
  local d = tx.dmarc
  if d == nil or d.result == nil then return end
  tx:add_header("X-Policy-DMARC", d.result .. " (p=" .. (d.policy or "none") .. " header.from=" .. (d.domain or "") .. ")")
  if d.result ~= "fail" then return end
  gateway.counter("dmarc_lite_fail")
  local domain = (d.domain or ""):lower()
  if EXEMPT[domain] then return end
  if d.policy == "reject" and not TAG_ONLY then
    return gateway.reject(550, "5.7.1", "From domain " .. domain:sub(1, 200) .. " failed DMARC (p=reject)")
  end
  if d.policy == "reject" or d.policy == "quarantine" then tx:add_header("X-Spam-Flag", "YES") end
end
