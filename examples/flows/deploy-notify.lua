-- deploy-notify: the built-in deploy, then a chat message for every
-- instance it deployed. It builds on the built-in instead of copying it,
-- so fixes to baepo's deploy reach it with the next baepo.
local deploy = flows.builtin("deploy")

-- The built-in's params, plus one of our own.
local params = {
  notify_url = { type = "string", required = true, doc = "chat webhook that hears of each deployed instance" },
}
for name, spec in pairs(deploy.params) do params[name] = spec end

return {
  name = "deploy-notify",
  description = "The built-in deploy, then a chat message for every instance it deployed",
  params = params,
  strategy = deploy.strategy,
  each = function(i, ctx)
    deploy.each(i, ctx)
    local res, err = http.post(ctx.params.notify_url,
      { text = tostring(i) .. " runs " .. ctx.params.artifact },
      { timeout = 5 })
    if not res then log.warn("notify failed", "error", err) end
  end,
  rollback = deploy.rollback,
}
