"""Per-process singletons: one shape for everything an instance makes once (pools, clients, the gateway)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_made: dict[str, Any] = {}
# Re-entrant: a factory may itself ask for another singleton.
_lock = threading.RLock()


def shared(name: str, factory: Callable[[], T]) -> T:
    """The process's one `name`, made by `factory` on first use (never at import), once."""
    try:
        return _made[name]
    except KeyError:
        pass
    with _lock:
        if name not in _made:
            _made[name] = factory()
        return _made[name]


def peek(name: str) -> Any:
    """The process's `name` if it has been made, else None (never makes it)."""
    return _made.get(name)


def forget(name: str) -> Any:
    """Drop `name` (so the next `shared` call makes it again); returns what was held, or None."""
    with _lock:
        return _made.pop(name, None)
