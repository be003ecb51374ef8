-- content_regex.lua: refuse or tag messages whose Subject or body matches regular expressions
-- (PCRE2, as in rspamd or SpamAssassin rules).
--
-- What it does: at DATA, tries each RULES entry against the Subject (where = "subject"), the body
-- (where = "body", the first max_body_bytes) or both. The first matching rule decides: "reject" ->
-- 550 5.7.1, "tag" -> the message gets "X-Spam-Flag: YES" and "X-Policy-Rule: NAME". Patterns are
-- compiled once when the script loads; a bad pattern makes the load fail (--check-config reports
-- it). Every match runs under the hook's instruction budget, so a pattern that backtracks without
-- end gives on_error, never a stuck thread. Trusted and authenticated clients are skipped.
--
-- How to configure:
--     [plugins.lua]
--     scripts = ["policies/content_regex.lua"]
-- and edit RULES: {name, pattern, flags ("i" caseless, "m" multi-line, "s" dot matches newline,
-- "x" extended), where, action}.

local RULES = {
  {"pharma", [[\b(?:viagra|cialis|levitra)\b]], "i", "both", "reject"},
  {"advance_fee", [[\b(?:next of kin|inheritance fund|beneficiary)\b.{0,200}\b(?:million|USD)\b]], "is", "body", "tag"},
}

local compiled = {}
for i, r in ipairs(RULES) do
  compiled[i] = {name = r[1], re = gateway.regex.new(r[2], r[3]), where = r[4], action = r[5]}
end

function on_data(tx, msg)
  if tx.trusted or tx.auth_user then return end
  local subject = msg:header("Subject") or ""
  local body
  for _, r in ipairs(compiled) do
    local hit = false
    if r.where ~= "body" then hit = r.re:find(subject) ~= nil end
    if not hit and r.where ~= "subject" then
      body = body or msg:body()
      hit = r.re:find(body) ~= nil
    end
    if hit then
      gateway.counter("content_regex_" .. r.action)
      if r.action == "reject" then return gateway.reject(550, "5.7.1", "Message content refused") end
      tx:add_header("X-Spam-Flag", "YES")
      tx:add_header("X-Policy-Rule", r.name)
      return
    end
  end
end
