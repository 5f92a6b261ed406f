"""The key store in a local file: read it; change it under an flock with an atomic rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lib.keys.base import Change, KeyStoreError, apply_change
from lib.keys.document import KeySet


class FileKeyStore:
    """A keys file; writers serialise on `<file>.lock` and replace the file in one rename."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def read(self) -> bytes:
        """The file's bytes (KeyStoreError if it cannot be read)."""
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read the keys file ({exc.strerror})") from None

    def update(self, change: Change) -> KeySet:
        """Read, change and rewrite the file while holding the lock."""
        with self._locked():
            try:
                raw: bytes | None = self.path.read_bytes()
            except FileNotFoundError:
                raw = None
            except OSError as exc:
                raise KeyStoreError(
                    f"cannot read the keys file ({exc.strerror})"
                ) from None
            keyset, data = apply_change(raw, change)
            if data is not None:
                self._replace(data)
            return keyset

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # The lock lives in its own file: the keys file's inode changes with every rename.
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the flock.
            os.close(fd)

    def _replace(self, data: bytes) -> None:
        replace_file(self.path, data)


def replace_file(path: Path, data: bytes) -> None:
    """`path` now holds `data`: a temp file beside it, `fsync`, one rename (the mode is kept; new: 0644)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        # Readers see the old file or the new one, never half.
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
