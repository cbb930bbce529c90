-- status: what every instance of a service (or of every service) runs, and
-- whether it is healthy. An instance that is not running, whose current
-- release has not passed its health check since it last started, or whose
-- agent reports a problem (a broken current link), is judged unhealthy():
-- baepo status then exits 3.
return {
  name = "status",
  description = "Show every instance of a service (or of every service): running, release, health; an instance not running and healthy fails. Changes nothing.",
  params = {
    service = { type = "string", doc = "service on the agent; every service when omitted" },
  },
  strategy = { batch = "100%", max_failures = "100%" },
  targets = function(ctx) return ctx:instances(ctx.params.service) end,
  each = function(i, ctx)
    local st = i:status()
    if st.problem then
      unhealthy(tostring(i) .. ": " .. st.problem)
    elseif not st.running then
      unhealthy(tostring(i) .. " is not running")
    elseif st.health ~= "ok" then
      unhealthy(tostring(i) .. " is not healthy: health " .. tostring(st.health))
    end
  end,
}
