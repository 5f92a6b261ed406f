"""The DynamoDB limits table: its key schema and item shapes, and `create-table` (the store is dynamodb.py).

Table: partition key `pk` (S), sort key `sk` (S), TTL attribute `ttl` (N, epoch seconds), on demand.
- A key's counters: `pk = "key#<id>"`, `sk = "limits"`, `state` (S: the JSON of lib/limits/state.py),
  `version` (N: +1 per write, the condition of the next one).
- A usage row: `pk = "usage#<YYYY-MM-DD>"`, `sk = "<id>#<model>"`, `keyId`, `day`, `model` (S) and the
  counts `requests`, `promptTokens`, `outputTokens`, `thoughtsTokens`, `cachedTokens`, `microUsd` (N).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from lib.limits.base import STORED_COUNTS, USAGE_TTL_S, UsageRecord
from lib.process import shared

STATE_SK = "limits"
# A key's item outlives its longest window (a month) plus the counters' grace.
STATE_TTL_S = 40 * 86_400


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


def state_key(key_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"key#{key_id}"}, "sk": {"S": STATE_SK}}


def state_item(key_id: str, text: str, version: int) -> dict[str, Any]:
    return {
        **state_key(key_id),
        "state": {"S": text},
        "version": {"N": str(version)},
        "ttl": {"N": str(int(time.time()) + STATE_TTL_S)},
    }


def usage_update(record: UsageRecord) -> dict[str, Any]:
    """The UpdateItem arguments that add `record` to its row (ADD is atomic: no read, no condition)."""
    names = {
        f"#{f}": f for f in ("keyId", "day", "model", "ttl", *STORED_COUNTS.values())
    }
    values = {f":{STORED_COUNTS[n]}": {"N": str(v)} for n, v in record.counts().items()}
    values.update(
        {
            ":keyId": {"S": record.key_id},
            ":day": {"S": record.day},
            ":model": {"S": record.model},
            ":ttl": {"N": str(int(time.time()) + USAGE_TTL_S)},
        }
    )
    adds = ", ".join(f"#{f} :{f}" for f in STORED_COUNTS.values())
    return {
        "Key": {
            "pk": {"S": f"usage#{record.day}"},
            "sk": {"S": f"{record.key_id}#{record.model}"},
        },
        "UpdateExpression": f"ADD {adds} SET #keyId = :keyId, #day = :day, "
        "#model = :model, #ttl = :ttl",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def usage_query(key_id: str | None, day: str) -> dict[str, Any]:
    values: dict[str, Any] = {":pk": {"S": f"usage#{day}"}}
    condition = "pk = :pk"
    if key_id:
        condition += " AND begins_with(sk, :id)"
        values[":id"] = {"S": f"{key_id}#"}
    return {"KeyConditionExpression": condition, "ExpressionAttributeValues": values}


def usage_row(item: dict[str, Any], day: str) -> UsageRecord:
    counts = {n: int(item.get(f, {"N": "0"})["N"]) for n, f in STORED_COUNTS.items()}
    return UsageRecord(item["keyId"]["S"], day, item["model"]["S"], **counts)


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
