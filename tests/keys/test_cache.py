"""KeyCache: TTL refresh, one fetch at a time, bounded grace, fail closed, malformed documents rejected whole."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from lib.errors import ServiceUnavailable
from lib.keys.base import KeyStoreError
from lib.keys.cache import KeyCache
from lib.keys.document import KeySet, hash_key

OLD, NEW = "sg_old-key-for-the-keystore-tests", "sg_new-key-for-the-keystore-tests"


def doc(*keys: dict) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


GOOD = doc({"id": "old", "sha256": hash_key(OLD)})
ROTATED = doc(
    {"id": "old", "sha256": hash_key(OLD), "disabled": True},
    {"id": "new", "sha256": hash_key(NEW)},
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """The key document as a store holds it: bytes, or an error to raise; counts reads."""

    def __init__(self, content: bytes | Exception) -> None:
        self.content = content
        self.reads = 0

    def read(self) -> bytes:
        self.reads += 1
        if isinstance(self.content, Exception):
            raise self.content
        return self.content


@pytest.fixture
def key_log() -> Iterator[list[logging.LogRecord]]:
    """Records from the `streamgate.keys` logger (which may not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("streamgate.keys")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def current(keys: KeyCache) -> KeySet:
    """One request's look at the cache, on an event loop of its own."""
    return asyncio.run(keys.current())


def ids(store: KeyCache) -> list[str]:
    return [k.id for k in current(store).keys if not k.disabled]


def test_a_new_key_works_and_a_revoked_one_stops_after_the_ttl():
    clock, store = Clock(), Store(GOOD)
    keys = KeyCache(store.read, 60, clock=clock)
    assert current(keys).find(OLD) is not None
    store.content = ROTATED
    clock.now += 59.9
    assert current(keys).find(OLD) is not None and current(keys).find(NEW) is None
    assert store.reads == 1  # cached within the TTL
    clock.now += 0.2
    assert current(keys).find(OLD) is None and current(keys).find(NEW) is not None
    assert store.reads == 2


def test_nothing_ever_loaded_fails_closed_with_503(key_log):
    keys = KeyCache(Store(KeyStoreError("cannot reach Secret Manager")).read, 60)
    with pytest.raises(ServiceUnavailable) as caught:
        current(keys)
    assert caught.value.to_dict()["error"] == {
        "code": 503,
        "message": "API keys are unavailable; the gateway is refusing requests.",
        "status": "UNAVAILABLE",
    }
    assert [r.levelname for r in key_log] == ["WARNING"]
    assert "cannot reach Secret Manager" in key_log[0].getMessage()
    assert "failing closed" in key_log[0].getMessage()


def test_a_failed_store_is_asked_again_at_most_once_a_second_when_empty():
    clock, store = Clock(), Store(KeyStoreError("down"))
    keys = KeyCache(store.read, 60, clock=clock)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            current(keys)
    assert store.reads == 1
    store.content = GOOD
    clock.now += 1.0
    assert ids(keys) == ["old"]


def test_after_a_good_load_failures_serve_the_last_set_for_10_ttl_then_503(key_log):
    clock, store = Clock(), Store(GOOD)
    keys = KeyCache(store.read, 5, clock=clock)
    current(keys)
    store.content = KeyStoreError(
        "cannot reach Secrets Manager (EndpointConnectionError)"
    )
    clock.now += 50  # 10 x TTL since the last good load
    assert ids(keys) == ["old"]
    assert "keeping the last good set" in key_log[-1].getMessage()
    assert key_log[-1].levelname == "WARNING"
    clock.now += 0.1
    with pytest.raises(ServiceUnavailable, match="stale"):
        current(keys)
    store.content = GOOD
    clock.now += 1
    assert ids(keys) == ["old"]  # recovers as soon as the store answers


@pytest.mark.parametrize(("ttl", "grace"), [(60, 600), (5, 50), (1, 10), (0.1, 10)])
def test_grace_is_ten_ttls_and_at_least_ten_seconds(ttl, grace):
    clock, store = Clock(), Store(GOOD)
    keys = KeyCache(store.read, ttl, clock=clock)
    current(keys)
    store.content = KeyStoreError("down")
    clock.now += grace
    assert ids(keys) == ["old"]
    clock.now += 1.01
    with pytest.raises(ServiceUnavailable):
        current(keys)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"key": []}', 'expected an object with a "keys" list'),
        (doc({"sha256": "ab" * 32}), "keys[0].id must be"),
        (doc({"id": "x"}), "keys[0].sha256 (x) is not 64 hex characters"),
        (
            doc({"id": "x", "sha256": "ab" * 31}),
            "keys[0].sha256 (x) is not 64 hex characters",
        ),
        (
            doc({"id": "x", "sha256": "zz" * 32}),
            "keys[0].sha256 (x) is not 64 hex characters",
        ),
        (
            doc({"id": "x", "sha256": "ab" * 32, "models": "gemini-*"}),
            "keys[0].models (x)",
        ),
        (
            doc({"id": "x", "sha256": "ab" * 32, "disabled": "yes"}),
            "keys[0].disabled (x)",
        ),
        (
            doc({"id": "x", "sha256": "ab" * 32}, {"id": "x", "sha256": "cd" * 32}),
            "duplicate key ids: x",
        ),
    ],
)
def test_a_malformed_document_is_rejected_whole_and_the_last_good_set_stays(
    key_log, content, reason
):
    clock = Clock()
    good = doc({"id": "old", "sha256": hash_key(OLD)}, {"id": "y", "sha256": "ef" * 32})
    store = Store(good)
    keys = KeyCache(store.read, 1, clock=clock)
    current(keys)
    store.content = content
    clock.now += 1
    assert ids(keys) == [
        "old",
        "y",
    ]  # not even the well-formed entries of the bad document
    assert reason in key_log[-1].getMessage()
    assert "KeyDocumentError" in key_log[-1].getMessage()
    assert OLD not in key_log[-1].getMessage()


