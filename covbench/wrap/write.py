"""Writing a :class:`~covbench.wrap.plan.Plan` to a task folder: the YAML files and the binding module.

The folder ``<out>/<name>/`` is written next to it first and checked (lm-eval builds every task in it),
then moved into place in one rename, so a failed wrap leaves no half-written folder. A folder that
exists is replaced only if ``covbench wrap`` wrote it (its ``covbench_wrap.py`` starts with
:data:`MARKER`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import covbench
from covbench.wrap.glue import WrapError
from covbench.wrap.plan import STUB, Function, Plan

MARKER = "# Written by `covbench wrap`"


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Function, lambda d, v: d.represent_scalar("!function", str(v)))


def task_yaml(plan: Plan, task: str) -> str:
    """The text of one task's YAML file."""
    head = (f"{MARKER} {covbench.__version__} from lm-eval's task {plan.origin.name!r} (docs/wrap.md).\n"
            f"# It includes the origin's file and overrides only what is below; regenerate instead of editing.\n")
    return head + yaml.dump(plan.tasks[task], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def stub_source(plan: Plan) -> str:
    """``covbench_wrap.py``: the by-path module lm-eval imports for ``!function covbench_wrap.NAME``."""
    origin = json.dumps(str(plan.origin.path))
    return (f'{MARKER} {covbench.__version__} from lm-eval\'s task {plan.origin.name!r}; regenerate instead of editing.\n'
            f'"""Binds covbench\'s wrap glue (covbench/wrap/glue.py, docs/wrap.md) to the origin task\'s YAML.\n\n'
            f'lm-eval imports this file by path for the ``!function {STUB}.NAME`` entries of the YAML files next to it.\n'
            f'"""\n\n'
            f"from covbench.wrap.glue import Binding\n\n"
            f"BINDING = Binding({origin})\n"
            f"gold_choices = BINDING.gold_choices\n"
            f"Judge = BINDING.filter_class()\n")


def write(plan: Plan, out: Path, check: Callable[[Path, list[str]], None] | None = None) -> Path:
    """Write ``plan`` to ``out/<name>/`` (replacing a folder an earlier wrap wrote) and return that folder.

    ``check(folder, task_names)`` runs on the finished folder before it is moved into place; any
    :class:`WrapError` it raises leaves ``out`` as it was.
    """
    out = Path(out)
    final = out / plan.name
    if final.exists() and not _ours(final):
        raise WrapError(f"{final}: exists and was not written by covbench wrap; choose another --out or --name")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{plan.name}-", dir=out))
    try:
        for task in plan.tasks:
            (staging / f"{task}.yaml").write_text(task_yaml(plan, task), encoding="utf-8")
        (staging / f"{STUB}.py").write_text(stub_source(plan), encoding="utf-8")
        if check is not None:
            check(staging, list(plan.tasks))
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{plan.name}-old-", dir=out))
            os.replace(final, old / plan.name)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _ours(folder: Path) -> bool:
    stub = folder / f"{STUB}.py"
    try:
        return folder.is_dir() and stub.read_text(encoding="utf-8").startswith(MARKER)
    except OSError:
        return False


def describe(plan: Plan, folder: Path) -> list[str]:
    """Lines for the user: what was written and how to run it."""
    tasks = ",".join(plan.tasks)
    lines = [f"wrote {folder}: " + ", ".join(f"{t} ({_kind(plan.tasks[t])})" for t in plan.tasks),
             f"  lm-eval:  lm_eval --model hf --model_args pretrained=DIR --tasks {tasks} --include_path {folder.parent}",
             f"  covbench: pytest suite/ --model NAME --tasks-dir {folder} --tasks {tasks}"]
    return lines


def _kind(cfg: dict[str, Any]) -> str:
    meta = cfg["metadata"]["covbench"]
    return "n samples, verdicts" if meta["kind"] == "sample" else "scores the gold target"
