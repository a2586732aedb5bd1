"""One (model, task) job: lm-eval run → per-doc arrays → metrics → a stored ``RunRecord``.

Steps (each a named function below):

1. :func:`load_task` builds the lm-eval task from a task folder (default: the tasks shipped inside the
   package, ``covbench/tasks/``; lm-eval's built-in tasks are not indexed) and reads its
   ``metadata.covbench`` block into a typed :class:`~covbench.records.TaskDescriptor` (covbench.taskmeta).
2. :func:`run_job` looks in the store first. A stored run with the same task hash and model-spec hash
   is reused without loading the model; for a sampling task it must already hold ≥ n samples per
   prompt, otherwise only the missing samples are drawn (a fresh seed per extension, so new draws are
   independent of the stored ones) and appended per sample index.
3. The model is built by the backend factory, the task runs through ``lm_eval.simple_evaluate`` with
   per-sample logging, the task's adapter (told the task's kind) turns lm-eval's samples into
   ``DocArrays`` / ``SampleArrays``, :func:`covbench.summarize.summarize` computes the metrics, and the run
   (small part with the task descriptor, and arrays) is appended to the store atomically.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import covbench
from covbench import taskfiles, taskmeta
from covbench.backends import BackendError, spec_hash
from covbench.records import DocArrays, Provenance, Ragged, Run, RunRecord, SampleArrays, TaskDescriptor
from covbench.registry import ModelSpec
from covbench.store import latest_run, write_run
from covbench.summarize import summarize

log = logging.getLogger(__name__)

TASKS_DIR = taskmeta.TASKS_DIR
DEFAULT_SEED = 1234


class TaskError(Exception):
    """A task that cannot be loaded or has no usable ``metadata.covbench`` block (one line)."""


class RunError(Exception):
    """A model that crashed while a task ran; one line naming the model, the task and the error.
    Nothing is written to the store, and stored results are left as they were."""


@dataclass(frozen=True)
class TaskInfo:
    """A built lm-eval task plus what covbench needs to know about it."""

    task: Any  # lm_eval.api.task.Task
    descriptor: TaskDescriptor
    adapter: Callable[[list[dict], str], tuple[DocArrays | None, SampleArrays | None]]
    task_hash: str

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def kind(self) -> str:
        return self.descriptor.kind

    @property
    def pairs_with(self) -> str | None:
        return self.descriptor.pairs_with

    @property
    def repeats(self) -> int:
        return int(self.task.config.repeats or 1)


@dataclass(frozen=True)
class RunOutcome:
    """What one job did: the run, where it is stored, and whether the model was run at all."""

    run: Run
    path: Path  # the stored file (the reused one when nothing was run)
    reused: bool
    drew: int  # samples per prompt drawn in this run (0 when reused or a scoring task)
    message: str

    @property
    def record(self) -> RunRecord:
        return self.run.record


@lru_cache(maxsize=4)
def task_manager(tasks_dir: str = str(TASKS_DIR)) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=tasks_dir, include_defaults=False)


def suite_tasks(tasks_dir: Path = TASKS_DIR) -> list[str]:
    """Names of the project's tasks that carry a ``metadata.covbench`` block, sorted.

    A task file covbench cannot read still counts when its text names the task and mentions covbench,
    so its job fails with the file's one-line error (:mod:`covbench.taskfiles`)."""
    return taskfiles.suite_names(tasks_dir)


def load_task(name: str, tasks_dir: Path = TASKS_DIR) -> TaskInfo:
    """Build one task; any problem with it raises a one-line :class:`TaskError` naming the file and field
    (docs/errors.md)."""
    problem = taskfiles.index_hazard(tasks_dir) or taskfiles.file_problem(name, tasks_dir)
    if problem is not None:
        raise TaskError(problem)
    tm = task_manager(str(tasks_dir))
    if name not in tm.all_tasks:
        raise TaskError(taskfiles.not_indexed(name, tasks_dir, sorted(tm.all_tasks)))
    entry = tm.task_index.get(name)
    source = str(getattr(entry, "yaml_path", None) or name)
    try:
        task = tm.load([name])["tasks"][name]
    except Exception as e:  # noqa: BLE001 - lm-eval rejects a task file in many ways; each is one line
        raise TaskError(taskfiles.build_problem(source, name, e)) from None
    meta = (task.config.metadata or {}).get("covbench")
    source = (task.config.metadata or {}).get("config_source", source)
    problem = taskfiles.covbench_block_problem(source, meta, sorted(tm.all_tasks))
    if problem is not None:
        raise TaskError(problem)
    try:
        descriptor = taskmeta.descriptor(name, meta, source)
    except taskmeta.TaskMetaError as e:
        raise TaskError(str(e)) from None
    return TaskInfo(task=task, descriptor=descriptor, adapter=_import_adapter(str(meta.get("adapter", "")), source),
                    task_hash=task_hash(task))


