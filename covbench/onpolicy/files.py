"""Where on-policy samples and their cross-scores live: files beside the results store (docs/selection.md#storage).

Layout, inside the results store so the samples travel with the runs they belong to, in a dot-folder that
the store's catalog and the site never list::

    <results>/.covbench/onpolicy/<task-slug>/<model-slug>/draw-<time>-<host>-<pid>-<rand>.safetensors
    <results>/.covbench/onpolicy/<task-slug>/<model-slug>/scores-<time>-<host>-<pid>-<rand>.safetensors

- a **draw** file holds the m samples one candidate drew on each of the task's prompts (token ids,
  ``[n, m, H]`` per response length H) and what they depend on: the model's spec hash, the task hash, the
  policy, the seed and m;
- a **scores** file holds one scorer's log π_j(y) of the samples of some draw files (``[n, m]`` each, named
  by the draw file), under the scorer's spec hash and the task hash.

Files are safetensors (the header's ``__metadata__`` is JSON text), written atomically (temporary file and
one rename) and never modified: the newest readable matching file is the current one, and a scorer that
meets a new draw writes a new scores file holding its old scores and the new ones. An unreadable file is
skipped and reported in one line naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from covbench.store import slug
from covbench.store.runfile import write_atomic

DRAW_FORMAT = "covbench-onpolicy-draw-1"
SCORES_FORMAT = "covbench-onpolicy-scores-1"
ROOT = Path(".covbench") / "onpolicy"


class OnPolicyFileError(Exception):
    """An unreadable on-policy file; one line naming the file and the field."""


@dataclass(frozen=True, eq=False)
class Draw:
    """One candidate's samples: ``tokens[h]`` is ``[n_h, m, h]`` for the prompts ``doc_id[length == h]``
    (in ``doc_id`` order). ``name`` is the file's path relative to the on-policy folder of its task."""

    name: str
    model: str
    spec_hash: str
    task_hash: str
    policy: str
    seed: int
    m: int
    doc_id: np.ndarray
    length: np.ndarray
    tokens: dict[int, np.ndarray]

    def samples(self, m: int) -> dict[int, np.ndarray]:
        """The first ``m`` samples per prompt, by response length."""
        return {h: t[:, :m] for h, t in self.tokens.items()}


@dataclass(frozen=True, eq=False)
class Scores:
    """One scorer's log-probs ``logp[draw name]`` (``[n, m]`` in that draw's prompt order)."""

    name: str
    model: str
    spec_hash: str
    task_hash: str
    policy: str
    logp: dict[str, np.ndarray]


def task_dir(results: Path, task: str) -> Path:
    return Path(results) / ROOT / slug(task)


