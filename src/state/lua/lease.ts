import { LEVEL_COMMON_LUA } from "./common.js";

/**
 * Extends one call's lease, if it still has one (a settled call's lease stays gone), and keeps the
 * set alive as long as the longest lease, never shortening it; a set kept for the reservations it
 * guards (no expiry: see addLease) stays so. The first renewal after an outage finds every lease of
 * the level lapsed: it starts the grace the other replicas get to renew theirs (see releaseExpired).
 * KEYS: the level's (see common.ts). ARGV: until (ms), callId, ttl (ms), now.
 */
export const RENEW_LEASE_LUA = `${LEVEL_COMMON_LUA}
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  startGraceIfLapsed(tonumber(ARGV[4]))
  redis.call('ZADD', KEYS[3], 'XX', ARGV[1], ARGV[2])
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl >= 0 and ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
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
