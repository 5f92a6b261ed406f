"""Key entries with `limits` and `expiresAt`: parsed, validated with the entry named, written back the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lib.keys.document import KeyDocumentError, parse_key_document
from lib.limits.policy import Limits

SHA = "ab" * 32
ENTRY = {
    "id": "team-a",
    "sha256": SHA,
    "models": ["gemini-2.5-*"],
    "expiresAt": "2027-01-01T00:00:00Z",
    "limits": {
        "requestsPerMinute": 60,
        "tokensPerMinute": 200000,
        "concurrentStreams": 4,
        "tokensPerDay": 2000000,
        "tokensPerMonth": 40000000,
        "usdPerDay": 5.0,
        "usdPerMonth": 100.0,
    },
    "disabled": False,
}


def doc(*entries: dict) -> str:
    return json.dumps({"keys": list(entries)})


def test_limits_and_expiry_are_parsed():
    (key,) = parse_key_document(doc(ENTRY)).keys
    assert key.limits.requests_per_minute == 60
    assert key.limits.micro_usd_per_month == 100_000_000
    assert key.expires_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_document_round_trips_exactly():
    keyset = parse_key_document(doc(ENTRY, {"id": "plain", "sha256": SHA}))
    assert json.loads(keyset.to_json()) == {
        "keys": [ENTRY, {"id": "plain", "sha256": SHA, "disabled": False}]
    }
    assert parse_key_document(keyset.to_json()) == keyset


def test_a_key_without_them_has_no_limits_and_never_expires():
    (key,) = parse_key_document(doc({"id": "a", "sha256": SHA})).keys
    assert key.limits == Limits() and key.limits.empty
    assert key.expires_at is None
    assert not key.expired(datetime(2999, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), False),
        (datetime(2027, 1, 1, tzinfo=UTC), True),
        (datetime(2027, 6, 1, tzinfo=UTC), True),
    ],
)
def test_a_key_expires_at_its_expiry(now, expired):
    (key,) = parse_key_document(doc(ENTRY)).keys
    assert key.expired(now) is expired


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"limits": 5}, "keys[1].limits (bad) must be an object"),
        ({"limits": {"rpm": 1}}, "keys[1].limits (bad) has unknown fields: rpm"),
        (
            {"limits": {"requestsPerMinute": -1}},
            "keys[1].limits.requestsPerMinute (bad) must be a positive integer",
        ),
        (
            {"limits": {"usdPerDay": "5"}},
            "keys[1].limits.usdPerDay (bad) must be a positive number of US dollars",
        ),
        (
            {"expiresAt": "2027-01-01T00:00:00"},
            "keys[1].expiresAt (bad) needs a UTC offset",
        ),
        ({"expiresAt": "soon"}, "keys[1].expiresAt (bad) is not an ISO-8601 time"),
        ({"expiresAt": 1767225600}, "keys[1].expiresAt (bad) must be an ISO-8601"),
    ],
)
def test_a_bad_value_names_the_entry_and_the_field(change, message):
    bad = {"id": "bad", "sha256": SHA, **change}
    with pytest.raises(KeyDocumentError) as info:
        parse_key_document(doc(ENTRY, bad))
    assert message in str(info.value)
