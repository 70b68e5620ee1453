import { LEVEL_COMMON_LUA } from "./common.js";

/**
 * reserveLevel() of src/limits/level-state.ts as one atomic step.
 * ARGV: now, rpm, tpm, maxParallel, dailyMicros, monthlyMicros, totalMicros, session (1/0),
 *   sessionMaxTokens, sessionMaxMs, sessionMaxLlmCalls, sessionMaxToolCalls, inputTokens, inputMicros,
 *   outputPricePer1M, outputTokens, minOutputTokens, clamp (1/0), ttlMs, callId, leaseMs. '' stands for null.
 * Reply (all strings, '' for null): ok|refused, limit kind, retryAfterMs, outputTokens, reservedMicros,
 *   reservedTokens, then limit/remaining/resetMs for requests and for tokens.
 */
export const RESERVE_LUA = `${LEVEL_COMMON_LUA}
local now = tonumber(ARGV[1])
local rpmCap, tpmCap, maxParallel = opt(ARGV[2]), opt(ARGV[3]), opt(ARGV[4])
local isSession = ARGV[8] == '1'
local maxTokens, maxMs, maxLlm, maxTool = opt(ARGV[9]), opt(ARGV[10]), opt(ARGV[11]), opt(ARGV[12])
local inputTokens, inputMicros, price = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local wanted, minOutput, clamp, ttl = tonumber(ARGV[16]), tonumber(ARGV[17]), ARGV[18] == '1', tonumber(ARGV[19])
local callId, leaseMs = ARGV[20], tonumber(ARGV[21])

if isSession then expireSession(now, ttl) end
releaseExpired(now)
pruneWindow(now)

local rpm, tpm = loadBucket(KEYS[1]), loadBucket(KEYS[2])

local function reply(status, kind, retry, output, micros, tokens)
  touch(isSession, ttl)
  local r, t = rateOf(rpm, rpmCap), rateOf(tpm, tpmCap)
  return { status, kind, retry, output, micros, tokens, r[1], r[2], r[3], t[1], t[2], t[3] }
end
local function refuse(kind, retry) return reply('refused', kind, retry and fmt(retry) or '', '', '', '') end

local s = redis.call('HMGET', KEYS[7], 'startedAt', 'llmCalls', 'toolCalls', 'tokens')
local hasSession = s[1] ~= false
if maxMs ~= nil and hasSession and now - tonumber(s[1]) > maxMs then return refuse('session_seconds') end
if maxLlm ~= nil and tonumber(s[2] or '0') >= maxLlm then return refuse('session_llm_calls') end
if maxTool ~= nil and tonumber(s[3] or '0') > maxTool then return refuse('session_tool_calls') end
if maxTokens ~= nil and tonumber(s[4] or '0') >= maxTokens then return refuse('session_tokens') end

-- The input's cost times 1M, whole: the worst case is rounded up once, input and output together.
local inputScaled = math.floor(inputMicros * 1000000 + 0.5)
local function worstMicros(out) return math.ceil((inputScaled + out * price) / 1000000) end

-- The output tokens a remaining budget can pay for, or nil when it cannot pay the minimum.
local function affordable(remaining, want)
  if worstMicros(want) <= remaining then return want end
  if not clamp or price <= 0 then return nil end
  local fitting = math.floor((remaining * 1000000 - inputScaled) / price)
  if fitting >= minOutput then return math.min(fitting, want) end
  return nil
end

local output = wanted
local budgets = {
  { 'daily_cost', opt(ARGV[5]), KEYS[4] },
  { 'monthly_cost', opt(ARGV[6]), KEYS[5] },
  { 'total_cost', opt(ARGV[7]), KEYS[6] },
}
local spent = {}
for i, budget in ipairs(budgets) do
  spent[i] = num(budget[3])
  if budget[2] ~= nil then
    local fitting = affordable(budget[2] - spent[i], output)
    if fitting == nil then return refuse(isSession and 'session_cost' or budget[1]) end
    output = fitting
  end
end
if maxTokens ~= nil then
  local room = maxTokens - tonumber(s[4] or '0') - inputTokens
  if output > room then
    if not clamp or room < minOutput then return refuse('session_tokens') end
    output = room
  end
end

-- Refilled buckets are kept even when the call is refused below: refilling in two steps rounds
-- differently from one, and the reference keeps them too.
if rpmCap ~= nil then rpm = refill(rpm, rpmCap, now); saveBucket(KEYS[1], rpm, rpmCap) end
if tpmCap ~= nil then tpm = refill(tpm, tpmCap, now); saveBucket(KEYS[2], tpm, tpmCap) end
if rpm ~= nil and rpmCap ~= nil and rpm.tokens < 1 then
  return refuse('requests_per_minute', msToRefill(1 - rpm.tokens, rpmCap))
end
local tokens = inputTokens + output
if tpm ~= nil and tpmCap ~= nil and tpm.tokens < tokens then
  local wait = MINUTE
  if tokens <= tpmCap then wait = msToRefill(tokens - tpm.tokens, tpmCap) end
  return refuse('tokens_per_minute', wait)
end
if maxParallel ~= nil and liveLeases(ARGV[1]) >= maxParallel then return refuse('max_parallel_requests', 1000) end

local micros = worstMicros(output)
if rpmCap ~= nil then rpm.tokens = rpm.tokens - 1; saveBucket(KEYS[1], rpm, rpmCap) end
if tpmCap ~= nil then tpm.tokens = tpm.tokens - tokens; saveBucket(KEYS[2], tpm, tpmCap) end
-- A call that reserves money holds a lease too: its replica may die before the settle.
if maxParallel ~= nil or micros > 0 then addLease(now, callId, leaseMs) end
if micros > 0 then holdReservation(callId, micros, isSession and tokens or 0) end
for i, budget in ipairs(budgets) do redis.call('SET', budget[3], fmt(spent[i] + micros)) end
if isSession then
  if not hasSession then
    redis.call('HSET', KEYS[7], 'startedAt', fmt(now), 'micros', '0', 'tokens', '0', 'llmCalls', '0', 'toolCalls', '0')
  end
  redis.call('HINCRBYFLOAT', KEYS[7], 'micros', micros)
  redis.call('HINCRBYFLOAT', KEYS[7], 'tokens', inputTokens + output)
  redis.call('HINCRBYFLOAT', KEYS[7], 'llmCalls', 1)
end
addToWindow(now, 1, 0)
return reply('ok', '', '', fmt(output), fmt(micros), fmt(tokens))
`;
