-- restart: rolling restart, one instance at a time by default; the next
-- instance restarts only once the previous one passes its health check.
-- An instance behind a load balancer is drained first and put back once
-- healthy.
return {
  name = "restart",
  description = "Rolling restart of every instance of a service: drain, restart, health, undrain; each gated on its health check",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
  },
  strategy = { batch = 1, max_failures = 0, canary = 0 },   -- --batch, --max-failures, --canary override
  each = function(i, ctx)
    if i.balancer then
      i:drain()
      i.drained = true
    end
    i:restart()
    i:health{ timeout = ctx.params.health_timeout }
    if i.balancer then
      i:undrain()
    end
  end,
  -- A failed instance is brought back if it can be: started (nothing to
  -- do when it runs, as after a drain the balancer refused), checked, and
  -- put back into rotation only once healthy. When that fails too, the run
  -- says so (exit 3).
  rollback = function(i, ctx, err)
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
    if i.drained then
      i:undrain()
    end
  end,
}
