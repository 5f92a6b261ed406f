"""Settings read once from the environment into a frozen dataclass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UPSTREAMS = ("echo", "vertex", "gemini")
# What STREAMGATE_UPSTREAMS may list: Google's upstreams (echo is for `make run` and smoke tests).
LISTED_KINDS = ("vertex", "gemini")
# Each list entry's fields, as spelled in the JSON, and the UpstreamSpec field each fills.
_LISTED_FIELDS = {
    "kind": "kind",
    "name": "name",
    "project": "project",
    "location": "location",
    "baseUrl": "base_url",
    "apiKeyEnv": "api_key_env",
    "apiKeySecret": "api_key_secret",
}
# Where the single-upstream form keeps the Gemini API key (lib/secretenv fills it from a secret).
GEMINI_KEY_ENV = "STREAMGATE_GEMINI_API_KEY"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"

# Retired model names -> a current model, so old curl examples keep working upstream.
DEFAULT_MODEL_ALIASES: dict[str, str] = {
    "gemini-pro": "gemini-2.5-flash",
    "gemini-pro-vision": "gemini-2.5-flash",
    "gemini-1.0-pro": "gemini-2.5-flash",
    "gemini-1.0-pro-vision": "gemini-2.5-flash",
    "gemini-1.5-flash": "gemini-2.5-flash",
    "gemini-1.5-pro": "gemini-2.5-pro",
}


class ConfigError(ValueError):
    """A setting that cannot be used; raised at first use, with the variable's name."""


