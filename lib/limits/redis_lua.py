"""The Redis store's Lua scripts (admit, renew, settle): each runs atomically, in one round trip.

The data: a sliding window is a ZSET of `<admission id>:<amount>` scored by when the entry leaves the
window (ms), beside `<name>:sum`, its running total; leases are a ZSET of admission ids scored by expiry;
a day or month budget is a counter whose name carries its window (`tpd:2026-12-01`). `now` is the
server's `TIME` unless the caller passes one (tests), so instances with skewed clocks agree.
"""

from __future__ import annotations

# Every script starts here: the clock, the admission id, and reading `<id>:<amount>` members.
_CLOCK = """
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id = ARGV[2]
local function amount_of(member) return tonumber(string.match(member, ':(%d+)$')) end
"""

# KEYS: two per check (the counter, and a window's running sum). ARGV: now_ms (0 = server clock),
# admission id, then kind, limit, amount, window_ms per check. Pass 1 measures; pass 2 charges all or none.
ADMIT = (
    _CLOCK
    + """
local grace = tonumber(ARGV[3])
local n = (#ARGV - 3) / 4
local function window_used(z, s)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 and redis.call('EXISTS', s) == 1 then
    local freed = 0
    for _, m in ipairs(gone) do freed = freed + amount_of(m) end
    redis.call('DECRBY', s, freed)
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  if redis.call('ZCARD', z) == 0 then redis.call('DEL', s) return 0 end
  local sum = redis.call('GET', s)
  if sum then return tonumber(sum) end
  -- The running total was lost (evicted): count it again from the window's entries.
  local total = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do total = total + amount_of(m) end
  local ttl = redis.call('PTTL', z)
  if ttl > 0 then redis.call('SET', s, total, 'PX', ttl) else redis.call('SET', s, total) end
  return total
end
local function used(kind, key, sum)
  if kind == 'window' then return window_used(key, sum) end
  if kind == 'lease' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    return redis.call('ZCARD', key)
  end
  return tonumber(redis.call('GET', key) or '0')
end
local function retry(kind, key, in_use, limit, amount, window)
  if kind == 'window' then
    local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    local freed = 0
    for i = 1, #entries, 2 do
      freed = freed + amount_of(entries[i])
      if in_use - freed + amount <= limit then return tonumber(entries[i + 1]) - now end
    end
  elseif kind == 'lease' then
    local e = redis.call('ZRANGE', key, in_use - limit, in_use - limit, 'WITHSCORES')
    if e[2] then return tonumber(e[2]) - now end
  end
  return window
end
local function reset(kind, key, window)
  if kind == 'lease' then return 0 end
  if kind ~= 'window' then return window end
  local e = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if e[2] then return tonumber(e[2]) - now end
  return 0
end
local function charge(kind, key, sum, amount, window)
  if kind == 'window' then
    redis.call('ZADD', key, now + window, id .. ':' .. amount)
    redis.call('INCRBY', sum, amount)
    redis.call('PEXPIRE', key, window)
    redis.call('PEXPIRE', sum, window)
  elseif kind == 'lease' then
    redis.call('ZADD', key, now + window, id)
    redis.call('PEXPIRE', key, window)
  else
    redis.call('INCRBY', key, amount)
    redis.call('PEXPIRE', key, window + grace)
  end
end
local before, fits, ok = {}, {}, true
for i = 1, n do
  local b = 3 + (i - 1) * 4
  before[i] = used(ARGV[b + 1], KEYS[2 * i - 1], KEYS[2 * i])
  fits[i] = before[i] + tonumber(ARGV[b + 3]) <= tonumber(ARGV[b + 2])
  ok = ok and fits[i]
end
local out = {ok and 1 or 0}
for i = 1, n do
  local b = 3 + (i - 1) * 4
  local kind, limit, amount, window = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local key, u, r = KEYS[2 * i - 1], before[i], 0
  if ok then
    charge(kind, key, KEYS[2 * i], amount, window)
    u = u + amount
  elseif not fits[i] then
    r = retry(kind, key, u, limit, amount, window)
  end
  table.insert(out, u)
  table.insert(out, r)
  table.insert(out, reset(kind, key, window))
end
return out
"""
)

# KEYS[1]: the lease ZSET. ARGV: now_ms, admission id, ttl_ms.
RENEW = (
    _CLOCK
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)

# KEYS: two per adjustment, the lease ZSET, the usage hash. ARGV: now_ms, admission id, count, then
# kind, reserved, actual per adjustment, then release (1/0), model ('' = no record), ttl_s, six counts.
SETTLE = (
    _CLOCK
    + """
local n = tonumber(ARGV[3])
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local kind, reserved, actual = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local key = KEYS[2 * i - 1]
  if kind == 'window' then
    local score = redis.call('ZSCORE', key, id .. ':' .. reserved)
    if score and tonumber(score) > now then
      redis.call('ZREM', key, id .. ':' .. reserved)
      redis.call('ZADD', key, score, id .. ':' .. actual)
      redis.call('INCRBY', KEYS[2 * i], actual - reserved)
    end
  elseif redis.call('EXISTS', key) == 1 then
    redis.call('INCRBY', key, actual - reserved)
  end
end
local p = 3 + n * 3
if ARGV[p + 1] == '1' then redis.call('ZREM', KEYS[2 * n + 1], id) end
if ARGV[p + 2] ~= '' then
  local names = {'requests', 'promptTokens', 'outputTokens', 'thoughtsTokens', 'cachedTokens', 'microUsd'}
  for j = 1, 6 do redis.call('HINCRBY', KEYS[2 * n + 2], ARGV[p + 2] .. '|' .. names[j], ARGV[p + 3 + j]) end
  redis.call('EXPIRE', KEYS[2 * n + 2], ARGV[p + 3])
end
return 1
"""
)
