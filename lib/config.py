"""Settings read once from the environment into a frozen dataclass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UPSTREAMS = ("echo", "vertex", "gemini")

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
class Settings:
    """Everything the gateway reads from its environment."""

    upstream: str = "echo"
    keys_source: str = ""
    keys_ttl_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    cors_origins: tuple[str, ...] = ()
    model_aliases: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_MODEL_ALIASES)
    )
    echo_delay_ms: int = 20
    vertex_project: str = ""
    vertex_location: str = "global"
    vertex_base_url: str = ""
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    gemini_api_key: str = ""
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
        upstream = env.get("STREAMGATE_UPSTREAM", "") or d.upstream
        if upstream not in UPSTREAMS:
            raise ConfigError(
                f"STREAMGATE_UPSTREAM must be one of {', '.join(UPSTREAMS)}"
            )
        origins = env.get("STREAMGATE_CORS_ORIGINS", "")
        return cls(
            upstream=upstream,
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
            vertex_project=env.get("STREAMGATE_VERTEX_PROJECT")
            or env.get("GOOGLE_CLOUD_PROJECT", ""),
            vertex_location=env.get("STREAMGATE_VERTEX_LOCATION", "")
            or d.vertex_location,
            vertex_base_url=env.get("STREAMGATE_VERTEX_BASE_URL", ""),
            gemini_base_url=env.get("STREAMGATE_GEMINI_BASE_URL", "")
            or d.gemini_base_url,
            gemini_api_key=env.get("STREAMGATE_GEMINI_API_KEY", ""),
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

    @property
    def vertex_base(self) -> str:
        """Vertex host for the pinned location: global, multi-region, or regional."""
        if self.vertex_base_url:
            return self.vertex_base_url.rstrip("/")
        if self.vertex_location == "global":
            return "https://aiplatform.googleapis.com"
        if self.vertex_location in ("us", "eu"):
            return f"https://aiplatform.{self.vertex_location}.rep.googleapis.com"
        return f"https://{self.vertex_location}-aiplatform.googleapis.com"
