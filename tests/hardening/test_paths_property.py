"""Property tests of path handling: any path is refused (400/404) or yields clean identifiers, and the
upstream URL the gateway builds never leaves the configured host, project and location."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.config import Settings, UpstreamSpec
from lib.errors import BadRequest, GatewayError, NotFound
from lib.framing import ARRAY, SSE, UNARY
from lib.routes import (
    FAMILY_TARGETS,
    IDENTIFIER,
    ROUTES,
    VERBS,
    VERTEX_ONLY_VERBS,
    normalize_path,
)
from lib.upstreams.base import UpstreamCall
from lib.upstreams.google import GeminiUpstream, VertexUpstream
from tests.support.env import KEYS, PINNED_LOCATION, PINNED_PROJECT, SECRETS
from tests.support.hardening import error_problem, leaked, record, scaled
from tests.support.rawhttp import (
    http_request,
    send_raw,
    unroutable_target,
    valid_http_target,
)

PROMPT = "paths-prompt: a heron counts the reeds (never logged)"
SECRETS.update({PROMPT, "ya29.fake-"})  # our prompt; the fake's access tokens

# Fragments that have broken path handling somewhere: traversal, encodings, separators, look-alikes.
ATOMS = (
    "..",
    ".",
    "%2e%2e",
    "%2E",
    "%2F",
    "%2f",
    "%252F",
    "%5C",
    "\\",
    "%00",
    "%0A",
    "%0D%0A",
    "%09",
    "%20",
    ";",
    ";x=1",
    "?",
    "?alt=sse",
    "#",
    "%3F",
    "%23",
    "%3B",
    "%3A",
    ":",
    "@",
    "%40",
    "%",
    "%G1",
    "%e2%88%95",
    "%EF%BC%8F",
    "\uff0f",
    "\u2215",
    "\uff0e\uff0e",
    "\u0130",
    "\r\n",
    "\x00",
    " ",
    "a" * 129,
    "a" * 128,
    "gemini-2.5-flash",
    "google",
    "other-proj",
    "europe-west4",
    "models",
    "projects",
    "~",
    "*",
    "$",
    "'",
)
# Legal identifier characters, some percent-encoded: these reach URL building.
LEGAL = ("a", "Z", "9", ".", "_", "@", "-", "%2E", "%2e", "%40", "%2D", "%5F", "%41")
hostile_segment = st.lists(
    st.one_of(st.sampled_from(ATOMS), st.text(max_size=6)), min_size=0, max_size=3
).map("".join)
legal_segment = st.lists(st.sampled_from(LEGAL), min_size=1, max_size=12).map("".join)
ROUTABLE_VALUES = ("gemini-2.5-flash", "google", PINNED_PROJECT, "1234", "a.b@c-d_e")


@st.composite
def hostile_paths(draw: st.DrawFn) -> str:
    """A route with at most one hostile variable or verb, maybe a doubled slash; or plain noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=80))
    route = draw(st.sampled_from(ROUTES))
    bad = draw(st.sampled_from([None, None, "verb", *route.variables]))
    fine = st.one_of(legal_segment, st.sampled_from(ROUTABLE_VALUES))
    values = {n: draw(hostile_segment if n == bad else fine) for n in route.variables}
    parts = [values[s[1:-1]] if s.startswith("{") else s for s in route.segments]
    verb = draw(hostile_segment if bad == "verb" else st.sampled_from(list(VERBS)))
    path = "/" + "/".join(parts) + ":" + verb
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.sampled_from([i for i, c in enumerate(path) if c == "/"]))
        odd = draw(st.sampled_from(["//", "/./", "/../", "/%2F", "/%2e%2e/"]))
        path = path[:at] + odd + path[at + 1 :]
    return path


