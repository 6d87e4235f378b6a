"""File storage behind a small interface; local, content-addressed files by default."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[str, int]: ...
    def open(self, key: str): ...  # type: ignore[no-untyped-def]
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def check(self) -> None: ...


class StorageLimitError(ValueError):
    """The upload is larger than allowed (nothing is kept)."""


class LocalStorage:
    """Files under ``root/ab/cd/<sha256>``; writes go to a temp file then move atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("invalid storage key")
        return self.root / key[:2] / key[2:4] / key

    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[str, int]:
        """Stream chunks to disk, return (sha256 key, size); oversize leaves nothing behind."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageLimitError(f"file is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            key = digest.hexdigest()
            final = self.path_for(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)
            return key, size
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
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
