"""A small Meilisearch stand-in: a real HTTP server (in a thread) answering as the documented API does.

It records every request (method, path, query, headers, JSON body) so tests can check what the
adapter sends.  Asynchronous operations answer ``202`` with a *summarized task object*
(``taskUid``, ``indexUid``, ``status: enqueued``, ``type``, ``enqueuedAt``); ``GET /tasks/{uid}``
answers ``processing`` the first time and then ``succeeded`` (or ``failed`` with an ``error`` object
when a test asks for it), so a client that does not wait would be caught.  Search answers with
``hits`` (with ``_formatted`` when highlighting is asked), ``estimatedTotalHits`` or ``totalHits``
(with ``page``/``hitsPerPage``), ``facetDistribution`` and ``processingTimeMs``.

References: https://www.meilisearch.com/docs/reference/api/ (indexes, documents, settings, search,
tasks, swap-indexes, health) and the error format ``{message, code, type, link}``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeMeili:
    requests: list[Recorded] = field(default_factory=list)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid → {"primaryKey", "docs", "settings"}
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    task_polls: dict[int, int] = field(default_factory=dict)
    #: Task types that fail (``{"documentAdditionOrUpdate": "invalid document"}``).
    fail_types: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    _next_task: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # -- what tests look at ---------------------------------------------------------------------
    def calls(self, method: str | None = None, path_prefix: str = "", *, path: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and r.path.startswith(path_prefix)
            and (path is None or r.path == path)
        ]

    def searches(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.path.endswith("/search")]

    def reset(self) -> None:
        self.requests.clear()

    # -- the API --------------------------------------------------------------------------------
    def _task(self, index_uid: str | None, type_: str, apply: Any = None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self._next_task += 1
            uid = self._next_task
        error = self.fail_types.get(type_)
        if apply is not None and error is None:
            apply()
        self.tasks[uid] = {
            "uid": uid,
            "indexUid": index_uid,
            "status": "failed" if error else "succeeded",
            "type": type_,
            "details": {},
            "error": {"message": error, "code": "invalid_document_fields", "type": "invalid_request",
                      "link": "https://docs.meilisearch.com/errors#invalid_document_fields"} if error else None,
            "duration": "PT0.001S",
            "enqueuedAt": _now(),
            "startedAt": _now(),
            "finishedAt": _now(),
        }  # fmt: skip
        summary = {"taskUid": uid, "indexUid": index_uid, "status": "enqueued", "type": type_, "enqueuedAt": _now()}
        return 202, summary

    def _not_found(self, uid: str) -> tuple[int, dict[str, Any]]:
        return 404, {
            "message": f"Index `{uid}` not found.",
            "code": "index_not_found",
            "type": "invalid_request",
            "link": "https://docs.meilisearch.com/errors#index_not_found",
        }

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if path == "/health":
            return 200, {"status": "available"}
        if parts[:1] == ["tasks"] and len(parts) == 2 and method == "GET":
            uid = int(parts[1])
            task = self.tasks.get(uid)
            if task is None:
                return 404, {"message": f"Task `{uid}` not found.", "code": "task_not_found", "type": "invalid_request",
                             "link": "https://docs.meilisearch.com/errors#task_not_found"}  # fmt: skip
            polls = self.task_polls.get(uid, 0)
            self.task_polls[uid] = polls + 1
            if polls == 0:
                return 200, {**task, "status": "processing", "finishedAt": None, "error": None}
            return 200, task
        if path == "/indexes" and method == "POST":
            uid = body["uid"]

            def create() -> None:
                self.indexes.setdefault(uid, {"primaryKey": body.get("primaryKey"), "docs": {}, "settings": {}})

            return self._task(uid, "indexCreation", create)
        if path == "/swap-indexes" and method == "POST":

            def swap() -> None:
                for pair in body:
                    a, b = pair["indexes"]
                    self.indexes[a], self.indexes[b] = self.indexes[b], self.indexes[a]

            return self._task(None, "indexSwap", swap)
        if parts[:1] != ["indexes"] or len(parts) < 2:
            return 404, {"message": "not found", "code": "not_found", "type": "invalid_request", "link": ""}
        uid = parts[1]
        index = self.indexes.get(uid)
        rest = parts[2:]
        if not rest and method == "GET":
            if index is None:
                return self._not_found(uid)
            return 200, {"uid": uid, "primaryKey": index["primaryKey"], "createdAt": _now(), "updatedAt": _now()}
        if not rest and method == "DELETE":
            return self._task(uid, "indexDeletion", lambda: self.indexes.pop(uid, None))
        if rest == ["settings"] and method == "PATCH":

            def configure() -> None:
                self.indexes.setdefault(uid, {"primaryKey": None, "docs": {}, "settings": {}})["settings"].update(body)

            return self._task(uid, "settingsUpdate", configure)
        if rest == ["settings", "synonyms"] and method == "PUT":

            def synonyms() -> None:
                self.indexes.setdefault(uid, {"primaryKey": None, "docs": {}, "settings": {}})["settings"][
                    "synonyms"
                ] = body

            return self._task(uid, "settingsUpdate", synonyms)
        if rest == ["documents"] and method == "POST":
            key = (query.get("primaryKey") or [None])[0]

            def add() -> None:
                target = self.indexes.setdefault(uid, {"primaryKey": key, "docs": {}, "settings": {}})
                target["primaryKey"] = target["primaryKey"] or key
                for doc in body:
                    target["docs"][doc[target["primaryKey"]]] = doc

            return self._task(uid, "documentAdditionOrUpdate", add)
        if rest == ["documents", "delete-batch"] and method == "POST":

            def remove() -> None:
                for key in body:
                    (index or {"docs": {}})["docs"].pop(key, None)

            return self._task(uid, "documentDeletion", remove)
        if rest == ["search"] and method == "POST":
            if index is None:
                return self._not_found(uid)
            return 200, self._search(index, body or {})
        return 404, {"message": f"no route {method} {path}", "code": "not_found", "type": "invalid_request", "link": ""}

    def _search(self, index: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Enough of search for an adapter test: substring match on title/summary; filters are not evaluated."""
        q = str(body.get("q") or "").lower()
        docs = list(index["docs"].values())
        # "all" (the default here): the whole query as a substring; "frequency"/"last": any of its words.
        words = q.split() if body.get("matchingStrategy") in ("frequency", "last") else [q]

        def matches(d: dict[str, Any]) -> bool:
            return any(w in str(d.get(f, "")).lower() for w in words for f in ("title", "summary"))

        hits = [d for d in docs if not q or matches(d)]
        facets = {}
        for name in body.get("facets") or []:
            counts: dict[str, int] = {}
            for doc in hits:
                value = doc.get(name)
                if value not in (None, ""):
                    counts[str(value)] = counts.get(str(value), 0) + 1
            facets[name] = counts
        out: dict[str, Any] = {"query": body.get("q", ""), "processingTimeMs": 1, "facetDistribution": facets}
        if "hitsPerPage" in body:
            per_page, page = int(body["hitsPerPage"]), int(body.get("page", 1))
            selected = hits[(page - 1) * per_page : page * per_page] if per_page else []
            out.update(hitsPerPage=per_page, page=page, totalHits=len(hits), totalPages=0)
        else:
            offset, limit = int(body.get("offset", 0)), int(body.get("limit", 20))
            selected = hits[offset : offset + limit]
            out.update(offset=offset, limit=limit, estimatedTotalHits=len(hits))
        pre, post = body.get("highlightPreTag", "<em>"), body.get("highlightPostTag", "</em>")
        rendered = []
        for doc in selected:
            hit = dict(doc)
            if body.get("attributesToHighlight"):
                formatted = {}
                for name in ("title", "summary", "body"):
                    text = str(doc.get(name, ""))
                    lowered = text.lower()
                    if q and q in lowered:
                        start = lowered.index(q)
                        text = text[:start] + pre + text[start : start + len(q)] + post + text[start + len(q) :]
                    formatted[name] = text
                hit["_formatted"] = formatted
            if body.get("showMatchesPosition") and q:
                title = str(doc.get("title", "")).lower()
                found = [{"start": title.index(w), "length": len(w)} for w in words if w and w in title]
                hit["_matchesPosition"] = {"title": found} if found else {}
            rendered.append(hit)
        out["hits"] = rendered
        return out


def serve(fake: FakeMeili) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _dispatch(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append(Recorded(self.command, split.path, parse_qs(split.query), headers, body))
            if fake.api_key is not None and headers.get("authorization") != f"Bearer {fake.api_key}":
                status, payload = (
                    401,
                    {
                        "message": "The provided API key is invalid.",
                        "code": "invalid_api_key",
                        "type": "auth",
                        "link": "https://docs.meilisearch.com/errors#invalid_api_key",
                    },
                )
            else:
                status, payload = fake.handle(self.command, split.path, parse_qs(split.query), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
