-- Argo CD health for pai.mlops.dev/ModelVersion and truefoundry.mlops.dev/ModelVersion (Lua 5.1,
-- as embedded by Argo CD): one script, since pai-operator's engine writes the same conditions for
-- both registries. The object's API group names the registry and its pause annotation.
-- Conditions written by pai-operator, each with the generation it describes (observedGeneration):
--   Ready:       True only when the remote version exists AND this generation's spec is applied to it
--                (Available); False: Creating | UpdateFailed | NotApplied | Unavailable | Deleting
--   Synced:      ReconcileSuccess | ReconcileError | ReconcilePaused | DeletionBlocked | DeletionHeld | <terminal reason>
--   Reconciling: True while this generation is still being applied (retrying)     -> Progressing
--   Stalled:     True when a terminal reason needs a human                           -> Degraded
-- Terminal reasons need a human (fix the spec or the registry side); retries cannot succeed, so Argo CD
-- must stop waiting and show Degraded. Anything else is transient and stays Progressing. Healthy only
-- when this generation is done, so the next sync wave never starts on a change the registry refused.
-- (Objects last written by an operator without Reconciling/Stalled are judged by Ready and Synced alone.)
local hs = {}

local group = string.match(obj.apiVersion or "", "^([^/]+)/") or "pai.mlops.dev"
local registry = "PAI"
if group == "truefoundry.mlops.dev" then
  registry = "TrueFoundry"
end
local paused = group .. "/paused"

local terminal = {
  InvalidSpec = true,
  AlreadyExists = true,
  ModelNotFound = true,
  AuthFailed = true,
  NoCredentials = true,
  Conflict = true,
  ImmutableFieldMismatch = true,
}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local metadata = obj.metadata or {}
local annotations = metadata.annotations or {}
local status = obj.status or {}
local conditions = status.conditions or {}
local ready = condition(conditions, "Ready")
local synced = condition(conditions, "Synced")
local reconciling = condition(conditions, "Reconciling")
local stalled = condition(conditions, "Stalled")

-- Deletion wins over everything: the finalizer is removing the remote version (pausing does not stop it).
if metadata.deletionTimestamp ~= nil or (ready ~= nil and ready.status == "False" and ready.reason == "Deleting") then
  hs.status = "Progressing"
  if synced ~= nil and (synced.reason == "DeletionBlocked" or synced.reason == "DeletionHeld") then
    -- Still Progressing (the finalizer keeps retrying, or waits for the breaker's confirmation),
    -- but say why it is stuck.
    hs.message = synced.reason .. ": " .. describe(synced, "waiting for the remote version")
  else
    hs.message = describe(ready ~= nil and ready.reason == "Deleting" and ready or nil, "Deleting the model version in " .. registry)
  end
  return hs
end

if annotations[paused] == "true" or (synced ~= nil and synced.reason == "ReconcilePaused") then
  hs.status = "Suspended"
  hs.message = "Reconciliation is paused (" .. paused .. ")"
  return hs
end

if ready == nil and synced == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for pai-operator to reconcile"
  return hs
end

if status.observedGeneration ~= nil and metadata.generation ~= nil and status.observedGeneration < metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for pai-operator to observe generation " .. tostring(metadata.generation)
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. describe(stalled, "reconcile failed permanently")
  return hs
end

if synced ~= nil and synced.status == "False" and terminal[synced.reason] then
  hs.status = "Degraded"
  hs.message = synced.reason .. ": " .. describe(synced, "reconcile failed permanently")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Applying generation " .. tostring(metadata.generation) .. " in " .. registry)
  return hs
end

-- Ready of an earlier generation says nothing about this one.
if ready ~= nil and ready.status == "True" and ready.observedGeneration ~= nil and metadata.generation ~= nil
    and ready.observedGeneration < metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for generation " .. tostring(metadata.generation) .. " to be applied in " .. registry
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Model version is available in " .. registry)
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason == "Unavailable" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Model version is unavailable in " .. registry)
  return hs
end

hs.status = "Progressing"
if synced ~= nil and synced.status == "False" then
  hs.message = describe(synced, "Retrying")
else
  hs.message = describe(ready, "Creating the model version in " .. registry)
end
return hs
