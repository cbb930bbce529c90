-- deploy: rolling, health-gated deploy of one artifact to every instance of
-- a service. A failed instance goes back to the release it ran before.
return {
  name = "deploy",
  description = "Rolling deploy of a WAR/JAR to every instance of a service: stop, install, start, health; a failed instance is rolled back",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent (a key of services: in agent.yaml)" },
    artifact       = { type = "artifact", required = true, doc = "WAR/JAR path, or an http(s) URL ending in #sha256=<hex>" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
  },
  strategy = { batch = 1, max_failures = 0, canary = 0 },   -- --batch, --max-failures, --canary override
  each = function(i, ctx)
    i:stop()
    i:install(ctx.params.artifact)
    i.installed = true
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
  end,
  rollback = function(i, ctx, err)
    if i.installed then
      i:stop()
      i:rollback()
    end
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
  end,
}