FAMILIES = st.sampled_from([None, *(frozenset({f}) for f in FAMILY_TARGETS)])
VERTEX = re.compile(
    rf"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}/"
    r"(publishers/[A-Za-z0-9._@-]{1,128}/models/[A-Za-z0-9._@-]{1,128}"
    rf"|endpoints/[A-Za-z0-9._@-]{{1,128}}):({'|'.join(VERBS)})"
)
GEMINI = re.compile(
    r"/v1beta/models/[A-Za-z0-9._@-]{1,128}:"
    rf"({'|'.join(v for v in VERBS if v not in VERTEX_ONLY_VERBS)})"
)
VERTEX_SPECS = (
    UpstreamSpec("vertex", "vertex", PINNED_PROJECT, PINNED_LOCATION),
    UpstreamSpec(
        "vertex", "vertex", PINNED_PROJECT, PINNED_LOCATION, "http://127.0.0.1:8999/"
    ),
)
GEMINI_SPEC = UpstreamSpec("gemini", "gemini", api_key_env="STREAMGATE_GEMINI_API_KEY")
DEFAULTS = Settings()
PROPERTY = settings(
    max_examples=scaled(400),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _pinned(url: str, base: str, pattern: re.Pattern[str]) -> bool:
    got, want = urlsplit(url), urlsplit(base)
    return (
        (got.scheme, got.hostname, got.port) == (want.scheme, want.hostname, want.port)
        and not got.query
        and not got.fragment
        and pattern.fullmatch(unquote(got.path)) is not None
        and not any(set(s) <= {"."} for s in unquote(got.path).split("/")[1:])
    )


def test_normalize_path_refuses_or_yields_identifiers():
    seen = {"examples": 0, "violations": 0}

    @PROPERTY
    @given(path=hostile_paths(), families=FAMILIES)
    def check(path: str, families: frozenset[str] | None) -> None:
        seen["examples"] += 1
        try:
            target = normalize_path(path, families)
        except (BadRequest, NotFound) as exc:
            assert exc.status_code in (400, 404)
            return
        values = [v for v in (target.publisher, target.model, target.endpoint) if v]
        ok = bool(target.model or target.endpoint) and all(
            IDENTIFIER.fullmatch(v) and set(v) != {"."} for v in values
        )
        seen["violations"] += not ok
        assert ok, (path, target)

    try:
        check()
    finally:
        record("paths", **seen)


def _call(path: str, framing: str) -> UpstreamCall | None:
    try:
        target = normalize_path(path)
    except GatewayError:
        return None
    model = DEFAULTS.model_aliases.get(target.model, target.model)
    return UpstreamCall(target, model, {}, framing)


def test_upstream_urls_never_leave_the_pinned_host_project_and_location():
    seen = {"examples": 0, "violations": 0}

    @PROPERTY
    @given(path=hostile_paths(), framing=st.sampled_from([SSE, ARRAY, UNARY]))
    def check(path: str, framing: str) -> None:
        seen["examples"] += 1
        call = _call(path, framing)
        if call is None:
            return
        for spec in VERTEX_SPECS:
            url = VertexUpstream(spec, DEFAULTS).url(call)
            ok = _pinned(url, spec.base, VERTEX)
            seen["violations"] += not ok
            assert ok, (path, url)
        try:
            url = GeminiUpstream(GEMINI_SPEC, DEFAULTS, "key").url(call)
        except BadRequest:
            return  # endpoints and other publishers are not on the Gemini API
        ok = _pinned(url, "https://generativelanguage.googleapis.com", GEMINI)
        seen["violations"] += not ok
        assert ok, (path, url)

    try:
        check()
    finally:
        record("paths", **seen)


def _http_sample() -> list[bytes]:
    """Hostile values in every variable of a few routes, as raw request-target bytes."""
    templates = (
        "/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:streamGenerateContent",
        "/v1beta1/projects/{p}/locations/{l}/endpoints/{m}:streamGenerateContent",
        "/api/vertex-ai/v1/publishers/{p}/models/{m}:streamGenerateContent",
        "/v1beta/models/{m}:streamGenerateContent",
    )
    sample = []
    for i, atom in enumerate(ATOMS):
        template = templates[i % len(templates)]
        hostile = f"gemini{atom}x"
        values = {"p": PINNED_PROJECT, "l": PINNED_LOCATION, "m": hostile}
        if i % 3 == 0:
            values["p"] = f"other{atom}proj"
        if i % 3 == 1:
            values["l"] = f"{atom}europe-west4"
        sample.append(template.format(**values).encode())
    sample += [
        b"//v1beta/models/gemini:streamGenerateContent",
        b"/v1beta/models/a/../b:x",
    ]
    sample.append(b"http://evil.example/v1beta/models/gemini-2.5-flash:generateContent")
    return sample


def test_hostile_paths_over_http_only_ever_reach_pinned_upstream_urls(
    vertex_gateway, fake_upstream
):
    start = len(fake_upstream.requests)
    body = b'{"contents": [{"parts": [{"text": "%s"}]}]}' % PROMPT.encode()
    statuses, bodies = {}, []
    for target in _http_sample():
        headers = [("x-goog-api-key", KEYS["team-a"]), ("Connection", "close")]
        resp = send_raw(
            vertex_gateway.port, http_request("POST", target, headers, body)
        )
        statuses[target] = resp.status
        assert resp.status < 500, (target, resp.body)
        if not resp.from_gateway:
            # The HTTP server's own answer: to bytes HTTP does not allow, or (functions-framework's
            # router) to a path with a line break, which it cannot route.
            refused = resp.status == 400 and not valid_http_target(target)
            unrouted = resp.status == 404 and unroutable_target(target)
            assert refused or unrouted, target
        elif resp.status >= 400:
            bodies.append(resp.body)
            path = target.decode("latin-1")
            assert error_problem(resp.status, resp.body, path) is None, (
                target,
                resp.body,
            )
    upstream = [r["path"] for r in fake_upstream.requests[start:]]
    off_pin = [p for p in upstream if not VERTEX.fullmatch(p)]
    record(
        "paths_http",
        sent=len(statuses),
        upstream_calls=len(upstream),
        off_pin=len(off_pin),
    )
    record("leaks", where="paths_http", hits=len(leaked(bodies, SECRETS)))
    assert upstream, "no hostile-looking path was valid enough to reach the upstream"
    assert off_pin == []
    assert leaked(bodies, SECRETS) == []
    # ...and the gateway still serves a plain request.
    ok = requests.post(
        vertex_gateway.url(
            f"/v1/projects/{PINNED_PROJECT}/locations/{PINNED_LOCATION}"
            "/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
        ),
        data=body,
        headers={"x-goog-api-key": KEYS["team-a"]},
        timeout=10,
    )
    assert ok.status_code == 200
