"""Helpers for tests that load content rows: the shared corpus, JSON Lines files, `suite content import`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "portal.jsonl"


def corpus_rows(kind: str) -> list[dict[str, Any]]:
    """The corpus rows of one ``type``."""
    if not CORPUS.is_file():
        pytest.fail(f"shared corpus not found at {CORPUS} (it lives in ../shared/corpus beside the repository)")
    return [row for row in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines()) if row["type"] == kind]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def import_rows(cli, tmp_path: Path, rows: list[dict[str, Any]], *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``suite content import`` of ``rows`` (a new file each call) with extra ``args``; the JSON report."""
    path = write_jsonl(tmp_path / f"rows-{len(list(tmp_path.glob('rows-*.jsonl')))}.jsonl", rows)
    result = cli("content", "import", str(path), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_ld(html: str) -> dict[str, Any]:
    """The page's single JSON-LD block."""
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(blocks) == 1, blocks
    return json.loads(blocks[0])
