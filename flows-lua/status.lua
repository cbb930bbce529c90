return {
  name = "status",
  description = "Show every instance of a service (or of every service): running, release, health. Changes nothing.",
  params = {
    service = { type = "string", doc = "service on the agent; every service when omitted" },
  },
  strategy = { batch = "100%", max_failures = "100%" },
  targets = function(ctx) return ctx:instances(ctx.params.service) end,
  each = function(i, ctx)
    i:status()
  end,
}
