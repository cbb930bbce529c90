-- stop: stop every instance of a service, one at a time by default. An
-- instance behind a load balancer is drained first, so that no request is
-- cut off; it stays drained until start puts it back.
return {
  name = "stop",
  description = "Stop every instance of a service (drained at its load balancer first)",
  params = {
    service = { type = "string", required = true, doc = "service on the agent" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    if i.balancer then
      i:drain()
    end
    i:stop()
  end,
}
