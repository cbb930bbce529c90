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
      i.drained = true
    end
    i:stop()
  end,
  -- A drain the balancer refused changed nothing; a stop that failed after
  -- the drain leaves an instance out of rotation, which the run reports.
  rollback = function(i, ctx, err)
    if i.drained then
      fail("the instance is drained and may still run: " .. tostring(err))
    end
  end,
}
