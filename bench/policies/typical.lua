-- A typical policy for the benchmark: two hooks, a header lookup and a store call.
function on_rcpt_to(tx, addr)
  local n = gateway.store.incr("bench:rcpt:" .. tx.client.ip, 1, "1h")
  if n < 0 then
    return gateway.tempfail(451, "4.7.1", "impossible")
  end
end

function on_data(tx, msg)
  if msg:header("X-Spam-Flag") == "YES" then
    return gateway.reject(550, "5.7.1", "spam")
  end
  tx:add_header("X-Policy", "checked")
end
