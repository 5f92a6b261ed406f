"""The limits store in Redis >= 6 (or Valkey, Memorystore, ElastiCache): one Lua script per step.

Every key of one API key carries the hash tag `{sg:<key id>}`, so each script touches one cluster slot
(ElastiCache Serverless and clustered Valkey refuse scripts across slots). Sliding windows are ZSETs
of `<admission id>:<amount>` scored by when the entry leaves the window, beside a running sum; leases are
a ZSET of admission ids scored by expiry; day and month budgets are counters named by their window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.limits.base import (
    Adjustment,
    Check,
    Outcome,
    StoreUnavailable,
    UsageRecord,
    Verdict,
)
from lib.limits.state import COUNTER_GRACE_MS

USAGE_TTL_S = 400 * 86_400
_FIELDS = {
    "requests": "requests",
    "prompt_tokens": "promptTokens",
    "output_tokens": "outputTokens",
    "thoughts_tokens": "thoughtsTokens",
    "cached_tokens": "cachedTokens",
    "micro_usd": "microUsd",
}

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
  if #gone > 0 then
    local freed = 0
    for _, m in ipairs(gone) do freed = freed + amount_of(m) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('DECRBY', s, freed)
  end
  local left = redis.call('ZRANGE', z, 0, -1)
  if #left == 0 then redis.call('DEL', s) return 0 end
  local sum = redis.call('GET', s)
  if sum then return tonumber(sum) end
  local total = 0
  for _, m in ipairs(left) do total = total + amount_of(m) end
  redis.call('SET', s, total, 'PX', redis.call('PTTL', z))
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


def key_prefix(key_id: str) -> str:
    return "{sg:" + key_id + "}:"


def usage_index(day: str) -> str:
    """The set of key ids with usage on `day` (its own slot; written beside the settle script)."""
    return f"sg:usage:{day}"


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError)


class RedisStore:
    """`redis://` or `rediss://` URL (AUTH, TLS and database number from the URL); asyncio client."""

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._admit = self.client.register_script(ADMIT)
        self._renew = self.client.register_script(RENEW)
        self._settle = self.client.register_script(SETTLE)
        self._errors = _redis_errors()

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        prefix = key_prefix(key_id)
        keys: list[str] = []
        args: list[Any] = [now_ms or 0, admission_id, COUNTER_GRACE_MS]
        for check in checks:
            keys += [prefix + check.name, prefix + check.name + ":sum"]
            args += [check.kind, check.limit, check.amount, check.window_ms]
        out = await self._run(self._admit, keys, args)
        outcomes = tuple(
            Outcome(int(out[i]), int(out[i + 1]), int(out[i + 2]))
            for i in range(1, len(out), 3)
        )
        return Verdict(out[0] == 1, outcomes)

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool:
        keys = [key_prefix(key_id) + name]
        return (
            await self._run(self._renew, keys, [now_ms or 0, admission_id, ttl_ms]) == 1
        )

    async def settle(
        self,
        key_id: str,
        admission_id: str,
        adjustments: Sequence[Adjustment],
        release: str | None,
        record: UsageRecord | None,
        now_ms: int | None,
    ) -> None:
        prefix = key_prefix(key_id)
        keys: list[str] = []
        args: list[Any] = [now_ms or 0, admission_id, len(adjustments)]
        for adj in adjustments:
            keys += [prefix + adj.name, prefix + adj.name + ":sum"]
            args += [adj.kind, adj.reserved, adj.actual]
        day = record.day if record else ""
        keys += [prefix + (release or "streams"), f"{prefix}usage:{day}"]
        args += ["1" if release else "0", record.model if record else "", USAGE_TTL_S]
        args += list(record.counts().values()) if record else [0] * 6
        try:
            await self._settle_with_index(keys, args, key_id, day if record else None)
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc

    async def _settle_with_index(
        self, keys: list[str], args: list[Any], key_id: str, day: str | None
    ) -> None:
        """The settle script and the day's index in one round trip (a plain pipeline, two slots)."""
        import redis.exceptions

        for attempt in range(2):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
                if day is not None:
                    pipe.sadd(usage_index(day), key_id)
                    pipe.expire(usage_index(day), USAGE_TTL_S)
                try:
                    await pipe.execute()
                    return
                except redis.exceptions.NoScriptError:
                    # A new or restarted server: load the script once, then send again.
                    if attempt:
                        raise
                    await self.client.script_load(SETTLE)

    async def _day_rows(self, key_id: str | None, day: str) -> list[UsageRecord]:
        ids = (
            [key_id] if key_id else sorted(await self.client.smembers(usage_index(day)))
        )
        async with self.client.pipeline(transaction=False) as pipe:
            for kid in ids:
                pipe.hgetall(f"{key_prefix(kid)}usage:{day}")
            hashes = await pipe.execute()
        rows = []
        for kid, fields in zip(ids, hashes):
            models: dict[str, dict[str, int]] = {}
            for name, value in fields.items():
                model, _, field = name.rpartition("|")
                models.setdefault(model, {})[field] = int(value)
            for model, counts in sorted(models.items()):
                values = {attr: counts.get(f, 0) for attr, f in _FIELDS.items()}
                rows.append(UsageRecord(kid, day, model, **values))
        return rows

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        try:
            rows = [r for day in days for r in await self._day_rows(key_id, day)]
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
        return sorted(rows, key=lambda r: (r.day, r.key_id, r.model))

    async def close(self) -> None:
        await self.client.aclose()
