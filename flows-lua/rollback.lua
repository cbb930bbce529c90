-- rollback: put every instance of a service back on its previous release,
-- hot (no restart) or through drain, stop, rollback, start, health and
-- undrain, as deploy does.
return {
  name = "rollback",
  description = "Make the previous release current on every instance of a service, one at a time, each gated on its health check: hot, or drain, stop, rollback, start, health, undrain",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
    mode           = { type = "string", values = { "hot", "restart" }, doc = "hot: switch the running server back, no restart; restart: stop, rollback, start (default: the service's deploy_mode)" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    local mode = ctx.params.mode or i.mode
    if mode == "hot" and not i:status().running then
      mode = "restart"
    end
    if mode == "hot" then
      i:rollback{ mode = "hot" }
      i:health{ timeout = ctx.params.health_timeout }
      i:step("retire")
      return
    end
    if i.balancer then
      i:drain()
    end
    i:stop()
    i:rollback{ mode = "restart" }
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
    if i.balancer then
      i:undrain()
    end
  end,
}
