/**
 * An approval's state transition, checked and applied atomically so two approvers (or two retries
 * consuming one approval) never both win. The approval is a hash: `doc` (the JSON as created),
 * `status`, `exp` (expiry in ms, '' when unparseable: never expires, as in the memory store) and
 * `decision` (JSON of the decided_* fields). Checks run in the memory store's order: expired first.
 * ARGV: now, decide|consume|restore, new status, decision JSON. Reply: outcome, doc, status, decision.
 */
export const APPROVAL_TRANSITION_LUA = `
local v = redis.call('HMGET', KEYS[1], 'doc', 'status', 'exp')
if not v[1] then return { 'not_found', '', '', '' } end
local function reply(outcome)
  local w = redis.call('HMGET', KEYS[1], 'doc', 'status', 'decision')
  return { outcome, w[1], w[2], w[3] or '' }
end
if v[3] and v[3] ~= '' and tonumber(v[3]) <= tonumber(ARGV[1]) then return reply('expired') end
if ARGV[2] == 'decide' then
  if v[2] ~= 'pending' then return reply('not_pending') end
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'decision', ARGV[4])
elseif ARGV[2] == 'consume' then
  if v[2] ~= 'approved' then return reply('not_approved') end
  redis.call('HSET', KEYS[1], 'status', 'used')
else
  if v[2] ~= 'used' then return reply('not_used') end
  redis.call('HSET', KEYS[1], 'status', 'approved')
end
return reply('ok')
`;

/**
 * Deletes a stop and announces it only if it existed, in one step. ARGV: field, channel, message.
 * Reply: removed (1 or 0), and how many replicas heard the announcement.
 */
export const DELETE_AND_PUBLISH_LUA = `
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 0 then return { 0, 0 } end
return { 1, redis.call('PUBLISH', ARGV[2], ARGV[3]) }
`;
