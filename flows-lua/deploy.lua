-- deploy: rolling, health-gated deploy of one artifact to every instance of
-- a service. A failed instance goes back to the release it ran before.
--
-- Two ways to put a release in place, per instance:
--   hot      the app server deploys it beside the running release and
--            switches new requests to it, with no restart (Tomcat's
--            parallel deployment); once it passes its health check the old
--            release retires when its sessions end.
--   restart  drain the instance at its load balancer (when it has one),
--            stop, install, start, health check, and put it back.
-- --mode picks one for every instance; without it each instance takes its
-- service's deploy_mode from agent.yaml.
return {
  name = "deploy",
  description = "Rolling deploy of a WAR/JAR to every instance of a service: hot (no restart) or drain, stop, install, start, health, undrain; a failed instance is rolled back",
  params = {
    service        = { type = "string",   required = true, doc = "service on the agent (a key of services: in agent.yaml)" },
    artifact       = { type = "artifact", required = true, doc = "WAR/JAR path, or an http(s) URL ending in #sha256=<hex>" },
    health_timeout = { type = "duration", default = "90s", doc = "how long an instance may take to pass its health check" },
    mode           = { type = "string", values = { "hot", "restart" }, doc = "hot: deploy into the running server, no restart; restart: stop, install, start (default: the service's deploy_mode)" },
  },
  strategy = { batch = 1, max_failures = 0, canary = 0 },   -- --batch, --max-failures, --canary override
  each = function(i, ctx)
    local mode = ctx.params.mode or i.mode
    if mode == "hot" and not i:status().running then
      -- Nothing runs to deploy into: a stopped or crashed instance takes
      -- the restart path and starts with the release.
      mode = "restart"
    end
    if mode == "hot" then
      i:install(ctx.params.artifact, { mode = "hot" })
      i.installed = "hot"
      i:health{ timeout = ctx.params.health_timeout }
      i:step("retire")
      return
    end
    if i.balancer then
      i:drain()
      i.drained = true
    end
    i:stop()
    i:install(ctx.params.artifact, { mode = "restart" })
    i.installed = "restart"
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
    if i.balancer then
      i:undrain()
    end
  end,
  rollback = function(i, ctx, err)
    if i.installed == "hot" then
      -- The release before is still deployed beside the failed one, or is
      -- deployed again: new requests go back to it without a restart.
      i:rollback{ mode = "hot" }
      i:health{ timeout = ctx.params.health_timeout }
      return
    end
    if i.installed then
      i:stop()
      i:rollback{ mode = "restart" }
    end
    i:start()
    i:health{ timeout = ctx.params.health_timeout }
    -- Back into rotation only once healthy: a failed health check above
    -- leaves the instance drained, and the run says so.
    if i.drained then
      i:undrain()
    end
  end,
}
