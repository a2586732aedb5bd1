"""The lm-eval task a wrap starts from: found by name among lm-eval's own task YAMLs, or given as a file.

Finding a name reads lm-eval's task folder as text (a ``task: NAME`` line, ~14,000 files in about a
second) instead of building lm-eval's ``TaskManager`` index (about 10 s, docs/lm-eval-notes.md
#trap-task-manager), then confirms the hit with lm-eval's own YAML reader. :class:`Origin` is what the
wrap needs to know about the task, read without running any of its code.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from covbench.wrap.glue import WrapError

_TASK_LINE = re.compile(rb"""^["']?task["']?[ \t]*:[ \t]*["']?([A-Za-z0-9_.\-]+)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)
_SKIPPED = {"__pycache__", ".ipynb_checkpoints"}
OUTPUT_TYPES = ("generate_until", "multiple_choice", "loglikelihood")


def lm_eval_tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).resolve().parent / "tasks"


@lru_cache(maxsize=4)
def _task_lines(root: str) -> dict[str, tuple[Path, ...]]:
    """Task name → the YAML files under ``root`` with a ``task: NAME`` line."""
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(root).rglob("*.yaml")):
        if _SKIPPED & set(path.parts):
            continue
        try:
            text = path.read_bytes()
        except OSError:
            continue
        for match in _TASK_LINE.finditer(text):
            found.setdefault(match.group(1).decode(), []).append(path)
    return {name: tuple(paths) for name, paths in found.items()}


def find_origin(name_or_path: str, root: Path | None = None) -> Path:
    """The YAML file of lm-eval task ``name_or_path`` (a task name, or a path to a task YAML file)."""
    given = Path(name_or_path).expanduser()
    if given.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not given.is_file():
            raise WrapError(f"{name_or_path}: no such task YAML file")
        return given.resolve()
    root = root or lm_eval_tasks_dir()
    lines = _task_lines(str(root))
    hits = [p for p in lines.get(name_or_path, ()) if _config(p).get("task") == name_or_path]
    if not hits:
        close = difflib.get_close_matches(name_or_path, list(lines), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise WrapError(f"task {name_or_path!r} is not a task of lm-eval's task folder {root} (groups and tags "
                        f"cannot be wrapped: wrap one of their tasks){hint}")
    if len(hits) > 1:
        raise WrapError(f"task {name_or_path!r} is defined by {len(hits)} files ({hits[0]}, {hits[1]}): "
                        "give the file's path instead")
    return hits[0].resolve()


def _config(path: Path) -> dict[str, Any]:
    """The task YAML with its includes merged, ``!function`` left unresolved (lm-eval's own reader)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        cfg = load_yaml(path, resolve_func=False)
    except Exception as e:  # noqa: BLE001 - a YAML error, a missing include, ...: one line
        raise WrapError(f"{path}: lm-eval cannot read the task file: {type(e).__name__}: "
                        f"{' '.join(str(e).split())[:300]}") from None
    return cfg if isinstance(cfg, dict) else {}


@dataclass(frozen=True)
class Origin:
    """What a wrap reads from the origin task's YAML (includes merged)."""

    name: str
    path: Path
    config: dict[str, Any]

    @property
    def output_type(self) -> str:
        return str(self.config.get("output_type", "generate_until"))

    @property
    def filters(self) -> list[str]:
        """Names of the origin's filter pipelines, in order (lm-eval's default: one called ``none``)."""
        listed = self.config.get("filter_list")
        if not listed:
            return ["none"]
        return [str(f.get("name")) for f in listed if isinstance(f, dict)]

    @property
    def metrics(self) -> list[str]:
        listed = self.config.get("metric_list") or []
        return [str(m.get("metric")) for m in listed if isinstance(m, dict)]

    @property
    def num_fewshot(self) -> int:
        return int(self.config.get("num_fewshot") or 0)

    @property
    def version(self) -> Any:
        meta = self.config.get("metadata")
        return meta.get("version", 1.0) if isinstance(meta, dict) else 1.0


def read_origin(name_or_path: str, root: Path | None = None) -> Origin:
    """The origin task, checked: a single YAML task of a supported output type, not marked unsafe."""
    path = find_origin(name_or_path, root)
    cfg = _config(path)
    name = cfg.get("task")
    if not isinstance(name, str):
        raise WrapError(f"{path}: field 'task': not a single task (a group or an include-only file)")
    origin = Origin(name, path, cfg)
    if "class" in cfg:
        raise WrapError(f"{path}: field 'class': task {name!r} is a Python task class, not a YAML task; "
                        "covbench wrap needs the YAML form")
    if origin.output_type not in OUTPUT_TYPES:
        raise WrapError(f"{path}: field 'output_type': {origin.output_type!r} cannot be wrapped (supported: "
                        f"{', '.join(OUTPUT_TYPES)})")
    if cfg.get("unsafe_code"):
        raise WrapError(f"{path}: field 'unsafe_code': task {name!r} executes model output with its own metric, "
                        "outside covbench's sandbox; covbench does not wrap it (for HumanEval use covbench's "
                        "humaneval_cov tasks)")
    return origin