def _new_path(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
    return folder / f"{kind}-{stamp}-{host}-{os.getpid()}-{secrets.token_hex(4)}.safetensors"


def _encode(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                metadata={"covbench": json.dumps(meta, sort_keys=True)})


def _decode(path: Path, fmt: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        data = path.read_bytes()
        tensors = load(data)
    except OSError as e:
        raise OnPolicyFileError(f"{path}: cannot read: {e.strerror or e}") from None
    except (SafetensorError, ValueError) as e:
        raise OnPolicyFileError(f"{path}: field '(file)': not a safetensors file: {' '.join(str(e).split())[:200]}") from None
    try:
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(json.loads(data[8:8 + n])["__metadata__"]["covbench"])
    except (ValueError, KeyError, TypeError):
        raise OnPolicyFileError(f"{path}: field '__metadata__.covbench': missing or not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise OnPolicyFileError(f"{path}: field '__metadata__.covbench.format': expected {fmt!r}, "
                                f"got {meta.get('format') if isinstance(meta, dict) else meta!r}")
    return meta, tensors


def _files(folder: Path, kind: str) -> list[Path]:
    """``kind`` files of a folder, newest first (names sort by time)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.startswith(f"{kind}-") and p.name.endswith(".safetensors")),
                  reverse=True)


def write_draw(results: Path, task: str, draw: Draw) -> Draw:
    """Store ``draw`` (its ``name`` is ignored) and return it under its stored name."""
    folder = task_dir(results, task) / slug(draw.model)
    path = _new_path(folder, "draw")
    meta = {"format": DRAW_FORMAT, "model": draw.model, "spec_hash": draw.spec_hash, "task_hash": draw.task_hash,
            "policy": draw.policy, "seed": draw.seed, "m": draw.m,
            "lengths": sorted(int(h) for h in draw.tokens)}
    tensors = {"doc_id": draw.doc_id.astype("<i8"), "length": draw.length.astype("<i8")}
    tensors.update({f"tokens.{h}": t.astype("<i8") for h, t in draw.tokens.items()})
    write_atomic(path, _encode(meta, tensors))
    return Draw(f"{folder.name}/{path.name}", draw.model, draw.spec_hash, draw.task_hash, draw.policy, draw.seed,
                draw.m, draw.doc_id, draw.length, draw.tokens)


def read_draw(results: Path, task: str, name: str) -> Draw:
    path = task_dir(results, task) / name
    meta, t = _decode(path, DRAW_FORMAT)
    try:
        doc_id, length = t["doc_id"], t["length"]
        tokens = {int(h): t[f"tokens.{int(h)}"] for h in meta["lengths"]}
        draw = Draw(name, str(meta["model"]), str(meta["spec_hash"]), str(meta["task_hash"]), str(meta["policy"]),
                    int(meta["seed"]), int(meta["m"]), doc_id, length, tokens)
    except (KeyError, TypeError, ValueError) as e:
        raise OnPolicyFileError(f"{path}: field '{e}': missing or malformed") from None
    for h, tok in tokens.items():
        if tok.ndim != 3 or tok.shape != (int((length == h).sum()), draw.m, h):
            raise OnPolicyFileError(f"{path}: field 'tokens.{h}': shape {tok.shape} does not match the prompts")
    return draw


def latest_draw(results: Path, task: str, model: str, spec_hash: str, task_hash: str, seed: int, m: int,
                problems: list[str]) -> Draw | None:
    """The newest readable draw of ``model`` with these hashes and seed and at least ``m`` samples per prompt;
    unreadable files are reported in ``problems`` (one line each) and skipped."""
    folder = task_dir(results, task) / slug(model)
    for path in _files(folder, "draw"):
        try:
            d = read_draw(results, task, f"{folder.name}/{path.name}")
        except OnPolicyFileError as e:
            problems.append(str(e))
            continue
        if (d.spec_hash, d.task_hash, d.seed) == (spec_hash, task_hash, seed) and d.m >= m:
            return d
    return None


def write_scores(results: Path, task: str, scores: Scores) -> None:
    folder = task_dir(results, task) / slug(scores.model)
    path = _new_path(folder, "scores")
    names = sorted(scores.logp)
    meta = {"format": SCORES_FORMAT, "model": scores.model, "spec_hash": scores.spec_hash,
            "task_hash": scores.task_hash, "policy": scores.policy, "draws": names}
    write_atomic(path, _encode(meta, {f"logp.{i}": scores.logp[k].astype("<f8") for i, k in enumerate(names)}))


def latest_scores(results: Path, task: str, model: str, spec_hash: str, task_hash: str,
                  problems: list[str]) -> Scores | None:
    """The newest readable scores file of ``model`` with these hashes (reported and skipped: unreadable ones)."""
    folder = task_dir(results, task) / slug(model)
    for path in _files(folder, "scores"):
        try:
            meta, t = _decode(path, SCORES_FORMAT)
            logp = {str(k): t[f"logp.{i}"] for i, k in enumerate(meta["draws"])}
            found = Scores(path.name, str(meta["model"]), str(meta["spec_hash"]), str(meta["task_hash"]),
                           str(meta["policy"]), logp)
        except OnPolicyFileError as e:
            problems.append(str(e))
            continue
        except (KeyError, TypeError, ValueError) as e:
            problems.append(f"{path}: field '{e}': missing or malformed")
            continue
        if (found.spec_hash, found.task_hash) == (spec_hash, task_hash):
            return found
    return None
