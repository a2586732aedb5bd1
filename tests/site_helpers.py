"""Helpers for the site tests: parse table rows, compare site folders, build a synthetic store."""

from __future__ import annotations

import html.parser
from pathlib import Path


class Rows(html.parser.HTMLParser):
    """Every <tr id=...>: its cells' text and data-v attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, str | None]]] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._v: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "id" in a:
            self._row = a["id"]
            self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell, self._v = [], a.get("data-v")

    def handle_endtag(self, tag):
        if tag == "td" and self._row and self._cell is not None:
            self.rows[self._row].append(("".join(self._cell).strip(), self._v))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    parser = Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.rows


def files(site: Path) -> dict[str, bytes]:
    """Every file of a site folder by relative path (the build state included)."""
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