def _number(
    env: Mapping[str, str], name: str, default: float, kind: type = float
) -> Any:
    """The variable as a non-negative `kind` (int or float), or `default` when unset or empty."""
    try:
        value = kind(env.get(name, "") or default)
    except ValueError as exc:
        article = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {article}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _aliases(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get("STREAMGATE_MODEL_ALIASES", "")
    if not raw:
        return dict(DEFAULT_MODEL_ALIASES)
    try:
        aliases = json.loads(raw)
    except ValueError as exc:
        raise ConfigError("STREAMGATE_MODEL_ALIASES must be a JSON object") from exc
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise ConfigError(
            "STREAMGATE_MODEL_ALIASES must map model names to model names"
        )
    return aliases


@dataclass(frozen=True)
class UpstreamSpec:
    """One upstream of the ordered list: its kind and that kind's settings, never a key itself.

    A Gemini API key is named: `api_key_env` (an environment variable) or `api_key_secret` (a Secret
    Manager name or a Secrets Manager ARN), read when the instance is built.
    """

    kind: str
    name: str
    project: str = ""
    location: str = "global"
    base_url: str = ""
    api_key_env: str = ""
    api_key_secret: str = ""

    @property
    def base(self) -> str:
        """The upstream's host: `base_url`, else Google's for the kind (and Vertex's location)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.kind == "gemini":
            return GEMINI_BASE_URL
        if self.location == "global":
            return "https://aiplatform.googleapis.com"
        if self.location in ("us", "eu"):
            return f"https://aiplatform.{self.location}.rep.googleapis.com"
        return f"https://{self.location}-aiplatform.googleapis.com"


def _listed(position: int, entry: Any) -> UpstreamSpec:
    """Entry `position` (1-based) of STREAMGATE_UPSTREAMS, checked; the reason names the entry."""
    where = f"STREAMGATE_UPSTREAMS[{position - 1}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    if "apiKey" in entry:
        raise ConfigError(
            f"{where}: never put a key in the list; name it with apiKeyEnv or apiKeySecret"
        )
    unknown = sorted(set(entry) - set(_LISTED_FIELDS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r}; use {', '.join(_LISTED_FIELDS)}"
        )
    if not all(isinstance(v, str) for v in entry.values()):
        raise ConfigError(f"{where}: every field is a string")
    kind = entry.get("kind", "")
    if kind not in LISTED_KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(LISTED_KINDS)}")
    fields = {_LISTED_FIELDS[k]: v for k, v in entry.items() if v}
    fields.setdefault("name", f"{kind}-{position}")
    spec = UpstreamSpec(**fields)
    if kind == "vertex" and not spec.project:
        raise ConfigError(f"{where}: a vertex upstream needs its project")
    if kind == "vertex" and (spec.api_key_env or spec.api_key_secret):
        raise ConfigError(
            f"{where}: a vertex upstream uses the gateway's credentials, not a key"
        )
    if kind == "gemini" and bool(spec.api_key_env) == bool(spec.api_key_secret):
        raise ConfigError(f"{where}: a gemini upstream needs apiKeyEnv or apiKeySecret")
    if kind == "gemini" and entry.get("location"):
        raise ConfigError(f"{where}: the Gemini API has no location")
    return spec


def _upstream_list(env: Mapping[str, str], upstream: str) -> tuple[UpstreamSpec, ...]:
    """STREAMGATE_UPSTREAMS when set; else the single-upstream variables as a list of one."""
    raw = env.get("STREAMGATE_UPSTREAMS", "").strip()
    if not raw:
        return (_single(env, upstream),)
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise ConfigError("STREAMGATE_UPSTREAMS must be a JSON list") from exc
    if not isinstance(entries, list) or not entries:
        raise ConfigError("STREAMGATE_UPSTREAMS must be a non-empty JSON list")
    specs = tuple(_listed(i, e) for i, e in enumerate(entries, 1))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError("STREAMGATE_UPSTREAMS: every upstream needs its own name")
    return specs


def _vertex_project(env: Mapping[str, str]) -> str:
    """The single Vertex upstream's project: STREAMGATE_VERTEX_PROJECT, else the function's own."""
    return env.get("STREAMGATE_VERTEX_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT", "")


def _single(env: Mapping[str, str], upstream: str) -> UpstreamSpec:
    if upstream == "vertex":
        return UpstreamSpec(
            "vertex",
            "vertex",
            project=_vertex_project(env),
            location=env.get("STREAMGATE_VERTEX_LOCATION", "") or UpstreamSpec.location,
            base_url=env.get("STREAMGATE_VERTEX_BASE_URL", ""),
        )
    if upstream == "gemini":
        return UpstreamSpec(
            "gemini",
            "gemini",
            base_url=env.get("STREAMGATE_GEMINI_BASE_URL", ""),
            api_key_env=GEMINI_KEY_ENV,
        )
    return UpstreamSpec("echo", "echo")


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment."""

    # The ordered upstream list (STREAMGATE_UPSTREAMS, or the single upstream as a list of one).
    upstreams: tuple[UpstreamSpec, ...] = (UpstreamSpec("echo", "echo"),)
    keys_source: str = ""
    keys_ttl_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    model_aliases: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_MODEL_ALIASES)
    )
    echo_delay_ms: int = 20
    # The project request logs name in their trace field (the single Vertex upstream's, or the function's).
    trace_project: str = ""
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    client_timeout_s: float = 60.0
    # The longest a stream may run (0 = no limit): the platform's request timeout less a margin.
    request_timeout_s: float = 0.0
    # On SIGTERM, how long open streams may go on before each ends with an UNAVAILABLE element.
    shutdown_grace_s: float = 8.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from `env`; an unset or empty variable keeps the field's default above."""
        d = cls()
        upstream = env.get("STREAMGATE_UPSTREAM", "") or "echo"
        if upstream not in UPSTREAMS:
            raise ConfigError(
                f"STREAMGATE_UPSTREAM must be one of {', '.join(UPSTREAMS)}"
            )
        origins = env.get("STREAMGATE_CORS_ORIGINS", "")
        return cls(
            upstreams=_upstream_list(env, upstream),
            keys_source=env.get("STREAMGATE_KEYS", ""),
            keys_ttl_s=_number(env, "STREAMGATE_KEYS_TTL_S", d.keys_ttl_s),
            max_body_bytes=_number(
                env, "STREAMGATE_MAX_BODY_BYTES", d.max_body_bytes, int
            ),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            model_aliases=_aliases(env),
            echo_delay_ms=_number(
                env, "STREAMGATE_ECHO_DELAY_MS", d.echo_delay_ms, int
            ),
            trace_project=_vertex_project(env),
            connect_timeout_s=_number(
                env, "STREAMGATE_CONNECT_TIMEOUT_S", d.connect_timeout_s
            ),
            idle_timeout_s=_number(env, "STREAMGATE_IDLE_TIMEOUT_S", d.idle_timeout_s),
            client_timeout_s=_number(
                env, "STREAMGATE_CLIENT_TIMEOUT_S", d.client_timeout_s
            ),
            request_timeout_s=_number(
                env, "STREAMGATE_REQUEST_TIMEOUT_S", d.request_timeout_s
            ),
            shutdown_grace_s=_number(
                env, "STREAMGATE_SHUTDOWN_GRACE_S", d.shutdown_grace_s
            ),
            log_level=env.get("STREAMGATE_LOG_LEVEL", "") or d.log_level,
        )
