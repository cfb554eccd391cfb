-- Argo CD health check for Quorum's kinds (EtcdCluster, ControlPlane,
-- EtcdBackup). It reads the conditions kstatus reads, the same way:
--   Ready True, for the current generation           Healthy
--   quorum.dev/paused: "true" and not Ready           Suspended
--   Stalled True (only a person can help)             Degraded
--   anything else (creating, repairing, rolling)      Progressing
local hs = {}

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local generation = obj.metadata.generation
local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report status"
  return hs
end
if generation ~= nil then
  local observed = obj.status.observedGeneration
  if (observed ~= nil and observed < generation) or (ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
    hs.status = "Progressing"
    hs.message = "waiting for the operator to act on generation " .. generation
    return hs
  end
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
local annotations = obj.metadata.annotations
if annotations ~= nil and annotations["quorum.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = ready.message
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
hs.status = "Progressing"
hs.message = ready.message
return hs
