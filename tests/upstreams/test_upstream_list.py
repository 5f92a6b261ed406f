"""STREAMGATE_UPSTREAMS read and checked, and the list's health: passed over after 5 failures, asked again after 30 s."""

from __future__ import annotations

import asyncio
import json

import pytest

import lib.process
from lib.config import ConfigError, Settings, UpstreamSpec
from lib.errors import GatewayError
from lib.instance import make_upstreams
from lib.routes import normalize_path
from lib.upstreams.base import UpstreamCall
from lib.upstreams.failover import FAILURES_TO_SKIP, SKIP_S, UpstreamList
from tests.support.fakes import FakeUpstream, Scenario

GEMINI = {"kind": "gemini", "apiKeyEnv": "K"}


def listed(*entries: object) -> tuple[UpstreamSpec, ...]:
    return Settings.from_env(
        {"STREAMGATE_UPSTREAMS": json.dumps(list(entries))}
    ).upstreams


def test_entries_keep_their_order_names_and_settings():
    specs = listed(
        {"kind": "vertex", "project": "p", "location": "europe-west4"},
        {"kind": "gemini", "name": "paid", "apiKeySecret": "projects/p/secrets/k"},
    )
    assert specs == (
        UpstreamSpec("vertex", "vertex-1", "p", "europe-west4"),
        UpstreamSpec("gemini", "paid", api_key_secret="projects/p/secrets/k"),
    )
    assert specs[0].base == "https://europe-west4-aiplatform.googleapis.com"
    assert specs[1].base == "https://generativelanguage.googleapis.com"


def test_the_list_takes_precedence_over_the_single_upstream():
    env = {"STREAMGATE_UPSTREAM": "echo", "STREAMGATE_UPSTREAMS": json.dumps([GEMINI])}
    assert [s.kind for s in Settings.from_env(env).upstreams] == ["gemini"]


@pytest.mark.parametrize(
    ("env", "spec"),
    [
        ({}, UpstreamSpec("echo", "echo")),
        (
            {
                "STREAMGATE_UPSTREAM": "vertex",
                "GOOGLE_CLOUD_PROJECT": "p",
                "STREAMGATE_VERTEX_LOCATION": "us",
            },
            UpstreamSpec("vertex", "vertex", "p", "us"),
        ),
        (
            {"STREAMGATE_UPSTREAM": "gemini", "STREAMGATE_GEMINI_BASE_URL": "http://g"},
            UpstreamSpec(
                "gemini",
                "gemini",
                base_url="http://g",
                api_key_env="STREAMGATE_GEMINI_API_KEY",
            ),
        ),
    ],
    ids=["echo", "vertex", "gemini"],
)
def test_the_single_upstream_variables_are_a_list_of_one(env, spec):
    assert Settings.from_env(env).upstreams == (spec,)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{", "must be a JSON list"),
        ("{}", "non-empty JSON list"),
        ("[]", "non-empty JSON list"),
        ('["vertex"]', "[0] must be an object"),
        ('[{"kind": "echo"}]', "kind must be one of vertex, gemini"),
        ('[{"kind": "gemini", "apiKey": "AIza..."}]', "never put a key in the list"),
        ('[{"kind": "gemini", "apikeyenv": "K"}]', "unknown field 'apikeyenv'"),
        ('[{"kind": "vertex"}]', "needs its project"),
        ('[{"kind": "vertex", "project": 7}]', "every field is a string"),
        ('[{"kind": "vertex", "project": "p", "apiKeyEnv": "K"}]', "not a key"),
        ('[{"kind": "gemini"}]', "needs apiKeyEnv or apiKeySecret"),
        (
            '[{"kind": "gemini", "apiKeyEnv": "K", "apiKeySecret": "projects/p/secrets/s"}]',
            "needs apiKeyEnv or apiKeySecret",
        ),
        ('[{"kind": "gemini", "apiKeyEnv": "K", "location": "us"}]', "has no location"),
        (
            json.dumps([{**GEMINI, "name": "a"}, {**GEMINI, "name": "a"}]),
            "its own name",
        ),
    ],
)
def test_a_bad_list_is_refused_with_the_reason(raw, reason):
    with pytest.raises(ConfigError, match="STREAMGATE_UPSTREAMS") as caught:
        Settings.from_env({"STREAMGATE_UPSTREAMS": raw})
    assert reason in str(caught.value)
    assert "AIza" not in str(caught.value)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fakes(monkeypatch):
    # The upstream connection pool is a per-process singleton bound to its event loop.
    monkeypatch.setattr(lib.process, "_made", {})
    flaky, steady = FakeUpstream().start(), FakeUpstream().start()
    yield flaky, steady
    flaky.stop()
    steady.stop()


