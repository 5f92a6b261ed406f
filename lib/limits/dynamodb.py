"""The limits store in DynamoDB: one item per API key holding its counters, written by a conditional put.

Table: partition key `pk` (S), sort key `sk` (S), TTL attribute `ttl`. A key's counters are the item
`pk = "key#<id>"`, `sk = "limits"` with `state` (S, the JSON of lib/limits/state.py) and `version` (N).
Usage rows are `pk = "usage#<YYYY-MM-DD>"`, `sk = "<id>#<model>"` with `keyId`, `day`, `model`, and the
counts `requests`, `promptTokens`, `outputTokens`, `thoughtsTokens`, `cachedTokens`, `microUsd` (N).
`python -m lib.limits.dynamodb create-table TABLE` makes the table (endpoint from AWS_ENDPOINT_URL*).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from lib.limits import state
from lib.limits.base import Adjustment, Check, StoreUnavailable, UsageRecord, Verdict
from lib.limits.memory import clock_ms
from lib.process import shared

# A change to one key's state: returns (its result, whether the state must be written).
Step = Callable[[state.KeyState], tuple[Any, bool]]
STATE_SK = "limits"
# A key's item outlives its longest window (a month) plus the counters' grace.
STATE_TTL_S = 40 * 86_400
USAGE_TTL_S = 400 * 86_400
MAX_ATTEMPTS = 10
BACKOFF_S = 0.002
_COUNTS = {
    "requests": "requests",
    "prompt_tokens": "promptTokens",
    "output_tokens": "outputTokens",
    "thoughts_tokens": "thoughtsTokens",
    "cached_tokens": "cachedTokens",
    "micro_usd": "microUsd",
}


def _make_client(timeout_s: float) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    # A Session per client: boto3's default session is not thread-safe.
    return boto3.session.Session().client("dynamodb", config=config)


def client(timeout_s: float = 0.5) -> Any:
    """The process's DynamoDB client (region, endpoint and credentials from the environment)."""
    return shared(f"dynamodb:{timeout_s}", lambda: _make_client(timeout_s))


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class ConditionFailed(Exception):
    """Another writer changed the key's item first; `item` is the item as it is now."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class DynamoStore:
    """`dynamodb://TABLE`: optimistic concurrency on one item per key; usage rows updated with ADD.

    Within an instance, the changes queued for a key while its put is in flight go out together in the
    next put (a group commit), so an instance never races itself and a burst costs few writes.
    """

    def __init__(self, table: str, *, timeout_s: float = 0.5) -> None:
        self.table = table
        self.timeout_s = timeout_s
        # This instance's last copy of each key's item: (state JSON, version).
        self._copies: dict[str, tuple[str, int]] = {}
        # Steps waiting for the key's next put, and the task writing them (one per key at a time).
        self._pending: dict[str, list[tuple[Step, asyncio.Future[Any]]]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    def _call_sync(self, method: str, **kwargs: Any) -> dict[str, Any]:
        # In a worker thread: boto3's import, its client and its I/O never block the event loop.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            api = getattr(client(self.timeout_s), method)
            return api(TableName=self.table, **kwargs)
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailed(exc.response.get("Item")) from None
            raise StoreUnavailable(f"dynamodb: {_error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"dynamodb: {type(exc).__name__}") from exc

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self._call_sync, method, **kwargs)

    def _keep(self, key_id: str, item: dict[str, Any] | None) -> None:
        if item:
            self._copies[key_id] = (item["state"]["S"], int(item["version"]["N"]))
        else:
            self._copies.pop(key_id, None)

    async def _read(self, key_id: str) -> None:
        key = {"pk": {"S": f"key#{key_id}"}, "sk": {"S": STATE_SK}}
        found = await self._call("get_item", Key=key, ConsistentRead=True)
        self._keep(key_id, found.get("Item"))

    async def _put(self, key_id: str, keystate: state.KeyState, version: int) -> bool:
        """Write the key's item if nobody else did since `version` (0: no item); False if someone did."""
        text = json.dumps(keystate, separators=(",", ":"))
        item = {
            "pk": {"S": f"key#{key_id}"},
            "sk": {"S": STATE_SK},
            "state": {"S": text},
            "version": {"N": str(version + 1)},
            "ttl": {"N": str(int(time.time()) + STATE_TTL_S)},
        }
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if version:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}},
            }
        try:
            await self._call(
                "put_item",
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except ConditionFailed as failed:
            # The failed put returns the current item: the retry needs no read.
            self._keep(key_id, failed.item)
            return False
        self._copies[key_id] = (text, version + 1)
        return True

    async def _change(self, key_id: str, step: Step) -> Any:
        """Queue `step` for the key's next write; steps queued while a write is in flight share one put."""
        done = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key_id, []).append((step, done))
        if key_id not in self._flushers:
            self._flushers[key_id] = asyncio.create_task(self._flush(key_id))
        return await done

    async def _flush(self, key_id: str) -> None:
        try:
            while batch := self._pending.pop(key_id, None):
                try:
                    results = await self._commit(key_id, [s for s, _ in batch])
                except StoreUnavailable as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                # A caller that was cancelled meanwhile is skipped (its lease expires by TTL).
                for (_, done), result in zip(batch, results):
                    if not done.done():
                        done.set_result(result)
        finally:
            del self._flushers[key_id]

    async def _commit(self, key_id: str, steps: list[Step]) -> list[Any]:
        """Run `steps` in order on the key's state and put it back; results that write nothing are re-read."""
        current = False
        for attempt in range(MAX_ATTEMPTS):
            text, version = self._copies.get(key_id, ("", 0))
            keystate = json.loads(text) if text else state.new_state()
            outcomes = [step(keystate) for step in steps]
            results = [result for result, _ in outcomes]
            if not any(write for _, write in outcomes):
                if current:
                    return results
                await self._read(key_id)
            elif await self._put(key_id, keystate, version):
                return results
            else:
                # Another instance wrote first: back off (jittered) so the two stop colliding.
                await asyncio.sleep(random.uniform(0, BACKOFF_S * 2**attempt))
            current = True
        raise StoreUnavailable("dynamodb: too many concurrent writers on one key")

    async def admit(
        self,
        key_id: str,
        admission_id: str,
        checks: Sequence[Check],
        now_ms: int | None,
    ) -> Verdict:
        def step(keystate: state.KeyState) -> tuple[Verdict, bool]:
            now = clock_ms() if now_ms is None else now_ms
            verdict = state.admit(keystate, checks, admission_id, now)
            return verdict, verdict.admitted

        return await self._change(key_id, step)

    async def renew(
        self, key_id: str, name: str, admission_id: str, ttl_ms: int, now_ms: int | None
    ) -> bool:
        def step(keystate: state.KeyState) -> tuple[bool, bool]:
            now = clock_ms() if now_ms is None else now_ms
            found = state.renew(keystate, name, admission_id, ttl_ms, now)
            return found, found

        return await self._change(key_id, step)

    async def settle(
        self,
        key_id: str,
        admission_id: str,
        adjustments: Sequence[Adjustment],
        release: str | None,
        record: UsageRecord | None,
        now_ms: int | None,
    ) -> None:
        def step(keystate: state.KeyState) -> tuple[None, bool]:
            now = clock_ms() if now_ms is None else now_ms
            state.settle(keystate, admission_id, adjustments, release, now)
            return None, True

        steps = []
        if adjustments or release:
            steps.append(self._change(key_id, step))
        if record is not None:
            steps.append(self._record(record))
        await asyncio.gather(*steps)

    async def _record(self, record: UsageRecord) -> None:
        counts = record.counts()
        names = {
            f"#{f}": f for f in ("keyId", "day", "model", "ttl", *_COUNTS.values())
        }
        values = {f":{_COUNTS[n]}": {"N": str(v)} for n, v in counts.items()}
        values.update(
            {
                ":keyId": {"S": record.key_id},
                ":day": {"S": record.day},
                ":model": {"S": record.model},
                ":ttl": {"N": str(int(time.time()) + USAGE_TTL_S)},
            }
        )
        adds = ", ".join(f"#{f} :{f}" for f in _COUNTS.values())
        await self._call(
            "update_item",
            Key={
                "pk": {"S": f"usage#{record.day}"},
                "sk": {"S": f"{record.key_id}#{record.model}"},
            },
            UpdateExpression=f"ADD {adds} SET #keyId = :keyId, #day = :day, "
            "#model = :model, #ttl = :ttl",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    async def _day_rows(self, key_id: str | None, day: str) -> list[UsageRecord]:
        values: dict[str, Any] = {":pk": {"S": f"usage#{day}"}}
        condition = "pk = :pk"
        if key_id:
            condition += " AND begins_with(sk, :id)"
            values[":id"] = {"S": f"{key_id}#"}
        rows, start = [], {}
        while True:
            page = await self._call(
                "query",
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                **start,
            )
            for item in page.get("Items", []):
                counts = {
                    n: int(item.get(f, {"N": "0"})["N"]) for n, f in _COUNTS.items()
                }
                rows.append(
                    UsageRecord(item["keyId"]["S"], day, item["model"]["S"], **counts)
                )
            if "LastEvaluatedKey" not in page:
                return rows
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        rows = [r for day in days for r in await self._day_rows(key_id, day)]
        return sorted(rows, key=lambda r: (r.day, r.key_id, r.model))

    async def close(self) -> None:
        return None


def create_table(table: str, dynamodb: Any | None = None) -> None:
    """Create the table (on-demand, `pk`/`sk`, TTL on `ttl`) and wait until it is active."""
    dynamodb = dynamodb or _make_client(10.0)
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lib.limits.dynamodb create-table TABLE`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "create-table":
        print(
            "usage: python -m lib.limits.dynamodb create-table TABLE", file=sys.stderr
        )
        return 2
    create_table(args[1])
    print(f"created table {args[1]} (pk, sk; TTL on ttl)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
