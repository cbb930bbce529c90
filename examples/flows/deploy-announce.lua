-- deploy-announce: the built-in deploy, announced in a chat channel once
-- when it starts and once when it ends, with the instances that did not
-- succeed. after runs after a failure and a Jenkins abort too.
local deploy = flows.builtin("deploy")

local params = {
  notify_url = { type = "string", required = true, doc = "chat webhook that hears when the deploy starts and ends" },
}
for name, spec in pairs(deploy.params) do params[name] = spec end

-- say posts text to the chat; a chat that is down fails no deploy.
local function say(ctx, text)
  if ctx.dry_run then return end
  local res, err = http.post(ctx.params.notify_url, { text = text }, { timeout = 5 })
  if not res then log.warn("notify failed", "error", err) end
end

return {
  name = "deploy-announce",
  description = "The built-in deploy, announced in a chat channel when it starts and when it ends",
  params = params,
  strategy = deploy.strategy,
  before = function(ctx)
    say(ctx, ctx.params.artifact .. " to " .. table.concat(ctx.servers, ",")
      .. ": started by " .. (ctx.build.tag or "hand"))
  end,
  each = deploy.each,
  rollback = deploy.rollback,
  after = function(ctx, summary)
    local c = summary.counts
    local lines = { string.format("%s to %s: %s, exit %d (%d ok, %d rolled back, %d failed, %d skipped)",
      ctx.params.artifact, table.concat(ctx.servers, ","), summary.outcome, summary.exit_code,
      c.ok, c.rolled_back, c.failed + c.interrupted, c.skipped) }
    for _, i in ipairs(summary.instances) do
      if i.result ~= "ok" and i.result ~= "skipped" then
        table.insert(lines, i.instance .. " " .. i.result .. ": " .. (i.error or ""))
      end
    end
    say(ctx, table.concat(lines, "\n"))
  end,
}