def gemini_list(
    flaky: FakeUpstream, steady: FakeUpstream, clock: Clock
) -> UpstreamList:
    """Real Gemini upstreams (one attempt each, as in a list) over the fakes, on `clock`."""
    entries = [
        {**GEMINI, "name": "flaky", "baseUrl": flaky.url},
        {**GEMINI, "name": "steady", "baseUrl": steady.url},
    ]
    settings = Settings.from_env({"STREAMGATE_UPSTREAMS": json.dumps(entries)})
    built = make_upstreams(settings, {"K": "AIzaSy-test-key-FFFFFFFFFFFFFFFFFFFFFFFF"})
    return UpstreamList(built.members, clock=clock)


async def call(upstreams: UpstreamList, model: str) -> list[str]:
    target = normalize_path(f"/v1beta/models/{model}:streamGenerateContent")
    tried: list[str] = []
    opened = await upstreams.start(UpstreamCall(target, model, {}, "sse"), tried)
    await opened.stream.close()
    return tried


def test_a_passed_over_upstream_is_asked_again_after_30_s(fakes):
    flaky, steady = fakes
    clock = Clock()
    upstreams = gemini_list(flaky, steady, clock)
    down = flaky.script("m", Scenario(status=503))
    steady.script("m")

    async def run() -> None:
        for _ in range(FAILURES_TO_SKIP):
            assert await call(upstreams, "m") == ["flaky", "steady"]
        assert await call(upstreams, "m") == ["steady"]
        clock.now += SKIP_S - 0.1
        assert await call(upstreams, "m") == ["steady"]
        clock.now += 0.2
        # Asked again; one more failure passes it over for another 30 s.
        assert await call(upstreams, "m") == ["flaky", "steady"]
        assert await call(upstreams, "m") == ["steady"]
        clock.now += SKIP_S + 0.1
        down.status = 200
        assert await call(upstreams, "m") == ["flaky"]
        # Recovered: it takes five failures in a row again to pass it over.
        down.status = 503
        for _ in range(FAILURES_TO_SKIP - 1):
            await call(upstreams, "m")
        assert await call(upstreams, "m") == ["flaky", "steady"]

    asyncio.run(run())
    assert down.calls == FAILURES_TO_SKIP + 1 + 1 + FAILURES_TO_SKIP


def test_when_every_upstream_is_passed_over_they_are_asked_all_the_same(fakes):
    flaky, steady = fakes
    upstreams = gemini_list(flaky, steady, Clock())
    flaky.script("down", Scenario(status=503))
    second = steady.script("down", Scenario(status=500))

    async def run() -> None:
        for _ in range(FAILURES_TO_SKIP):
            with pytest.raises(GatewayError):
                await call(upstreams, "down")
        second.status = 200
        assert await call(upstreams, "down") == ["flaky", "steady"]

    asyncio.run(run())


def test_after_30_s_one_call_asks_again_while_the_others_pass_it_over(fakes):
    flaky, steady = fakes
    clock = Clock()
    upstreams = gemini_list(flaky, steady, clock)
    down = flaky.script("probe", Scenario(status=503))
    steady.script("probe")

    async def run() -> None:
        for _ in range(FAILURES_TO_SKIP):
            await call(upstreams, "probe")
        clock.now += SKIP_S + 0.1
        down.status, down.first_byte_delay_s = 200, 0.5
        probe = asyncio.ensure_future(call(upstreams, "probe"))
        await asyncio.sleep(0.2)  # the probe waits for flaky's first byte
        assert await call(upstreams, "probe") == ["steady"]
        assert await probe == ["flaky"]
        assert await call(upstreams, "probe") == ["flaky"]  # answered: healthy again

    asyncio.run(run())
    assert down.calls == FAILURES_TO_SKIP + 2
