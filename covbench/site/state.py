"""The build state a site keeps beside its pages, so the next build redoes only what changed (docs/site.md#incremental).

It lives inside the published site (``.covbench-state/``), so it is swapped in with the pages it describes
and a killed build never leaves it out of step. It holds:

- ``files``: every output file's input key (a hash of exactly the stored runs and settings it shows); a
  file whose key is unchanged is reused from the published site instead of being rendered again;
- ``memo``: the expensive per-task and per-family results (τ with its interval, the tournament) by the
  same keys;

The state is a cache: a missing, foreign or unreadable state only makes the next build a cold one, and a
build with or without it writes the same bytes. It is written deterministically (sorted keys, the catalog's
order), so a cold and an incremental build of the same store give identical files, this one included.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import covbench

STATE_DIR = ".covbench-state"
FORMAT = "covbench-site-state-1"


#: The code that turns a catalog into pages: its source is part of every key, so changed code (even under
#: the same version number) means new pages, never a stale page reused.
_PAGE_CODE = ("site", "views", "metrics", "selection.py", "summarize.py", "records.py")


@functools.cache
def code() -> str:
    """covbench's version and a hash of the source files in :data:`_PAGE_CODE`."""
    root = Path(covbench.__file__).resolve().parent
    digest = hashlib.sha256()
    for part in _PAGE_CODE:
        path = root / part
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file() and f.suffix in {".py", ".jinja", ".css", ".js"}:
                digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return f"{covbench.__version__}+{digest.hexdigest()[:16]}"


def key(*parts: Any) -> str:
    """A stable hash of JSON-able parts (with :func:`code`: new code, new pages)."""
    text = json.dumps([code(), FORMAT, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class State:
    files: dict[str, str] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)


def load(out: Path) -> State:
    """The published site's state, or an empty one."""
    try:
        data = json.loads((Path(out) / STATE_DIR / "state.json").read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("covbench") != code():
            return State()
        return State(files=dict(data["files"]), memo=dict(data["memo"]))
    except (OSError, ValueError, KeyError, TypeError):
        return State()


def dump(state: State) -> dict[str, bytes]:
    """The state's file (relative to the site root)."""
    text = json.dumps({"format": FORMAT, "covbench": code(), "files": state.files,
                       "memo": state.memo}, sort_keys=True, indent=0, allow_nan=True)
    return {f"{STATE_DIR}/state.json": text.encode()}
