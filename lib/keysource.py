"""Where the key document lives, chosen by the shape of `STREAMGATE_KEYS`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class KeySourceError(RuntimeError):
    """The key document could not be read (or no source is configured)."""


def open_key_reader(spec: str) -> Callable[[], bytes]:
    """A function that reads the current key document from `spec`."""
    if not spec:

        def missing() -> bytes:
            raise KeySourceError("STREAMGATE_KEYS is not set")

        return missing
    path = Path(spec)

    def read_file() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise KeySourceError(
                f"cannot read the keys file ({exc.strerror})"
            ) from None

    return read_file