def _import_adapter(ref: str, source: str) -> Callable:
    module, _, func = ref.partition(":")
    try:
        adapter = getattr(importlib.import_module(module), func)
    except Exception as e:  # noqa: BLE001 - an adapter module may raise anything while it is imported
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise TaskError(f"{source}: field 'metadata.covbench.adapter': cannot import {ref!r}: {reason}") from None
    if not callable(adapter):
        raise TaskError(f"{source}: field 'metadata.covbench.adapter': {ref!r} is not a function")
    return adapter


def task_hash(task: Any) -> str:
    """sha256 of what defines the requests: every doc, its rendered prompt and target, and the config
    fields that shape requests (output type, generation kwargs, few-shot count). Not ``repeats``:
    growing n keeps the hash, so stored samples stay reusable."""
    h = hashlib.sha256()
    cfg = task.config
    head = {"task": cfg.task, "output_type": cfg.output_type, "num_fewshot": cfg.num_fewshot,
            "generation_kwargs": cfg.generation_kwargs, "target_delimiter": cfg.target_delimiter}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for doc in task.eval_docs:
        rendered = [task.doc_to_text(doc), task.doc_to_target(doc)]
        h.update(json.dumps([doc, rendered], sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class JobPlan:
    """What one job still has to compute, decided from the store (:func:`plan_job`).

    Everything :func:`compute_run` needs besides the model and the task: how many samples to draw,
    from which seed, and the stored samples to extend. A plan is plain data, so an executor can ship it
    to a worker that has no access to the store (docs/executors.md).
    """

    model: str
    task: str
    kind: str
    task_hash: str
    seed: int  # the job's seed (provenance)
    want_n: int  # samples per prompt the stored run will hold (0 for a scoring task)
    draw: int  # samples per prompt to draw now
    run_seed: int  # the seed of this extension's stream: seed + samples already held
    prev_samples: SampleArrays | None  # the stored samples the new ones extend (None: none)

    @property
    def done_message(self) -> str:
        """The summary line of a job that ran (the same words whichever executor ran it)."""
        what = f"drew {self.draw} more samples per prompt (now {self.want_n})" if self.kind == "sample" else "scored"
        return f"{self.model} × {self.task}: {what}"


def run_job(spec: ModelSpec, task_name: str, results_dir: Path, *, n: int | None = None,
            seed: int = DEFAULT_SEED, get_lm: Callable[[ModelSpec], Any] | None = None,
            tasks_dir: Path = TASKS_DIR) -> RunOutcome:
    """Score ``spec`` on ``task_name`` (reusing the store when possible) and store the result.

    ``n``: samples per prompt for a sampling task (default: the task's ``repeats``).
    ``get_lm``: the backend factory (default: the per-process cache of :mod:`covbench.backends`).
    The three steps, :func:`plan_job` (store lookup), :func:`compute_run` (the model) and
    :func:`covbench.store.write_run`, are separate so an executor can run the middle one elsewhere.
    """
    info = load_task(task_name, tasks_dir)
    plan = plan_job(spec, info, results_dir, n=n, seed=seed)
    if isinstance(plan, RunOutcome):
        return plan
    run = compute_run(spec, plan, info, get_lm=get_lm, tasks_dir=tasks_dir)
    path = write_run(results_dir, run)
    return RunOutcome(run, path, False, plan.draw, plan.done_message)


def plan_job(spec: ModelSpec, info: TaskInfo, results_dir: Path, *, n: int | None = None,
             seed: int = DEFAULT_SEED) -> RunOutcome | JobPlan:
    """The reused outcome when the store already holds what the job asks for, else what to compute.

    Reads the store only; never loads the model.
    """
    want_n = (n or info.repeats) if info.kind == "sample" else 0
    prev, prev_path = _compatible_previous(results_dir, spec, info)
    have_n = prev.samples.n if (prev is not None and prev.samples is not None) else 0
    if prev is not None and prev_path is not None and (info.kind == "loglikelihood" or have_n >= want_n):
        held = f"n = {have_n} samples per prompt" if info.kind == "sample" else "scores"
        return RunOutcome(prev, prev_path, True, 0, f"{spec.name} × {info.name}: reused the stored result "
                          f"({held}); model not loaded")
    return JobPlan(model=spec.name, task=info.name, kind=info.kind, task_hash=info.task_hash, seed=seed,
                   want_n=want_n, draw=want_n - have_n, run_seed=seed + have_n,  # a distinct stream per extension
                   prev_samples=prev.samples if prev is not None else None)


def compute_run(spec: ModelSpec, plan: JobPlan, info: TaskInfo, *,
                get_lm: Callable[[ModelSpec], Any] | None = None, tasks_dir: Path = TASKS_DIR) -> Run:
    """Run the model on the task as ``plan`` says and return the complete run (nothing is stored).

    A model that crashes raises a one-line :class:`RunError`; one that cannot load, ``BackendError``.
    """
    try:
        samples = _evaluate(spec, info, plan.draw, plan.run_seed, get_lm, tasks_dir)
        docs, new_samples = info.adapter(samples, info.kind)
    except BackendError:
        raise
    except Exception as e:  # noqa: BLE001 - a crashing model fails its own job, in one line
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:400]
        raise RunError(f"model '{spec.name}' × task '{info.name}': crashed during evaluation: {reason}") from e
    if plan.prev_samples is not None and new_samples is not None:
        new_samples = merge_samples(plan.prev_samples, new_samples)
    record = RunRecord(
        model=spec.name, task=info.name, family=spec.family, step=spec.step, axis=spec.axis, x=spec.x,
        description=spec.description,
        descriptor=info.descriptor, provenance=_provenance(spec, info, plan.seed, plan.want_n, new_samples),
        metrics=summarize(docs, new_samples, info.descriptor.reference))
    return Run(record, docs, new_samples)


def _compatible_previous(results_dir: Path, spec: ModelSpec, info: TaskInfo) -> tuple[Run | None, Path | None]:
    """The latest readable stored run of the same task and model spec and its file, or (None, None).

    Unreadable newer files are skipped (they stay in place; the new run is appended after them)."""
    found = latest_run(results_dir, spec.name, info.name)
    if found is None:
        return None, None
    prev, path = found
    same = (prev.record.provenance.task_hash == info.task_hash
            and prev.record.provenance.model_spec_hash == spec_hash(spec))
    return (prev, path) if same else (None, None)


def _evaluate(spec: ModelSpec, info: TaskInfo, draw: int, seed: int,
              get_lm: Callable[[ModelSpec], Any] | None, tasks_dir: Path) -> list[dict]:
    """Run the task through lm-eval and return its per-sample dicts."""
    from lm_eval import simple_evaluate

    if get_lm is None:
        from covbench.backends import get_lm as default_get_lm

        get_lm = default_get_lm
    lm = get_lm(spec)
    if info.kind == "sample":
        info.task.config.repeats = draw
    gen_kwargs = _gen_kwargs(spec) if info.task.config.output_type == "generate_until" else None
    result = simple_evaluate(
        model=lm, tasks=[info.task], task_manager=task_manager(str(tasks_dir)), log_samples=True,
        bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
        fewshot_random_seed=DEFAULT_SEED, apply_chat_template=bool(spec.chat_template),
        fewshot_as_multiturn=bool(spec.chat_template),
        confirm_run_unsafe_code=confirms_unsafe_code(info),
        gen_kwargs=gen_kwargs, verbosity="ERROR")
    return list(result["samples"][info.name])


def confirms_unsafe_code(info: TaskInfo) -> bool:
    """lm-eval's ``confirm_run_unsafe_code`` for a task: True when the task declares ``unsafe_code: true``.

    lm-eval refuses to run such a task without the confirmation (docs/lm-eval-notes.md#trap-unsafe-code).
    The flag isolates nothing: a task folder is trusted code anyway (lm-eval imports its ``!function``
    modules into this process), and covbench's own code tasks run model-written programs only in
    covbench's sandbox (docs/sandbox.md). So the runner confirms for every task that asks
    (docs/humaneval.md#unsafe-code)."""
    return bool(getattr(info.task, "UNSAFE_CODE", False))


def _gen_kwargs(spec: ModelSpec) -> dict[str, Any] | None:
    """The registry's generation settings as lm-eval gen_kwargs (they override the task's).

    The entry's policy with every setting explicit (``do_sample``, ``top_k: 0``, ``top_p: 1.0`` when
    off), so the sampler draws from exactly the policy the backend scores (docs/policies.md).
    """
    from covbench.backends.policy import policy_of

    gen = getattr(spec, "generation", None)
    if gen is None:
        return None
    kwargs = policy_of(spec).gen_kwargs()
    if gen.max_gen_toks is not None:
        kwargs["max_gen_toks"] = gen.max_gen_toks
    return kwargs


def policy_label(spec: ModelSpec, info: TaskInfo) -> str:
    """The policy a run describes (docs/policies.md): for a sampling task the one its samples were drawn
    from (the task's generation settings overridden by the entry's; transformers' default top-k of 50
    where neither sets one; "greedy" without sampling), for a scoring task the one the backend scores
    (the entry's on ``hf-fast``, temperature 1 and no truncation on stock ``hf``). The suite compares
    exact and sampled Pass@N only when the two runs describe the same policy."""
    from covbench.backends.policy import Policy, policy_of

    if info.kind != "sample":
        return policy_of(spec).label if spec.backend == "hf-fast" else Policy().label
    merged = {**dict(info.task.config.generation_kwargs or {}), **(_gen_kwargs(spec) or {})}
    if merged.get("do_sample") is False or float(merged.get("temperature", 1.0) or 0.0) == 0.0:
        return "greedy"
    return Policy(temperature=float(merged.get("temperature", 1.0)), top_k=int(merged.get("top_k", 50)),
                  top_p=merged.get("top_p"), min_p=merged.get("min_p")).label


def merge_samples(old: SampleArrays, new: SampleArrays) -> SampleArrays:
    """Append ``new``'s samples after ``old``'s, prompt by prompt (sample index order is kept)."""
    index = {int(d): i for i, d in enumerate(new.doc_id)}
    missing = [int(d) for d in old.doc_id if int(d) not in index]
    if missing:
        raise ValueError(f"merge_samples: new samples lack doc {missing[0]}")
    at = [index[int(d)] for d in old.doc_id]
    gens = [list(old.generations.row(i)) + list(new.generations.row(j)) for i, j in enumerate(at)]
    correct = [list(old.correct.row(i)) + list(new.correct.row(j)) for i, j in enumerate(at)]
    return SampleArrays(doc_id=old.doc_id, generations=Ragged.from_rows(gens, str),
                        correct=Ragged.from_rows(correct, bool), temperature=new.temperature,
                        max_gen_toks=new.max_gen_toks)


def _provenance(spec: ModelSpec, info: TaskInfo, seed: int, n: int,
                samples: SampleArrays | None) -> Provenance:
    import lm_eval

    sampling: dict[str, Any] = {"n": n}
    if samples is not None:
        sampling.update(temperature=samples.temperature, max_gen_toks=samples.max_gen_toks)
    gen = _gen_kwargs(spec) or {}
    sampling.update({k: v for k, v in gen.items() if isinstance(v, (int, float, str, bool))})
    sampling["policy"] = policy_label(spec, info)
    return Provenance(
        covbench_version=covbench.__version__, lm_eval_version=getattr(lm_eval, "__version__", "unknown"),
        git_commit=_git_commit(), task_hash=info.task_hash, model_spec_hash=spec_hash(spec), seed=seed,
        sampling=sampling, machine=f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        time=datetime.now(timezone.utc).isoformat(timespec="seconds"))


@lru_cache(maxsize=1)
def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
