"""File storage behind a small interface; local, content-addressed files by default.

Writing is two-phase so a caller can look at a file before keeping it: :meth:`LocalStorage.stage`
streams into a temporary file (hashing as it goes), the caller checks it (type, size, quota…),
then :meth:`LocalStorage.commit` moves it into place under its SHA-256 or :meth:`LocalStorage.discard`
drops it.  A refused or interrupted upload leaves nothing behind.  ``docs/STORAGE.md`` tells how an
S3-compatible backend fits the same interface.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class StorageLimitError(ValueError):
    """The upload is larger than allowed (nothing is kept)."""


@dataclass
class StagedFile:
    """A file received but not kept yet: a temporary file, its SHA-256 so far and its size."""

    path: Path
    max_bytes: float = float("inf")
    size: int = 0
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)
    _fh: Any = field(default=None, repr=False)
    key: str = ""

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; raises :class:`StorageLimitError` past ``max_bytes`` (the caller discards)."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise StorageLimitError(f"file is larger than {int(self.max_bytes)} bytes")
        self._digest.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> str:
        """Close the temporary file; returns the SHA-256 key."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.key = self._digest.hexdigest()
        return self.key


class Storage(Protocol):
    def stage(self, max_bytes: float = ...) -> StagedFile: ...
    def commit(self, staged: StagedFile) -> bool: ...
    def discard(self, staged: StagedFile) -> None: ...
    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[str, int]: ...
    def open(self, key: str): ...  # type: ignore[no-untyped-def]
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def check(self) -> None: ...


class LocalStorage:
    """Files under ``root/ab/cd/<sha256>``; writes go to a temp file (``root/tmp``) then move atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path_for(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("invalid storage key")
        return self.root / key[:2] / key[2:4] / key

    def stage(self, max_bytes: float = float("inf")) -> StagedFile:
        """A new temporary file to write into; always end with :meth:`commit` or :meth:`discard`."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="up-")
        return StagedFile(path=Path(tmp_name), max_bytes=max_bytes, _fh=os.fdopen(fd, "wb"))

    def commit(self, staged: StagedFile) -> bool:
        """Move a staged file into place; True when the content was not stored before."""
        key = staged.key or staged.finish()
        final = self.path_for(key)
        if final.is_file():
            staged.path.unlink(missing_ok=True)
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, final)
        return True

    def discard(self, staged: StagedFile) -> None:
        if staged._fh is not None:
            staged._fh.close()
            staged._fh = None
        staged.path.unlink(missing_ok=True)

    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[str, int]:
        """Stream chunks to disk, return (sha256 key, size); oversize leaves nothing behind."""
        staged = self.stage(max_bytes)
        try:
            async for chunk in chunks:
                staged.write(chunk)
            key = staged.finish()
            self.commit(staged)
            return key, staged.size
        except BaseException:
            self.discard(staged)
            raise

    def open(self, key: str):  # type: ignore[no-untyped-def]
        return self.path_for(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def check(self) -> None:
        """Raise if the storage root is not writable."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check-"):
            pass
