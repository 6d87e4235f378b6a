"""Checking a received file before it is kept: not empty, a type we accept (sniffed from the bytes), no zip
bomb, and its text extracted for search (in a thread, with a time limit)."""

from __future__ import annotations

import asyncio
import logging

from concelho.suite.content.media import MediaError, sniff
from concelho.suite.i18n import N_
from concelho.suite.storage import StagedFile

from .errors import DocumentError
from .extract import extract_text
from .versions import NewFile

log = logging.getLogger("suite.documents")

EXTRACT_TIMEOUT = 30.0

EMPTY = N_("The file is empty.")
NOT_ACCEPTED = N_(
    "This kind of file is not accepted (documents: PDF, ODF, Office, text; images: JPEG, PNG, GIF, WebP). "
    "The type is read from the content, not from the name."
)
BAD_NAME = N_("The file name is not acceptable (it contains a folder path or control characters).")
ZIP_BOMB = N_("The office file expands to an unreasonable size or has too many parts (possible zip bomb).")


def acceptable_name(filename: str) -> bool:
    """Browsers send a bare file name: a path (``../``, ``C:\\``), ``..`` or control characters is an attack."""
    name = filename or ""
    if not name.strip() or name.strip() in {".", ".."}:
        return False
    if "/" in name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return False
    return len(name) <= 255


def check_file_sync(filename: str, staged: StagedFile, extract_max_bytes: int) -> NewFile:
    """:func:`check_file` for worker threads (bulk imports): the same checks, no time limit on extraction."""
    if not acceptable_name(filename):
        raise DocumentError(BAD_NAME)
    if staged.size == 0:
        raise DocumentError(EMPTY)
    try:
        content_type = sniff(staged.path, filename)
    except MediaError:
        raise DocumentError(ZIP_BOMB) from None
    if content_type is None:
        raise DocumentError(NOT_ACCEPTED)
    text = extract_text(staged.path, content_type, extract_max_bytes) if staged.size <= extract_max_bytes else ""
    return NewFile(filename=filename, staged=staged, content_type=content_type, text=text)


async def check_file(filename: str, staged: StagedFile, extract_max_bytes: int) -> NewFile:
    """A :class:`NewFile` ready for :func:`services.add_file`; raises :class:`DocumentError` when refused."""
    if not acceptable_name(filename):
        raise DocumentError(BAD_NAME)
    if staged.size == 0:
        raise DocumentError(EMPTY)
    try:
        content_type = await asyncio.to_thread(sniff, staged.path, filename)
    except MediaError:
        raise DocumentError(ZIP_BOMB) from None
    if content_type is None:
        raise DocumentError(NOT_ACCEPTED)
    text = ""
    if staged.size <= extract_max_bytes:
        try:
            # ``asyncio.timeout``: a cancelled upload must not go on (``wait_for`` on Python 3.11 returns
            # instead of raising when cancelled just as the extraction ends; see suite/jobs.py).
            async with asyncio.timeout(EXTRACT_TIMEOUT):
                text = await asyncio.to_thread(extract_text, staged.path, content_type, extract_max_bytes)
        except TimeoutError:
            log.warning("text extraction of %r took too long; the document is kept without text", filename)
    return NewFile(filename=filename, staged=staged, content_type=content_type, text=text)
