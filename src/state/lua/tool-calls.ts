/**
 * Charges a session with an answer's tool calls only if they keep it within its cap; a session
 * that has expired (no startedAt) takes none. A negative count gives calls back (never below
 * zero). KEYS: the session hash. ARGV: count, max. Reply: 1 or 0, and the count before this answer.
 */
export const TAKE_TOOL_CALLS_LUA = `
local s = redis.call('HMGET', KEYS[1], 'startedAt', 'toolCalls')
local used = tonumber(s[2] or '0')
local count = tonumber(ARGV[1])
if not s[1] or (count > 0 and used + count > tonumber(ARGV[2])) then return { 0, tostring(used) } end
if used + count < 0 then count = -used end
redis.call('HINCRBYFLOAT', KEYS[1], 'toolCalls', tostring(count))
return { 1, tostring(used) }
`;
