-- start: start every instance of a service, wait for it to be healthy, and
-- put an instance behind a load balancer back into rotation.
return {
  name = "start",
  description = "Start every instance of a service, wait until each passes its health check, and undrain it at its load balancer",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
    if i.balancer then
      i:undrain()
    end
  end,
}
