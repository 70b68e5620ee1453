/**
 * Extends one call's lease, if it still has one (a settled call's lease stays gone), and keeps the
 * set and the reservations it guards alive as long as the longest lease, never shortening them.
 * KEYS: the level's leases set, its held reservations. ARGV: until (ms), callId, ttl (ms).
 */
export const RENEW_LEASE_LUA = `
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[2])
  for i = 1, 2 do
    if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  end
end
return 'OK'
`;

