"""The limits store in DynamoDB: one item per API key holding its counters, written by a conditional put.

The table's schema is in lib/limits/dynamodb_table.py; `python -m lib.limits.dynamodb create-table TABLE`
makes it (endpoint from boto3's AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lib.limits import state
from lib.limits.base import Adjustment, Check, StoreUnavailable, UsageRecord, Verdict
from lib.limits.dynamodb_table import (
    client,
    main,
    state_item,
    state_key,
    usage_query,
    usage_row,
    usage_update,
)
from lib.limits.memory import clock_ms

# A change to one key's state: returns (its result, whether the state must be written).
Step = Callable[[state.KeyState], tuple[Any, bool]]
MAX_ATTEMPTS = 10
BACKOFF_S = 0.002


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
        found = await self._call("get_item", Key=state_key(key_id), ConsistentRead=True)
        self._keep(key_id, found.get("Item"))

    async def _put(self, key_id: str, keystate: state.KeyState, version: int) -> bool:
        """Write the key's item if nobody else did since `version` (0: no item); False if someone did."""
        text = json.dumps(keystate, separators=(",", ":"))
        item = state_item(key_id, text, version + 1)
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
        await self._call("update_item", **usage_update(record))

    async def _day_rows(self, key_id: str | None, day: str) -> list[UsageRecord]:
        rows, start = [], {}
        while True:
            page = await self._call("query", **usage_query(key_id, day), **start)
            rows += [usage_row(item, day) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return rows
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    async def usage(self, key_id: str | None, days: Sequence[str]) -> list[UsageRecord]:
        rows = [r for day in days for r in await self._day_rows(key_id, day)]
        return sorted(rows, key=lambda r: (r.day, r.key_id, r.model))

    async def close(self) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
