"""Settings whose values live in a secret store (e.g. the Gemini key on AWS), resolved at first use."""

from __future__ import annotations

from collections.abc import Mapping


def resolve_secret_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment with secret-backed settings filled in (none are configured yet)."""
    return env
