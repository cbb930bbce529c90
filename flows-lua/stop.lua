-- stop: stop every instance of a service, one at a time by default.
return {
  name = "stop",
  description = "Stop every instance of a service",
  params = {
    service = { type = "string", required = true, doc = "service on the agent" },
  },
  strategy = { batch = 1, max_failures = 0 },
  each = function(i, ctx)
    i:stop()
  end,
}
