"""Receiving uploads without holding them: the raw request body is parsed as it arrives.

Litestar's own form parsing (and its CSRF middleware, which reads the form to find the token)
would spool every file to a temporary file before the handler runs.  The upload routes are
therefore exempt from the middleware and read ``request.stream()`` themselves with
python-multipart's streaming parser: each file's bytes go straight into a staged file of the
document storage (hashed on the way), small form fields are kept in memory (bounded), and the
CSRF token is checked from the ``x-csrftoken`` header or from the ``_csrf_token`` field, which
must come before the first file (the upload forms put it first).

Whatever goes wrong (a limit, a bad token, a client that disconnects or sends a truncated body),
every staged file is removed before the error propagates: nothing is left behind.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from concelho.suite.i18n import N_
from concelho.suite.security import csrf_config
from concelho.suite.storage import LocalStorage, StagedFile, StorageLimitError
from litestar import Request
from litestar.exceptions import InternalServerException, PermissionDeniedException
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash
from python_multipart.multipart import MultipartParser, parse_options_header

from .naming import human_size

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50
MAX_FILES = 200
CSRF_FIELD = "_csrf_token"
INTERRUPTED = N_("The upload was interrupted before the end; nothing was kept.")


class UploadError(ValueError):
    """The whole upload is refused; the message is fit to show.  ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400, **variables: Any) -> None:
        super().__init__(message)
        self.status = status
        self.variables = variables


@dataclass
class Refused:
    filename: str
    message: str
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    #: (client's file name, staged file) in the order received.
    files: list[tuple[str, StagedFile]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    def discard(self, storage: LocalStorage) -> None:
        for _, staged in self.files:
            storage.discard(staged)
        self.files.clear()


def _decode_token(token: str, secret: str) -> str | None:
    if len(token) < CSRF_SECRET_LENGTH + 1:
        return None
    raw, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return raw if hmac.compare_digest(signature, generate_csrf_hash(token=raw, secret=secret)) else None


def csrf_matches(request: Request, token: str | None) -> bool:
    """The same check as Litestar's CSRF middleware: the token and the cookie are signed and identical."""
    config = csrf_config(request.app)
    if config is None:
        return True
    cookie = request.cookies.get(config.cookie_name)
    if not token or not cookie:
        return False
    sent, expected = _decode_token(token, config.secret), _decode_token(cookie, config.secret)
    return sent is not None and expected is not None and hmac.compare_digest(sent, expected)


class _Events:
    """Collects python-multipart's callbacks so they can be handled with ``await`` in between."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.finished = False

    def callbacks(self) -> dict[str, Any]:
        def part_begin() -> None:
            self.items.append(("begin", b""))

        def header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def header_end() -> None:
            self.items.append(("header", bytes(self.header_field) + b"\x00" + bytes(self.header_value)))
            self.header_field.clear()
            self.header_value.clear()

        def headers_finished() -> None:
            self.items.append(("headers_done", b""))

        def part_data(data: bytes, start: int, end: int) -> None:
            self.items.append(("data", data[start:end]))

        def part_end() -> None:
            self.items.append(("end", b""))

        def end() -> None:
            self.finished = True

        return {
            "on_part_begin": part_begin,
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part_data,
            "on_part_end": part_end,
            "on_end": end,
        }


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    staged: StagedFile | None = None
    value: bytearray = field(default_factory=bytearray)
    skipping: bool = False


async def receive(
    request: Request,
    storage: LocalStorage,
    *,
    max_file_bytes: int,
    max_body_bytes: int,
    quota_left: int | None = None,
) -> Received:
    """Read the multipart body of ``request`` into staged files and fields.

    A file over ``max_file_bytes`` (or over what is left of the quota) is dropped at once and listed
    in ``refused``; the rest of the body is still read.  A body over ``max_body_bytes``, a missing or
    wrong CSRF token, a malformed or truncated body raise (:class:`UploadError`,
    ``PermissionDeniedException``) after every staged file was removed.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(N_("Send the files with the upload form."))
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > max_body_bytes:
        raise UploadError(N_("The upload is larger than %(limit)s."), 413, limit=human_size(max_body_bytes))

    csrf_ok = csrf_matches(request, request.headers.get("x-csrftoken"))
    events = _Events()
    parser = MultipartParser(options[b"boundary"], events.callbacks())
    received = Received()
    part: _Part | None = None
    total = 0
    file_limit = max_file_bytes if quota_left is None else min(max_file_bytes, quota_left)

    def refuse_current(message: str, **variables: Any) -> None:
        assert part is not None and part.staged is not None
        storage.discard(part.staged)
        part.staged = None
        part.skipping = True
        received.refused.append(Refused(part.filename or "", message, variables))

    async def body():  # type: ignore[no-untyped-def]
        try:
            async for chunk in request.stream():
                yield chunk
        except InternalServerException:  # Litestar's "client disconnected prematurely"
            raise UploadError(INTERRUPTED) from None

    try:
        async for chunk in body():
            if not chunk:
                continue
            total += len(chunk)
            if total > max_body_bytes:
                raise UploadError(N_("The upload is larger than %(limit)s."), 413, limit=human_size(max_body_bytes))
            try:
                parser.write(chunk)
            except Exception:
                raise UploadError(N_("The upload could not be read (malformed form data).")) from None
            for kind, data in events.items:
                if kind == "begin":
                    part = _Part()
                elif kind == "header" and part is not None:
                    name, _, value = data.partition(b"\x00")
                    if name.lower() == b"content-disposition":
                        _, params = parse_options_header(value)
                        part.name = params.get(b"name", b"").decode("utf-8", "replace")
                        if b"filename" in params:
                            part.filename = params[b"filename"].decode("utf-8", "replace")
                elif kind == "headers_done" and part is not None:
                    if part.filename is None:
                        if len(received.fields) >= MAX_FIELDS:
                            raise UploadError(N_("The form has too many fields."))
                    elif not part.filename:
                        part.skipping = True  # a file input left empty
                    else:
                        if not csrf_ok:
                            raise PermissionDeniedException("CSRF token verification failed")
                        if len(received.files) + len(received.refused) >= MAX_FILES:
                            raise UploadError(N_("Send at most %(n)s files at a time."), n=MAX_FILES)
                        part.staged = storage.stage(file_limit)
                elif kind == "data" and part is not None and not part.skipping:
                    if part.staged is not None:
                        try:
                            part.staged.write(data)
                        except StorageLimitError:
                            if file_limit < max_file_bytes:
                                refuse_current(N_("Not enough space left in this workspace (quota reached)."))
                            else:
                                refuse_current(
                                    N_("The file is larger than %(limit)s."), limit=human_size(max_file_bytes)
                                )
                    elif part.filename is None:
                        part.value += data
                        if len(part.value) > MAX_FIELD_BYTES:
                            raise UploadError(N_("A form field is too long."))
                elif kind == "end" and part is not None:
                    if part.staged is not None:
                        part.staged.finish()
                        received.files.append((part.filename or "", part.staged))
                        part.staged = None
                    elif part.filename is None:
                        value = part.value.decode("utf-8", "replace")
                        received.fields[part.name] = value
                        if part.name == CSRF_FIELD and not csrf_ok:
                            csrf_ok = csrf_matches(request, value)
                    part = None
            events.items.clear()
        if not events.finished:
            raise UploadError(INTERRUPTED)
        if not csrf_ok:
            raise PermissionDeniedException("CSRF token verification failed")
    except BaseException:
        if part is not None and part.staged is not None:
            storage.discard(part.staged)
        received.discard(storage)
        raise
    return received
