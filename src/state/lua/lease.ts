/**
 * Extends one call's lease, if it still has one (a settled call's lease stays gone), and keeps the
 * set alive as long as the longest lease, never shortening it; a set kept for the reservations it
 * guards (no expiry: see addLease) stays so.
 * KEYS: the level's leases set. ARGV: until (ms), callId, ttl (ms).
 */
export const RENEW_LEASE_LUA = `
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[2])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return 'OK'
`;

