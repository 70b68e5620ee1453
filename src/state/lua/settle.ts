import { LEVEL_COMMON_LUA } from "./common.js";

/**
 * settleLevel() of src/limits/level-state.ts as one atomic step: the reservation is replaced by the actuals.
 * ARGV: now, tpm ('' for null), session (1/0), ttlMs, reservedMicros, reservedTokens, actualMicros,
 *   actualTokens, toolCalls, sameDay (1/0), sameMonth (1/0), rpm ('' for null), released (1/0),
 *   the second the reservation was made, callId (its lease is dropped), unanswered (1/0: the session's call is given back).
 * KEYS 4 and 5 are the day and month of `now`: a call reserved yesterday is charged in full to today.
 */
export const SETTLE_LUA = `${LEVEL_COMMON_LUA}
local now, tpmCap, isSession, ttl = tonumber(ARGV[1]), opt(ARGV[2]), ARGV[3] == '1', tonumber(ARGV[4])
local reservedMicros, reservedTokens = tonumber(ARGV[5]), tonumber(ARGV[6])
local actualMicros, actualTokens, toolCalls = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local sameDay, sameMonth = ARGV[10] == '1', ARGV[11] == '1'
local rpmCap, released, reservedSecond, callId = opt(ARGV[12]), ARGV[13] == '1', ARGV[14], ARGV[15]
local unanswered = ARGV[16] == '1'

if isSession then expireSession(now, ttl) end
releaseExpired(now)

-- A reservation already given back (its lease ended before this settle came) is no longer in the
-- spend or the session: the call is charged there in full.
local givenBack = reservedMicros > 0 and redis.call('HDEL', KEYS[10], callId) == 0
local heldMicros, heldTokens = reservedMicros, reservedTokens
if givenBack then heldMicros, heldTokens = 0, 0 end
local delta = actualMicros - heldMicros
redis.call('SET', KEYS[4], fmt(math.max(0, num(KEYS[4]) + (sameDay and delta or actualMicros))))
redis.call('SET', KEYS[5], fmt(math.max(0, num(KEYS[5]) + (sameMonth and delta or actualMicros))))
redis.call('SET', KEYS[6], fmt(math.max(0, num(KEYS[6]) + delta)))
redis.call('ZREM', KEYS[3], callId)

-- A later level refused the call: give back its request token, its count in the window and its session call.
if released then
  local rpm = loadBucket(KEYS[1])
  if rpm ~= nil and rpmCap ~= nil then
    rpm = refill(rpm, rpmCap, now)
    rpm.tokens = math.min(rpmCap, rpm.tokens + 1)
    saveBucket(KEYS[1], rpm, rpmCap)
  end
  local slot = tonumber(redis.call('HGET', KEYS[9], 'r' .. reservedSecond) or '0')
  if slot > 0 then redis.call('HINCRBYFLOAT', KEYS[9], 'r' .. reservedSecond, -1) end
end
-- Refused by a later level, or never answered by the upstream: the session's call is given back.
if released or unanswered then
  local calls = tonumber(redis.call('HGET', KEYS[7], 'llmCalls') or '0')
  if calls > 0 then redis.call('HSET', KEYS[7], 'llmCalls', fmt(calls - 1)) end
end

local tpm = loadBucket(KEYS[2])
if tpm ~= nil and tpmCap ~= nil then
  tpm = refill(tpm, tpmCap, now)
  tpm.tokens = math.min(tpmCap, tpm.tokens + reservedTokens - actualTokens)
  saveBucket(KEYS[2], tpm, tpmCap)
end

local s = redis.call('HMGET', KEYS[7], 'startedAt', 'micros', 'tokens')
if s[1] then
  redis.call('HSET', KEYS[7], 'micros', fmt(math.max(0, tonumber(s[2]) + delta)))
  redis.call('HSET', KEYS[7], 'tokens', fmt(math.max(0, tonumber(s[3] or '0') + actualTokens - heldTokens)))
  redis.call('HINCRBYFLOAT', KEYS[7], 'toolCalls', toolCalls)
end

pruneWindow(now)
addToWindow(now, 0, actualTokens)
touch(isSession, ttl)
return 'OK'
`;
