/**
 * Stores a runtime key (ARGV[3]) only where the stored one's revision is ARGV[2] (-1: none stored),
 * and announces it: of two admin writes made from the same read, one lands and the other is told.
 * Reply: stored (1 or 0), and how many replicas heard the announcement.
 */
export const PUT_KEY_LUA = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local revision = -1
if current then revision = tonumber(cjson.decode(current).revision) or 0 end
if revision ~= tonumber(ARGV[2]) then return { 0, 0 } end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return { 1, redis.call('PUBLISH', ARGV[4], ARGV[5]) }
`;