def test_a_malformed_document_at_start_fails_closed():
    keys = KeyCache(Store(b"[]").read, 60)
    with pytest.raises(ServiceUnavailable):
        current(keys)


def test_requests_during_a_refresh_share_one_fetch():
    clock = Clock()
    entered, release = threading.Event(), threading.Event()
    reads = []

    def slow_read() -> bytes:
        reads.append(1)
        if len(reads) > 1:
            entered.set()
            release.wait(10)
        return ROTATED if len(reads) > 1 else GOOD

    async def scenario() -> list[bool]:
        keys = KeyCache(slow_read, 1, clock=clock)
        await keys.current()
        clock.now += 1
        refresher = asyncio.create_task(keys.current())
        assert await asyncio.to_thread(entered.wait, 10)
        # While one request refreshes, the others are served the current set at once.
        during = [(await keys.current()).find(OLD) is not None for _ in range(20)]
        release.set()
        await refresher
        assert (await keys.current()).find(NEW) is not None
        return during

    assert asyncio.run(scenario()) == [True] * 20
    assert len(reads) == 2


def test_the_first_load_is_shared_by_concurrent_requests():
    entered, release = threading.Event(), threading.Event()
    reads = []

    def slow_read() -> bytes:
        reads.append(1)
        entered.set()
        release.wait(10)
        return GOOD

    async def scenario() -> list[bool]:
        keys = KeyCache(slow_read, 60)
        requests = [asyncio.create_task(keys.current()) for _ in range(8)]
        assert await asyncio.to_thread(entered.wait, 10)
        release.set()
        return [
            keyset.find(OLD) is not None for keyset in await asyncio.gather(*requests)
        ]

    assert asyncio.run(scenario()) == [True] * 8 and len(reads) == 1
