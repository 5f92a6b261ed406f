"""The route table (single source of truth) and path normalisation to one canonical target."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from lib.errors import BadRequest, NotFound

PLATFORM_MOUNTS = ("/api/vertex-ai/v1", "/api/v1", "/api/vertex-ai/v1beta")
VERTEX_VERSIONS = ("v1", "v1beta1")
GEMINI_VERSIONS = ("v1", "v1beta")

# Method verb -> whether it streams.
VERBS: dict[str, bool] = {
    "streamGenerateContent": True,
    "generateContent": False,
    "countTokens": False,
    "computeTokens": False,
}
# Methods that only count or tokenize: no tokens generated, so no token budget is charged.
COUNTING_VERBS = frozenset({"countTokens", "computeTokens"})
# Methods only Vertex AI has (not the Gemini API's own paths).
VERTEX_ONLY_VERBS = frozenset({"computeTokens"})

# Route family -> the functions-framework target (and Terraform entry point) that serves it.
FAMILY_TARGETS: dict[str, str] = {
    "platform": "platform_stream",
    "vertex": "vertex_stream",
    "gemini": "gemini_stream",
}

IDENTIFIER = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_ONLY_DOTS = re.compile(r"\.+")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Characters a client may percent-encode in a path segment; anything else encoded is refused.
_DECODABLE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-:"
)


@dataclass(frozen=True)
class Route:
    """One path template, e.g. `/v1beta/models/{model}`, served with a `:verb` suffix."""

    family: str
    template: str
    defaults: tuple[tuple[str, str], ...] = ()

    @cached_property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    @cached_property
    def variables(self) -> tuple[str, ...]:
        return tuple(s[1:-1] for s in self.segments if s.startswith("{"))


def _build_routes() -> tuple[Route, ...]:
    routes: list[Route] = []
    google = (("publisher", "google"),)
    for mount in PLATFORM_MOUNTS:
        routes += [
            Route("platform", f"{mount}/publishers/{{publisher}}/models/{{model}}"),
            Route("platform", f"{mount}/models/{{publisher}}/{{model}}"),
            Route("platform", f"{mount}/models/{{model}}", google),
        ]
    for version in VERTEX_VERSIONS:
        prefix = f"/{version}/projects/{{project}}/locations/{{location}}"
        routes += [
            Route("vertex", f"{prefix}/publishers/{{publisher}}/models/{{model}}"),
            Route("vertex", f"{prefix}/endpoints/{{endpoint}}"),
            Route("vertex", f"/{version}/publishers/{{publisher}}/models/{{model}}"),
        ]
    for version in GEMINI_VERSIONS:
        routes.append(Route("gemini", f"/{version}/models/{{model}}", google))
    return tuple(routes)


ROUTES: tuple[Route, ...] = _build_routes()


@dataclass(frozen=True)
class Target:
    """Where a request goes: (publisher, model) or an endpoint id, and which verb."""

    family: str
    route: Route
    verb: str
    publisher: str = ""
    model: str = ""
    endpoint: str = ""

    @property
    def stream(self) -> bool:
        return VERBS[self.verb]

    @property
    def model_name(self) -> str:
        """The name a key's model globs are matched against."""
        return self.model or f"endpoints/{self.endpoint}"


def _decode_segment(segment: str) -> str:
    if "%" not in segment:
        return segment

    def replace(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        if char not in _DECODABLE:
            raise BadRequest(
                "The path contains a percent-encoded character that is not allowed."
            )
        return char

    decoded = _PERCENT.sub(replace, segment)
    if "%" in decoded:
        raise BadRequest("The path contains a malformed percent-encoding.")
    return decoded


def split_path(raw_path: str) -> tuple[list[str], str]:
    """Split a raw (still percent-encoded) path into decoded segments and its `:verb`."""
    if not raw_path.startswith("/") or raw_path == "/" or len(raw_path) > 2048:
        raise NotFound("Unknown path.")
    segments = [_decode_segment(s) for s in raw_path[1:].split("/")]
    if any(s == "" for s in segments):
        raise BadRequest("The path has an empty segment.")
    resource, sep, verb = segments[-1].partition(":")
    if not sep:
        raise NotFound(
            "Unknown path: expected a method such as ':streamGenerateContent'."
        )
    if ":" in verb or any(":" in s for s in segments[:-1]):
        raise BadRequest("The path has a ':' outside the final method suffix.")
    return [*segments[:-1], resource], verb


def _match(route: Route, segments: list[str]) -> dict[str, str] | None:
    pattern = route.segments
    if len(pattern) != len(segments):
        return None
    values: dict[str, str] = {}
    for literal, value in zip(pattern, segments):
        if literal.startswith("{"):
            values[literal[1:-1]] = value
        elif literal != value:
            return None
    return values


def _check_identifier(name: str, value: str) -> None:
    if not IDENTIFIER.fullmatch(value) or _ONLY_DOTS.fullmatch(value):
        raise BadRequest(
            f"Invalid {name} in the path: use 1-128 characters from [A-Za-z0-9._@-]."
        )


def normalize_path(raw_path: str, families: frozenset[str] | None = None) -> Target:
    """Map a request path to its canonical target, or raise BadRequest/NotFound."""
    segments, verb = split_path(raw_path)
    for route in ROUTES:
        if families is not None and route.family not in families:
            continue
        values = _match(route, segments)
        if values is None:
            continue
        if verb not in VERBS or (
            verb in VERTEX_ONLY_VERBS and route.family == "gemini"
        ):
            raise NotFound(
                f"Unknown method ':{verb[:64]}'; use ':streamGenerateContent'."
            )
        for name, value in values.items():
            _check_identifier(name, value)
        fields = {**dict(route.defaults), **values}
        return Target(
            family=route.family,
            route=route,
            verb=verb,
            publisher=fields.get("publisher", ""),
            model=fields.get("model", ""),
            endpoint=fields.get("endpoint", ""),
        )
    raise NotFound("Unknown path: no streamGenerateContent route matches it.")
