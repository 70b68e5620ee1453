import { LEASE_GRACE_MS } from "../../limits/leases.js";

/**
 * Lua shared by the level scripts. Both scripts receive the same KEYS, all under one hash tag:
 *   1 rpm bucket, 2 tpm bucket, 3 leases of the calls in flight, 4 today's spend, 5 this month's spend,
 *   6 total spend, 7 session counters, 8 session expiry (on the caller's clock), 9 per-second window,
 *   10 the reservations of calls in flight.
 * The arithmetic mirrors src/limits/level-state.ts step for step so one contract suite holds for both.
 */
export const LEVEL_COMMON_LUA = `
local MINUTE = 60000
local DAY = 86400000

-- Floats are written with 17 digits: Lua's default tostring keeps 14 and would drift from the JS reference.
local function fmt(x) return string.format('%.17g', x) end
local function opt(v) if v == nil or v == '' then return nil end return tonumber(v) end
local function num(key) return tonumber(redis.call('GET', key) or '0') end

local function loadBucket(key)
  local v = redis.call('HMGET', key, 'tokens', 'at')
  if not v[1] then return nil end
  return { tokens = tonumber(v[1]), at = tonumber(v[2]) }
end

local function refill(bucket, capacity, now)
  if bucket == nil then return { tokens = capacity, at = now } end
  local elapsed = math.max(0, now - bucket.at)
  return { tokens = math.min(capacity, bucket.tokens + (elapsed * capacity) / MINUTE), at = now }
end

local function msToRefill(missing, capacity) return math.ceil((missing * MINUTE) / capacity) end

-- A bucket left alone until it is full again is the same as no bucket, so it may expire then
-- (never sooner than a minute; a bucket overdrawn by a settle takes longer to fill).
local function saveBucket(key, bucket, capacity)
  redis.call('HSET', key, 'tokens', fmt(bucket.tokens), 'at', fmt(bucket.at))
  redis.call('PEXPIRE', key, math.max(MINUTE, msToRefill(capacity - bucket.tokens, capacity)) + 1000)
end

local function rateOf(bucket, capacity)
  if capacity == nil or bucket == nil then return { '', '', '' } end
  local remaining = math.max(0, math.floor(bucket.tokens))
  return { fmt(capacity), fmt(remaining), fmt(msToRefill(capacity - bucket.tokens, capacity)) }
end

-- A session idle past its ttl starts afresh. The expiry is kept on the caller's clock (not only as a
-- Redis TTL) so injected time in tests behaves exactly like the memory store.
local function expireSession(now, ttl)
  local expiry = redis.call('GET', KEYS[8])
  if expiry and tonumber(expiry) <= now then redis.call('DEL', unpack(KEYS)) end
  if ttl > 0 then redis.call('SET', KEYS[8], fmt(now + ttl)) end
end

-- Per-second slots r<second> / t<second>; slots older than the last 60 s are dropped.
local function pruneWindow(now)
  local oldest = math.floor(now / 1000) - 59
  local fields = redis.call('HKEYS', KEYS[9])
  for _, field in ipairs(fields) do
    if tonumber(string.sub(field, 2)) < oldest then redis.call('HDEL', KEYS[9], field) end
  end
end

local function addToWindow(now, requests, tokens)
  local second = math.floor(now / 1000)
  if requests ~= 0 then redis.call('HINCRBYFLOAT', KEYS[9], 'r' .. second, requests) end
  if tokens ~= 0 then redis.call('HINCRBYFLOAT', KEYS[9], 't' .. second, tokens) end
  redis.call('PEXPIRE', KEYS[9], MINUTE + 1000)
end

-- Calls in flight are leases in a sorted set (member: call id, score: lease expiry on the caller's
-- clock), not a count: the slots of a replica that died mid-call come back when their leases end, and
-- so does what those calls reserved (KEYS[10]): from today's and this month's spend where it was
-- reserved today and this month, from the total and the session always.
local function giveBack(id)
  local held = redis.call('HGET', KEYS[10], id)
  if not held then return end
  local micros, dayKey, monthKey, tokens = string.match(held, '^(%S+) (%S+) (%S+) (%S+)$')
  micros, tokens = tonumber(micros), tonumber(tokens)
  if dayKey == KEYS[4] then redis.call('SET', KEYS[4], fmt(math.max(0, num(KEYS[4]) - micros))) end
  if monthKey == KEYS[5] then redis.call('SET', KEYS[5], fmt(math.max(0, num(KEYS[5]) - micros))) end
  redis.call('SET', KEYS[6], fmt(math.max(0, num(KEYS[6]) - micros)))
  local s = redis.call('HMGET', KEYS[7], 'micros', 'tokens')
  if s[1] then
    redis.call('HSET', KEYS[7], 'micros', fmt(math.max(0, tonumber(s[1]) - micros)), 'tokens', fmt(math.max(0, tonumber(s[2] or '0') - tokens)))
  end
  redis.call('HDEL', KEYS[10], id)
end

-- A lease also lapses when no replica could reach Redis for longer than a lease: every lease of the
-- level then lapsed at once, its calls' streams perhaps still running. Taking those back at the first
-- call after the outage would hand their worst case to that call to spend. So where every lease
-- lapsed, the live replicas are first given LEASE_GRACE (more than a renewal period) to renew theirs,
-- and only the leases still lapsed after it are taken back. The memory store does the same.
local LEASE_GRACE = ${LEASE_GRACE_MS}
local function startGraceIfLapsed(now)
  local newest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  if newest[2] == nil or tonumber(newest[2]) > now or redis.call('HEXISTS', KEYS[10], '~grace') == 1 then return false end
  redis.call('HSET', KEYS[10], '~grace', fmt(now + LEASE_GRACE))
  return true
end

local function releaseExpired(now)
  local graceUntil = redis.call('HGET', KEYS[10], '~grace')
  if graceUntil then
    if now < tonumber(graceUntil) then return end
    redis.call('HDEL', KEYS[10], '~grace')
  end
  local ended = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  if #ended == 0 then return end
  -- The leases still lapsed when a grace ends are taken back, not given another.
  if not graceUntil and startGraceIfLapsed(now) then return end
  for _, id in ipairs(ended) do giveBack(id) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end

-- During a grace the lapsed leases still hold their slots: their calls may be running.
local function liveLeases(now)
  if redis.call('HEXISTS', KEYS[10], '~grace') == 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
  return redis.call('ZCARD', KEYS[3])
end

-- The set outlives its longest lease; replicas may run with different lease lengths, so never shorten
-- it. One that guards reservations (KEYS[10]) is kept, with them, until the level's next call gives
-- them back: expiring with the leases would leave the spend they hold counted for good. Both empty
-- themselves as calls settle (Redis deletes an empty set or hash).
local function addLease(now, callId, leaseMs)
  local ttl = redis.call('PTTL', KEYS[3])
  redis.call('ZADD', KEYS[3], fmt(now + leaseMs), callId)
  -- -2: the set is new; -1: it is kept for its reservations.
  if ttl == -2 or (ttl >= 0 and ttl < leaseMs) then redis.call('PEXPIRE', KEYS[3], leaseMs) end
end

local function holdReservation(callId, micros, tokens)
  redis.call('HSET', KEYS[10], callId, fmt(micros) .. ' ' .. KEYS[4] .. ' ' .. KEYS[5] .. ' ' .. fmt(tokens))
  redis.call('PERSIST', KEYS[3])
end

-- Session levels live exactly as long as the session; other levels keep each counter as long as it
-- matters (the leases' set: see addLease).
local function touch(isSession, ttl)
  if isSession and ttl > 0 then
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl + MINUTE) end
    return
  end
  redis.call('PEXPIRE', KEYS[4], 35 * DAY)
  redis.call('PEXPIRE', KEYS[5], 400 * DAY)
end
`;
