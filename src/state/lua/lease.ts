import { LEVEL_COMMON_LUA } from "./common.js";

/**
 * Extends one call's lease, if it still has one (a settled call's lease stays gone), and keeps the
 * set alive as long as the longest lease, never shortening it; a set kept for the reservations it
 * guards (no expiry: see addLease) stays so. The first renewal after an outage finds every lease of
 * the level lapsed: it starts the grace the other replicas get to renew theirs (see releaseExpired).
 * A renewal that says what its running call holds brings a lease that is gone back with it: Redis
 * restarted without its data (or the lease was taken back after a stall longer than the grace), and
 * the call would otherwise spend, unreserved, what the next calls are admitted against.
 * KEYS: the level's (see common.ts). ARGV: until (ms), callId, ttl (ms), now, held micros, held tokens ('' when not said).
 */
export const RENEW_LEASE_LUA = `${LEVEL_COMMON_LUA}
local now, callId, ttl = tonumber(ARGV[4]), ARGV[2], tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[3], callId) then
  startGraceIfLapsed(now)
  redis.call('ZADD', KEYS[3], 'XX', ARGV[1], callId)
  local left = redis.call('PTTL', KEYS[3])
  if left >= 0 and left < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
elseif ARGV[5] ~= '' then
  addLease(now, callId, ttl)
  local micros, tokens = tonumber(ARGV[5]), tonumber(ARGV[6])
  if micros > 0 and not redis.call('HGET', KEYS[10], callId) then
    redis.call('SET', KEYS[4], fmt(num(KEYS[4]) + micros))
    redis.call('SET', KEYS[5], fmt(num(KEYS[5]) + micros))
    redis.call('SET', KEYS[6], fmt(num(KEYS[6]) + micros))
    -- A session level's counters, where they survived, hold the call again too (as reserve did).
    local s = redis.call('HMGET', KEYS[7], 'micros', 'tokens')
    if not s[1] then tokens = 0 end
    if s[1] then redis.call('HSET', KEYS[7], 'micros', fmt(tonumber(s[1]) + micros), 'tokens', fmt(tonumber(s[2] or '0') + tokens)) end
    holdReservation(callId, micros, tokens)
  end
end
return 'OK'
`;

/**
 * Undoes a reserve whose outcome the caller never heard (it timed out): what the call holds at the
 * level, if the reserve ran, is given back and its lease dropped. Running it twice, or where the
 * reserve never ran, changes nothing; its request stays counted in the minute, as a refused call's does.
 * KEYS: the level's. ARGV: callId.
 */
export const ABANDON_LUA = `${LEVEL_COMMON_LUA}
giveBack(ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 'OK'
`;
