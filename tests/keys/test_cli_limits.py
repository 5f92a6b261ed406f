"""`python -m lib.keys` with limits: new and set with the limit flags, list, and usage from a real Redis."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.keys import cli
from lib.limits.estimate import TokenEstimate
from lib.limits.limiter import Limiter
from lib.limits.policy import parse_limits
from lib.limits.redis import RedisStore
from tests.support.cloud import point_dynamodb_at_moto
from tests.support.env import SECRETS
from tests.support.paths import ROOT

USAGE_NAMES = [
    "id",
    "day",
    "model",
    "requests",
    "promptTokens",
    "outputTokens",
    "thoughtsTokens",
    "cachedTokens",
    "usd",
]


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), env=env or {}, out=out), out.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> str:
    return str(tmp_path / "keys.json")


def entry(keys: str, key_id: str) -> dict:
    return next(
        e for e in json.loads(Path(keys).read_text())["keys"] if e["id"] == key_id
    )


def new(keys: str, key_id: str, *flags: str) -> None:
    code, out = run("--keys", keys, "new", "--id", key_id, *flags)
    assert code == 0
    SECRETS.add(out.strip())


def test_new_takes_every_limit_flag_and_an_expiry(keys):
    new(
        keys,
        "team-a",
        *("--rpm", "60", "--tpm", "200000", "--concurrent", "4"),
        *("--tokens-per-day", "2000000", "--tokens-per-month", "40000000"),
        *("--usd-per-day", "5", "--usd-per-month", "100.5"),
        *("--expires", "2027-01-01T00:00:00Z"),
    )
    written = entry(keys, "team-a")
    assert written["expiresAt"] == "2027-01-01T00:00:00Z"
    assert written["limits"] == {
        "requestsPerMinute": 60,
        "tokensPerMinute": 200000,
        "concurrentStreams": 4,
        "tokensPerDay": 2000000,
        "tokensPerMonth": 40000000,
        "usdPerDay": 5.0,
        "usdPerMonth": 100.5,
    }


def test_set_changes_only_what_it_is_given_and_none_clears(keys, capsys):
    new(keys, "a", "--rpm", "60", "--tpm", "1000", "--expires", "2027-01-01")
    assert run("--keys", keys, "set", "--id", "a", "--rpm", "10") == (0, "")
    assert entry(keys, "a")["limits"] == {
        "requestsPerMinute": 10,
        "tokensPerMinute": 1000,
    }
    assert entry(keys, "a")["expiresAt"] == "2027-01-01T00:00:00Z"
    assert (
        run("--keys", keys, "set", "--id", "a", "--tpm", "none", "--expires", "none")[0]
        == 0
    )
    assert entry(keys, "a")["limits"] == {"requestsPerMinute": 10}
    assert "expiresAt" not in entry(keys, "a")
    assert run("--keys", keys, "set", "--id", "a", "--rpm", "none")[0] == 0
    assert "limits" not in entry(keys, "a")
    before = Path(keys).read_bytes()
    assert run("--keys", keys, "set", "--id", "a", "--rpm", "none")[0] == 0
    assert Path(keys).read_bytes() == before
    assert "Updated key 'a'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["set", "--id", "a"], 1, "nothing to change: give a limit flag or --expires"),
        (["set", "--id", "ghost", "--rpm", "5"], 1, "no key with id 'ghost'"),
        (
            ["set", "--id", "a", "--rpm", "0"],
            2,
            "--rpm: expected a positive integer or 'none'",
        ),
        (
            ["set", "--id", "a", "--usd-per-day", "x"],
            2,
            "expected a number of US dollars",
        ),
        (
            ["set", "--id", "a", "--expires", "2027-01-01T00:00"],
            2,
            "needs a UTC offset",
        ),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(keys, capsys, argv, code, message):
    new(keys, "a")
    before = Path(keys).read_bytes()
    with pytest.raises(SystemExit) if code == 2 else _nothing():
        assert run("--keys", keys, *argv)[0] == code
    assert Path(keys).read_bytes() == before
    assert message in capsys.readouterr().err


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_list_shows_limits_and_expiry_compactly(keys):
    new(keys, "team-a", "--rpm", "60", "--tpm", "200000", "--usd-per-day", "5")
    new(keys, "old", "--expires", "2020-01-01T00:00:00Z")
    new(keys, "plain")
    code, out = run("--keys", keys, "list")
    assert code == 0
    assert out.splitlines() == [
        "ID      STATE     MODELS  LIMITS                     EXPIRES",
        "team-a  active    *       rpm=60 tpm=200k usd-day=5  -",
        "old     expired   *       -                          2020-01-01T00:00:00Z",
        "plain   active    *       -                          -",
    ]


def _settle_usage(url: str, key_id: str) -> None:
    usage = {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 200,
        "thoughtsTokenCount": 5,
    }

    async def scenario() -> None:
        limiter = Limiter(RedisStore(url))
        for limits in ({"requestsPerMinute": 10}, {}):
            admission = await limiter.admit(
                key_id, parse_limits(limits), "gemini-2.5-flash", TokenEstimate(1, 1)
            )
            await limiter.settle(admission, usage)
        await limiter.close()

    asyncio.run(scenario())


def test_usage_json_reads_the_rows_back_from_redis(redis_server):
    key_id = f"u-{uuid.uuid4().hex[:8]}"
    _settle_usage(redis_server.url, key_id)
    code, out = run("--limits", redis_server.url, "usage", "--id", key_id, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [list(r) for r in rows] == [USAGE_NAMES]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert rows[0] == {
        "id": key_id,
        "day": today,
        "model": "gemini-2.5-flash",
        "requests": 2,
        "promptTokens": 2000,
        "outputTokens": 400,
        "thoughtsTokens": 10,
        "cachedTokens": 0,
        # $0.0008125 a request, rounded up to whole micro-USD when it is recorded.
        "usd": 0.001626,
    }
    code, every = run(
        "usage", "--json", "--days", "2", env={"STREAMGATE_LIMITS": redis_server.url}
    )
    assert code == 0 and rows[0] in json.loads(every)
    after = run("usage", "--limits", redis_server.url, "--id", key_id, "--json")
    assert after == (0, out)


def test_usage_without_json_is_a_table_with_a_total(redis_server):
    key_id = f"u-{uuid.uuid4().hex[:8]}"
    _settle_usage(redis_server.url, key_id)
    code, out = run("--limits", redis_server.url, "usage", "--id", key_id)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == [
        "DAY",
        "ID",
        "MODEL",
        "REQUESTS",
        "PROMPT",
        "OUTPUT",
        "THOUGHTS",
        "CACHED",
        "USD",
    ]
    assert lines[1].split()[1:] == [
        key_id,
        "gemini-2.5-flash",
        "2",
        "2000",
        "400",
        "10",
        "0",
        "0.001626",
    ]
    assert lines[2].split() == ["TOTAL", "2", "2000", "400", "10", "0", "0.001626"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["usage"], "usage is kept in the shared limits store: pass --limits URL"),
        (["--limits", "redis://127.0.0.1:1/0", "usage"], "limits store unreachable"),
        (["--limits", "mysql://x", "usage"], "STREAMGATE_LIMITS: use memory, redis://"),
    ],
)
def test_usage_needs_a_reachable_shared_store(capsys, argv, message):
    assert run(*argv) == (1, "")
    assert message in capsys.readouterr().err


def test_the_dynamodb_table_helper_makes_a_table_usage_can_read(monkeypatch):
    env = {**point_dynamodb_at_moto(monkeypatch), "PATH": os.environ["PATH"]}
    table = f"sg-limits-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [sys.executable, "-m", "lib.limits.dynamodb", "create-table", table],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert f"created table {table}" in made.stdout
    assert run("--limits", f"dynamodb://{table}", "usage", "--json") == (0, "[]\n")
