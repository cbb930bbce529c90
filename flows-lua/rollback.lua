-- rollback: put every instance of a service back on its previous release.
return {
  name = "rollback",
  description = "Make the previous release current on every instance of a service, one at a time, each gated on its health check",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    i:stop()
    i:rollback()
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
  end,
}
