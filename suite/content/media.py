"""Media library: images (type/size limits, Pillow renditions, required alt text) and documents.

The type of a file is sniffed from its bytes, never trusted from its name or the browser;
SVG is refused (it can carry script); office files are ZIP containers and are checked for
zip bombs.  Files are streamed to the content-addressed storage; a refused upload leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import io
import re
import unicodedata
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.datastructures import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import record
from ..storage import LocalStorage, StorageLimitError
from .models import Media

IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "text/plain": ".txt",
    "text/csv": ".csv",
}
RENDITIONS = {"thumb": 320, "medium": 960}
MAX_IMAGE_PIXELS = 40_000_000
MAX_ZIP_UNCOMPRESSED = 200 * 1024 * 1024
MAX_ZIP_RATIO = 100
MAX_ZIP_ENTRIES = 5000


class MediaError(ValueError):
    """The file was refused; the message says why (fit for a form)."""


def _zip_kind(head_path: Path) -> str | None:
    try:
        with zipfile.ZipFile(head_path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise MediaError("The office file has too many parts (possible zip bomb).")
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
            if total > MAX_ZIP_UNCOMPRESSED or total / packed > MAX_ZIP_RATIO:
                raise MediaError("The office file expands to an unreasonable size (possible zip bomb).")
            names = {i.filename for i in infos}
            if "mimetype" in names:
                declared = zf.read("mimetype")[:100].decode("ascii", "ignore").strip()
                return declared if declared in DOCUMENT_TYPES else None
            if "[Content_Types].xml" in names:
                if any(n.startswith("word/") for n in names):
                    return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                if any(n.startswith("xl/") for n in names):
                    return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                if any(n.startswith("ppt/") for n in names):
                    return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    except zipfile.BadZipFile:
        return None
    return None


def sniff(path: Path, filename: str) -> str | None:
    """The real content type of the file at ``path`` (None when it is not an accepted kind)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    lowered = head.lower()
    if b"<svg" in lowered or b"<html" in lowered or b"<script" in lowered or b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/csv" if filename.lower().endswith(".csv") else "text/plain"


def safe_filename(name: str, content_type: str) -> str:
    """A harmless file name: no path parts, control characters or leading dots; the real extension."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"<>:|?*;]", "", name).strip().lstrip(".")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem[:150] or "ficheiro"
    ext = IMAGE_TYPES.get(content_type) or DOCUMENT_TYPES.get(content_type) or ""
    return stem + ext


async def upload_chunks(upload: UploadFile, size: int = 1 << 16) -> AsyncIterator[bytes]:
    """The bytes of an uploaded file in pieces of ``size`` (for ``storage.put_stream``: never all in memory)."""
    while True:
        chunk = await upload.read(size)
        if not chunk:
            break
        yield chunk


def _renditions(storage: LocalStorage, key: str) -> tuple[int, int, dict[str, Any]]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(storage.path_for(key)) as img:
            img.verify()
        with Image.open(storage.path_for(key)) as img:
            width, height = img.size
            out: dict[str, Any] = {}
            for name, max_width in RENDITIONS.items():
                copy = img.copy()
                copy.thumbnail((max_width, max_width * 4))
                if copy.mode not in ("RGB", "RGBA"):
                    copy = copy.convert("RGBA" if "A" in copy.getbands() else "RGB")
                buf = io.BytesIO()
                copy.save(buf, "WEBP", quality=82)
                data = buf.getvalue()
                import hashlib

                digest = hashlib.sha256(data).hexdigest()
                target = storage.path_for(digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                out[name] = {"key": digest, "width": copy.size[0], "height": copy.size[1], "type": "image/webp"}
            return width, height, out
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("The image has too many pixels.") from None
    except (OSError, SyntaxError):
        raise MediaError("The image is damaged or not really an image.") from None


@dataclass
class UploadInput:
    title: str
    alt_text: str = ""
    audience: str = "public"


async def store_upload(
    session: AsyncSession,
    storage: LocalStorage,
    upload: UploadFile,
    data: UploadInput,
    max_bytes: int,
    actor_id: int | None = None,
    actor: str = "",
) -> Media:
    """Validate and keep an uploaded file; raises :class:`MediaError` and keeps nothing on refusal."""
    try:
        key, size = await storage.put_stream(upload_chunks(upload), max_bytes)
    except StorageLimitError:
        raise MediaError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.") from None
    if size == 0:
        storage.delete(key)
        raise MediaError("The file is empty.")
    path = storage.path_for(key)
    try:
        content_type = await asyncio.to_thread(sniff, path, upload.filename or "")
    except MediaError:
        storage.delete(key)
        raise
    if content_type is None:
        storage.delete(key)
        raise MediaError("This kind of file is not accepted (images: JPEG, PNG, GIF, WebP; documents: PDF, ODF, "
                         "Office, text).")  # fmt: skip
    kind = "image" if content_type in IMAGE_TYPES else "document"
    width = height = None
    renditions: dict[str, Any] = {}
    if kind == "image":
        if not data.alt_text.strip():
            storage.delete(key)
            raise MediaError("Describe the image in the alternative text (required for accessibility).")
        try:
            width, height, renditions = await asyncio.to_thread(_renditions, storage, key)
        except MediaError:
            storage.delete(key)
            raise
    media = Media(
        kind=kind,
        title=(data.title or upload.filename or "").strip()[:300] or "Sem título",
        alt_text=data.alt_text.strip()[:300],
        filename=safe_filename(upload.filename or "", content_type),
        content_type=content_type,
        size=size,
        sha256=key,
        width=width,
        height=height,
        renditions=renditions,
        audience=data.audience,
        uploaded_by=actor_id,
    )
    session.add(media)
    await session.flush()
    await record(session, "media.uploaded", actor_id=actor_id, actor=actor, target=f"core.media:{media.id}",
                 content_type=content_type, size=size)  # fmt: skip
    return media


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266 header with an ASCII fallback and a UTF-8 ``filename*``."""
    from urllib.parse import quote

    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode() or "ficheiro"
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
